package eu.eurollm;

/** Helpers for the C API's caller-sized buffers (ask, then call again with the needed size). */
final class Sizes {
    private Sizes() {}

    /** A size reported by the library as a Java array length. */
    static int toInt(long n, String what) throws EurollmException {
        if (n < 0 || n > Integer.MAX_VALUE - 8)
            throw new EurollmException(Status.ERR_OUT_OF_MEMORY, what + ": " + n + " elements do not fit in a Java array");
        return (int) n;
    }

    /** The second call, made with the size the first one asked for, must succeed. */
    static void check(Status st) throws EurollmException {
        if (st.isError()) {
            String msg = EurollmNative.lastError();
            throw new EurollmException(st, msg == null || msg.isEmpty() ? EurollmNative.statusString(st) : msg);
        }
    }
}
