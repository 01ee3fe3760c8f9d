package eu.eurollm;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A generation read as pieces of text: an {@link Iterator Iterator&lt;String&gt;} and, through
 * {@link #stream()}, a {@link Stream Stream&lt;String&gt;}. Empty pieces are skipped; the pieces
 * concatenated equal what {@code generate} returns for the same request.
 *
 * <p>It frees the native objects it owns when the last piece has been read, or on
 * {@link #close()} (idempotent), whichever comes first: use try-with-resources when a stream may
 * be abandoned early. Failures surface as {@link UncheckedEurollmException}. One thread at a time.
 *
 * <pre>{@code
 * try (TextStream pieces = model.generateStream("Once upon a time", options)) {
 *     pieces.forEachRemaining(System.out::print);
 * }
 * try (Stream<String> s = model.generateStream(prompt, options).stream()) {
 *     String text = s.collect(Collectors.joining());
 * }
 * }</pre>
 */
public final class TextStream implements Iterator<String>, AutoCloseable {
    private final Generator generator;
    private final boolean ownsGenerator;
    private final Context ownedContext;
    private String next;
    private boolean finished;
    private boolean closed;
    private StopReason stopReason = StopReason.NONE;
    private long generatedCount;

    /** Owns the generator and, if not null, the context. */
    TextStream(Generator generator, Context ownedContext) {
        this(generator, true, ownedContext);
    }

    TextStream(Generator generator, boolean ownsGenerator, Context ownedContext) {
        this.generator = generator;
        this.ownsGenerator = ownsGenerator;
        this.ownedContext = ownedContext;
    }

    @Override
    public boolean hasNext() {
        if (next != null) return true;
        if (finished) return false;
        if (closed) throw new IllegalStateException("TextStream is closed");
        try {
            while (true) {
                int token = generator.step();
                String delta = generator.textDelta();
                if (token < 0) {
                    finish();
                    if (delta.isEmpty()) return false;
                    next = delta;
                    return true;
                }
                if (!delta.isEmpty()) {
                    next = delta;
                    return true;
                }
            }
        } catch (EurollmException e) {
            close();
            throw new UncheckedEurollmException(e);
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        }
    }

    @Override
    public String next() {
        if (!hasNext()) throw new NoSuchElementException("the generation has ended");
        String piece = next;
        next = null;
        return piece;
    }

    /** The remaining pieces as a sequential Stream; closing the Stream closes this. */
    public Stream<String> stream() {
        Spliterator<String> split = Spliterators.spliteratorUnknownSize(this, Spliterator.ORDERED | Spliterator.NONNULL);
        return StreamSupport.stream(split, false).onClose(this::close);
    }

    /** Why generation ended; {@link StopReason#NONE} until the last piece has been read. */
    public StopReason stopReason() {
        return stopReason;
    }

    /** Tokens generated, known once the last piece has been read (0 before). */
    public long generatedCount() {
        return generatedCount;
    }

    private void finish() {
        finished = true;
        stopReason = generator.stopReason();
        generatedCount = generator.generatedCount();
        close();
    }

    /** Frees what this stream owns; later calls do nothing. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        if (ownsGenerator) generator.closeQuietly();
        if (ownedContext != null) ownedContext.closeQuietly();
    }
}
