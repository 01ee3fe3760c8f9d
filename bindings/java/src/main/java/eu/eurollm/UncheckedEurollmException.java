package eu.eurollm;

import java.util.Objects;

/**
 * Wraps an {@link EurollmException} where a checked exception cannot be thrown: from
 * {@link java.util.Iterator#next()} and {@link java.util.stream.Stream} operations of a
 * {@link TextStream} (like {@link java.io.UncheckedIOException} does for I/O).
 */
public final class UncheckedEurollmException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public UncheckedEurollmException(EurollmException cause) {
        super(Objects.requireNonNull(cause, "cause").getMessage(), cause);
    }

    @Override
    public synchronized EurollmException getCause() {
        return (EurollmException) super.getCause();
    }

    /** The status of the wrapped exception. */
    public Status status() {
        return getCause().status();
    }
}
