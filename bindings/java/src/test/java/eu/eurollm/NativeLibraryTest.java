package eu.eurollm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Finding the native library, and the errors when it is missing or for another architecture. */
class NativeLibraryTest {
    static final String JNI = System.mapLibraryName("eurollm_jni");

    @Test
    void platformNames() {
        assertEquals("linux-x86_64", NativeLibrary.platform("Linux", "amd64"));
        assertEquals("linux-x86_64", NativeLibrary.platform("Linux", "x86_64"));
        assertEquals("linux-aarch64", NativeLibrary.platform("Linux", "aarch64"));
        assertEquals("macos-aarch64", NativeLibrary.platform("Mac OS X", "arm64"));
        assertEquals("windows-x86_64", NativeLibrary.platform("Windows 11", "amd64"));
    }

    @Test
    void theBuildBundlesTheLibrariesForThisPlatform() {
        String platform = NativeLibrary.platform(System.getProperty("os.name"), System.getProperty("os.arch"));
        assertNotNull(NativeLibrary.class.getResource(NativeLibrary.RESOURCE_ROOT + platform + "/libraries.txt"),
                      "no bundled libraries for " + platform);
        assertNotNull(NativeLibrary.class.getResource(NativeLibrary.RESOURCE_ROOT + platform + "/" + JNI));
        NativeLibrary.ensureLoaded(); // and they load
        assertTrue(Eurollm.versionNumber() > 0);
    }

    @Test
    void missingLibraryNamesWhatWasLookedFor(@TempDir Path empty) {
        List<Path> loaded = new ArrayList<>();
        UnsatisfiedLinkError e = assertThrows(UnsatisfiedLinkError.class,
            () -> NativeLibrary.load(empty.toString(), "", "linux-x86_64", NativeLibrary.class, loaded::add));
        assertTrue(e.getMessage().contains(empty.resolve(JNI).toString()), e.getMessage());
        assertTrue(e.getMessage().contains(NativeLibrary.DIR_PROPERTY), e.getMessage());
        assertTrue(loaded.isEmpty());

        // nothing on java.library.path and no bundle for this platform in the jar
        UnsatisfiedLinkError none = assertThrows(UnsatisfiedLinkError.class,
            () -> NativeLibrary.load(null, empty.toString(), "linux-sparc64", NativeLibrary.class, loaded::add));
        assertTrue(none.getMessage().contains("/eu/eurollm/native/linux-sparc64/libraries.txt"), none.getMessage());
        assertTrue(none.getMessage().contains("linux-sparc64"), none.getMessage());
        assertTrue(none.getMessage().contains("java.library.path=" + empty), none.getMessage());
        assertTrue(loaded.isEmpty());
    }

    @Test
    void wrongArchitectureLibraryIsAClearError(@TempDir Path dir) throws IOException {
        // The real JNI library relabelled as an AArch64 one (ELF e_machine = 183).
        String platform = NativeLibrary.platform(System.getProperty("os.name"), System.getProperty("os.arch"));
        byte[] lib;
        try (var in = NativeLibrary.class.getResourceAsStream(NativeLibrary.RESOURCE_ROOT + platform + "/" + JNI)) {
            assertNotNull(in);
            lib = in.readAllBytes();
        }
        boolean onArm = platform.endsWith("aarch64");
        ByteBuffer.wrap(lib).order(ByteOrder.LITTLE_ENDIAN).putShort(18, (short) (onArm ? 62 : 183));
        Files.write(dir.resolve(JNI), lib);
        UnsatisfiedLinkError e = assertThrows(UnsatisfiedLinkError.class,
            () -> NativeLibrary.load(dir.toString(), "", platform, NativeLibrary.class,
                                     p -> System.load(p.toString())));
        String msg = e.getMessage();
        assertTrue(msg.contains(dir.resolve(JNI).toString()), msg);
        // the loader's own reason is kept ("Can't load AARCH64 .so on a AMD 64 platform" on HotSpot)
        assertTrue(msg.contains(onArm ? "AMD 64" : "AARCH64"), msg);
    }

    @Test
    void searchOrderCoreFirstThenJni(@TempDir Path dir) throws IOException {
        Files.write(dir.resolve(JNI), new byte[0]);
        Files.write(dir.resolve("libeurollm.so.0"), new byte[0]);
        Files.write(dir.resolve("unrelated.so"), new byte[0]);
        List<Path> loaded = new ArrayList<>();
        NativeLibrary.load(null, "/nonexistent" + java.io.File.pathSeparator + dir, "linux-x86_64",
                           NativeLibrary.class, loaded::add);
        assertEquals(List.of(dir.resolve("libeurollm.so.0"), dir.resolve(JNI)), loaded);
    }

    @Test
    void bundledLibrariesAreExtractedInOrder() {
        String platform = NativeLibrary.platform(System.getProperty("os.name"), System.getProperty("os.arch"));
        List<String> names = new ArrayList<>();
        NativeLibrary.load(null, "", platform, NativeLibrary.class, p -> {
            assertTrue(Files.isRegularFile(p), p + " was extracted");
            names.add(p.getFileName().toString());
        });
        assertEquals(2, names.size());
        assertTrue(names.get(0).startsWith("libeurollm.so."), names.toString());
        assertEquals(JNI, names.get(1));
    }
}
