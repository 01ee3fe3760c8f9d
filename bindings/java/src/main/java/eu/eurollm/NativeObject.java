package eu.eurollm;

import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.LongConsumer;

/**
 * The life cycle shared by every class that owns a native handle: a {@code long nativeHandle},
 * freed exactly once, by {@link #close()} or, as a safety net for objects never closed, by a
 * {@link Cleaner} once the object is unreachable.
 *
 * <p>Every native call runs between {@link #acquire()} and {@link #release()}: a read lock that
 * {@code close()} (the write lock) waits for, so closing an object while another thread is inside
 * a call on it waits for that call instead of freeing memory under it. Using a closed object is
 * an {@link IllegalStateException}; closing one twice too (the ORT GenAI convention). The C API
 * lets a parent be freed before its children (it is destroyed with the last of them), so a
 * Context keeps working after its Model was closed.
 */
abstract class NativeObject implements AutoCloseable {
    private static final Cleaner CLEANER = Cleaner.create();

    private final String kind;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final Cleaner.Cleanable cleanable;
    /** The C handle; 0 once closed. Guarded by {@link #lock}. */
    private long nativeHandle;

    NativeObject(String kind, long nativeHandle, LongConsumer free) {
        if (nativeHandle == 0) throw new IllegalArgumentException(kind + ": null native handle");
        this.kind = kind;
        this.nativeHandle = nativeHandle;
        this.cleanable = CLEANER.register(this, new Free(nativeHandle, free));
    }

    /** The handle, with the object held open until {@link #release()}. */
    final long acquire() {
        lock.readLock().lock();
        if (nativeHandle == 0) {
            lock.readLock().unlock();
            throw new IllegalStateException(kind + " is closed");
        }
        return nativeHandle;
    }

    final void release() {
        lock.readLock().unlock();
        Reference.reachabilityFence(this); // no Cleaner run while a call is using the handle
    }

    /** True once {@link #close()} ran. */
    public final boolean isClosed() {
        lock.readLock().lock();
        try {
            return nativeHandle == 0;
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * Frees the native object. Waits for calls in progress on other threads.
     * @throws IllegalStateException if it was already closed
     */
    @Override
    public void close() {
        lock.writeLock().lock();
        try {
            if (nativeHandle == 0) throw new IllegalStateException(kind + " is already closed");
            nativeHandle = 0;
            cleanable.clean();
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Closes unless already closed (for internal owners such as TextStream). */
    final void closeQuietly() {
        lock.writeLock().lock();
        try {
            if (nativeHandle != 0) {
                nativeHandle = 0;
                cleanable.clean();
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** The cleaning action: must not refer to the object itself. */
    private static final class Free implements Runnable {
        private final long handle;
        private final LongConsumer free;

        Free(long handle, LongConsumer free) {
            this.handle = handle;
            this.free = free;
        }

        @Override
        public void run() {
            free.accept(handle);
        }
    }
}
