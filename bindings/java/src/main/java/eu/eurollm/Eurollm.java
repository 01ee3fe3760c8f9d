package eu.eurollm;

import java.util.Objects;

/** Library-wide facts: versions and devices. */
public final class Eurollm {
    private Eurollm() {}

    /** The version of the loaded libeurollm ("0.1.0"). */
    public static String version() {
        NativeLibrary.ensureLoaded();
        return EurollmNative.versionString();
    }

    /** The loaded libeurollm's version as MAJOR * 10000 + MINOR * 100 + PATCH. */
    public static int versionNumber() {
        NativeLibrary.ensureLoaded();
        return EurollmNative.versionNumber();
    }

    /** The version of capi/eurollm.h this binding was generated from. */
    public static String bindingVersion() {
        return EurollmNative.VERSION_STRING;
    }

    /** Number of usable devices of a kind (CPU: 1; a GPU kind not compiled in: 0). */
    public static int deviceCount(DeviceKind kind) {
        Objects.requireNonNull(kind, "kind");
        NativeLibrary.ensureLoaded();
        return EurollmNative.deviceCount(kind);
    }

    /**
     * Cosine similarity of two vectors of the same length (0 when either is all zeros), computed
     * by the library ({@code eurollm_cosine_similarity}).
     */
    public static float cosineSimilarity(float[] a, float[] b) throws EurollmException {
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(b, "b");
        if (a.length != b.length)
            throw new IllegalArgumentException("vectors of different lengths: " + a.length + " and " + b.length);
        NativeLibrary.ensureLoaded();
        float[] out = new float[1];
        EurollmNative.cosineSimilarity(a, b, a.length, out);
        return out[0];
    }

    /** The fixed English name of a status ("invalid argument"). */
    public static String describe(Status status) {
        Objects.requireNonNull(status, "status");
        NativeLibrary.ensureLoaded();
        return EurollmNative.statusString(status);
    }
}
