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

    /** A device's name: "cpu", or e.g. "NVIDIA H100 80GB HBM3 (sm_90)" ({@code eurollm_device_name}). */
    public static String deviceName(DeviceKind kind, int index) throws EurollmException {
        Objects.requireNonNull(kind, "kind");
        NativeLibrary.ensureLoaded();
        byte[] buf = new byte[256];
        long[] len = new long[1];
        if (EurollmNative.deviceName(kind, index, buf, len) == Status.ERR_BUFFER_TOO_SMALL) {
            buf = new byte[Sizes.toInt(len[0] + 1, "device name")];
            Sizes.check(EurollmNative.deviceName(kind, index, buf, len));
        }
        return new String(buf, 0, (int) len[0], java.nio.charset.StandardCharsets.UTF_8);
    }

    /** A GPU's memory in bytes as {total, free}; the CPU answers {0, 0} ({@code eurollm_device_memory}). */
    public static long[] deviceMemory(DeviceKind kind, int index) throws EurollmException {
        Objects.requireNonNull(kind, "kind");
        NativeLibrary.ensureLoaded();
        long[] total = new long[1], free = new long[1];
        EurollmNative.deviceMemory(kind, index, total, free);
        return new long[] {total[0], free[0]};
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
