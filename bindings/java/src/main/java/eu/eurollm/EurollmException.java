package eu.eurollm;

import java.nio.charset.StandardCharsets;

/**
 * A failed call into libeurollm: the {@link Status} the C API returned and the message of
 * {@code eurollm_last_error()} at that moment.
 *
 * <p>Checked, because loading files, running out of context and similar failures are expected
 * outcomes a caller should handle. Programming errors are unchecked, as usual in Java: a
 * {@code null} argument is a {@link NullPointerException}, using a closed object an
 * {@link IllegalStateException}.
 */
public final class EurollmException extends Exception {
    private static final long serialVersionUID = 1L;

    private final Status status;
    private final int code;

    /** An error the binding detects itself, with the status the C API would give. */
    EurollmException(Status status, String message) {
        super(message);
        this.status = status;
        this.code = status.swigValue();
    }

    /** Called by the JNI layer (eurollm.i): the status code and the UTF-8 bytes of the message. */
    EurollmException(int code, byte[] utf8Message) {
        super(new String(utf8Message, StandardCharsets.UTF_8));
        this.code = code;
        this.status = statusOf(code);
    }

    private static Status statusOf(int code) {
        try {
            return Status.swigToEnum(code);
        } catch (IllegalArgumentException unknown) {
            return Status.ERR_GENERIC; // a status newer than this binding; code() keeps the number
        }
    }

    /** The status of the failed call (never {@link Status#OK} or {@link Status#DONE}). */
    public Status status() {
        return status;
    }

    /** The numeric status exactly as the library returned it (stable across versions). */
    public int code() {
        return code;
    }

    @Override
    public String toString() {
        return "EurollmException[" + status + "]: " + getMessage();
    }
}
