package eu.eurollm;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Finds and loads the two native libraries: {@code libeurollm.so.N} (the C API) and
 * {@code libeurollm_jni.so} (the SWIG-generated JNI layer, which links against the first).
 *
 * <p>Where it looks, in this order:
 * <ol>
 *   <li>the directory named by the system property {@value #DIR_PROPERTY}, when it is set (and
 *       then nowhere else);
 *   <li>each directory of {@code java.library.path} that holds {@code libeurollm_jni.so};
 *   <li>the jar: {@code /eu/eurollm/native/<os>-<arch>/} (listed by its {@code libraries.txt}),
 *       extracted to a temporary directory.
 * </ol>
 * The core is loaded before the JNI library, so the JNI library's dependency is satisfied by the
 * already loaded SONAME. A failure is an {@link UnsatisfiedLinkError} whose message lists every
 * place looked at and why each one failed (missing, wrong architecture, unloadable dependency).
 */
final class NativeLibrary {
    /** System property: a directory holding libeurollm_jni.so and libeurollm.so.N. */
    static final String DIR_PROPERTY = "eurollm.native.dir";
    static final String RESOURCE_ROOT = "/eu/eurollm/native/";
    static final String JNI_LIBRARY = "eurollm_jni";
    private static final Pattern CORE_NAME = Pattern.compile("libeurollm\\.so\\.[0-9]+|libeurollm\\.so|libeurollm\\.[0-9]+\\.dylib|libeurollm\\.dylib|eurollm\\.dll");

    private static final Object LOCK = new Object();
    private static volatile boolean loaded;
    private static String failure;

    private NativeLibrary() {}

    /** Loads the libraries once per class loader; later calls repeat the first failure. */
    static void ensureLoaded() {
        if (loaded) return;
        synchronized (LOCK) {
            if (loaded) return;
            if (failure != null) throw new UnsatisfiedLinkError(failure);
            try {
                load(System.getProperty(DIR_PROPERTY), System.getProperty("java.library.path", ""),
                     platform(System.getProperty("os.name", ""), System.getProperty("os.arch", "")),
                     NativeLibrary.class, path -> System.load(path.toString()));
                checkVersion();
                loaded = true;
            } catch (UnsatisfiedLinkError e) {
                failure = e.getMessage();
                throw e;
            }
        }
    }

    /** The bundle directory name of a platform: "linux-x86_64", "linux-aarch64", "macos-aarch64". */
    static String platform(String osName, String osArch) {
        String os = osName.toLowerCase(Locale.ROOT);
        if (os.startsWith("linux")) os = "linux";
        else if (os.startsWith("mac") || os.startsWith("darwin")) os = "macos";
        else if (os.startsWith("windows")) os = "windows";
        else os = os.replaceAll("[^a-z0-9]", "");
        String arch = osArch.toLowerCase(Locale.ROOT);
        switch (arch) {
            case "amd64": case "x86_64": case "x64": arch = "x86_64"; break;
            case "aarch64": case "arm64": arch = "aarch64"; break;
            default: arch = arch.replaceAll("[^a-z0-9_]", "");
        }
        return os + "-" + arch;
    }

    /**
     * The search itself, with its inputs explicit so tests can point it at fake places.
     * @param loader loads one library file (System.load in production)
     */
    static void load(String overrideDir, String libraryPath, String platform, Class<?> anchor, Consumer<Path> loader) {
        String jniFile = System.mapLibraryName(JNI_LIBRARY);
        List<String> tried = new ArrayList<>();
        if (overrideDir != null && !overrideDir.isEmpty()) {
            Path dir = Path.of(overrideDir);
            if (tryDirectory(dir, jniFile, loader, tried)) return;
            throw notFound(jniFile, platform, tried, "-D" + DIR_PROPERTY + "=" + overrideDir + " was set, so nothing else was searched");
        }
        for (String entry : libraryPath.split(java.io.File.pathSeparator)) {
            if (entry.isEmpty()) continue;
            Path dir = Path.of(entry);
            if (!Files.isRegularFile(dir.resolve(jniFile))) continue;
            if (tryDirectory(dir, jniFile, loader, tried)) return;
        }
        if (libraryPath.isEmpty()) tried.add("java.library.path: empty");
        else tried.add("java.library.path=" + libraryPath + ": no " + jniFile + " (or it failed, see above)");
        if (tryResources(anchor, platform, loader, tried)) return;
        throw notFound(jniFile, platform, tried, null);
    }

    private static boolean tryDirectory(Path dir, String jniFile, Consumer<Path> loader, List<String> tried) {
        Path jni = dir.resolve(jniFile);
        if (!Files.isRegularFile(jni)) {
            tried.add(jni + ": no such file");
            return false;
        }
        Path core = findCore(dir);
        try {
            if (core != null) loader.accept(core);
            loader.accept(jni);
            return true;
        } catch (UnsatisfiedLinkError e) {
            tried.add((core != null ? core + " + " : "") + jni + ": " + e.getMessage());
            return false;
        }
    }

    private static Path findCore(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(p -> CORE_NAME.matcher(p.getFileName().toString()).matches())
                        .sorted((a, b) -> b.getFileName().toString().length() - a.getFileName().toString().length())
                        .findFirst().orElse(null);
        } catch (IOException e) {
            return null;
        }
    }

    private static boolean tryResources(Class<?> anchor, String platform, Consumer<Path> loader, List<String> tried) {
        String base = RESOURCE_ROOT + platform + "/";
        List<String> names = new ArrayList<>();
        try (InputStream index = anchor.getResourceAsStream(base + "libraries.txt")) {
            if (index == null) {
                tried.add("jar resource " + base + "libraries.txt: absent (this jar has no native libraries for "
                          + platform + ")");
                return false;
            }
            BufferedReader r = new BufferedReader(new InputStreamReader(index, StandardCharsets.UTF_8));
            for (String line; (line = r.readLine()) != null; ) {
                if (!line.isBlank()) names.add(line.strip());
            }
        } catch (IOException e) {
            tried.add("jar resource " + base + "libraries.txt: " + e);
            return false;
        }
        Path dir;
        try {
            dir = Files.createTempDirectory("eurollm-native-");
        } catch (IOException e) {
            tried.add("jar resources " + base + ": cannot create a temporary directory: " + e);
            return false;
        }
        List<Path> extracted = new ArrayList<>();
        try {
            for (String name : names) {
                try (InputStream in = anchor.getResourceAsStream(base + name)) {
                    if (in == null) {
                        tried.add("jar resource " + base + name + ": absent (listed in libraries.txt)");
                        return false;
                    }
                    Path file = dir.resolve(name);
                    Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
                    extracted.add(file);
                }
            }
            for (Path file : extracted) {
                try {
                    loader.accept(file);
                } catch (UnsatisfiedLinkError e) {
                    tried.add("jar resource " + base + file.getFileName() + " (extracted to " + file + "): "
                              + e.getMessage());
                    return false;
                }
            }
            return true;
        } catch (IOException e) {
            tried.add("jar resources " + base + ": extraction to " + dir + " failed: " + e);
            return false;
        } finally {
            // Loaded libraries stay mapped after their files are removed (where the OS allows it).
            for (Path file : extracted) deleteQuietly(file);
            deleteQuietly(dir);
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            p.toFile().deleteOnExit();
        }
    }

    private static UnsatisfiedLinkError notFound(String jniFile, String platform, List<String> tried, String note) {
        StringBuilder sb = new StringBuilder();
        sb.append("eurollm: cannot load the native library ").append(jniFile)
          .append(" (with libeurollm) for platform ").append(platform).append(". Looked at:");
        for (String t : tried) sb.append("\n  - ").append(t);
        if (note != null) sb.append("\n  (").append(note).append(")");
        sb.append("\nBuild it with `mvn package` in bindings/java, or point -D").append(DIR_PROPERTY)
          .append(" at a directory holding ").append(jniFile).append(" and libeurollm.");
        return new UnsatisfiedLinkError(sb.toString());
    }

    /** The loaded libeurollm must have the ABI major this binding was generated for. */
    private static void checkVersion() {
        int runtime = EurollmNative.versionNumber();
        int major = runtime / 10000;
        if (major != EurollmNative.VERSION_MAJOR) {
            throw new UnsatisfiedLinkError("eurollm: the loaded libeurollm is version " + EurollmNative.versionString()
                                           + " but this binding was generated for " + EurollmNative.VERSION_STRING
                                           + " (the major versions must match)");
        }
    }
}
