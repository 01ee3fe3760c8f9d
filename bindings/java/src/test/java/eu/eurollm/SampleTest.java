package eu.eurollm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * samples/java/Generate.java runs as documented (single-file launch, a fresh JVM that loads the
 * native libraries from the classpath resources) and prints what the C API generates.
 */
class SampleTest {
    @Test
    void generateSampleMatchesC() throws IOException, InterruptedException {
        Path dir = TestSupport.requireStories();
        Path sample = TestSupport.repoRoot().resolve("samples/java/Generate.java");
        assertTrue(Files.isRegularFile(sample), sample.toString());
        String classes = System.getProperty("eurollm.test.classes", "target/classes");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(List.of(java, "-cp", classes, sample.toString(), dir.toString(),
                                               "Once upon a time", "-n", "60", "--temp", "0"))
            .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue());
        String expected = TestSupport.reference("generate", dir.toString(), "--prompt-hex",
                                                TestSupport.hex("Once upon a time"), "-n", "60", "--temp", "0");
        assertEquals(expected + System.lineSeparator(), out);
    }
}
