package eu.eurollm;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Shared fixtures: the stories260K model (tests SKIP when it is absent) and the reference, a
 * pure-C program over capi/eurollm.h (src/test/native/eurollm_reference.c) that the tests run as
 * a subprocess to get the C API's own answer for the same request.
 */
final class TestSupport {
    private TestSupport() {}

    static Path repoRoot() {
        String p = System.getProperty("eurollm.test.repo");
        return (p != null ? Path.of(p) : Path.of("..", "..")).toAbsolutePath().normalize();
    }

    /** $EUROLLM_STORIES_DIR, else &lt;repo&gt;/../shared/models/stories260K. */
    static Path storiesDir() {
        String env = System.getenv("EUROLLM_STORIES_DIR");
        if (env != null && !env.isEmpty()) return Path.of(env);
        return repoRoot().resolve("../shared/models/stories260K").normalize();
    }

    /** Skips the calling test (or class) when the model is absent. */
    static Path requireStories() {
        Path dir = storiesDir();
        assumeTrue(Files.isRegularFile(dir.resolve("config.json")),
                   "stories260K not found at " + dir + " (set EUROLLM_STORIES_DIR)");
        return dir;
    }

    static Path referenceBinary() {
        String p = System.getProperty("eurollm.test.reference");
        Path bin = p != null ? Path.of(p) : Path.of("target", "native", "eurollm_reference");
        if (!Files.isExecutable(bin)) fail("the C reference program is missing: " + bin + " (run through Maven)");
        return bin;
    }

    static String hex(String s) {
        return HexFormat.of().formatHex(s.getBytes(StandardCharsets.UTF_8));
    }

    /** The result of one run of the reference program. */
    record Run(int exitCode, byte[] stdout, String stderr) {
        String text() {
            return new String(stdout, StandardCharsets.UTF_8);
        }
    }

    static Run runReference(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(referenceBinary().toString());
        cmd.addAll(Arrays.asList(args));
        try {
            Process proc = new ProcessBuilder(cmd).start();
            proc.getOutputStream().close();
            CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> readAll(proc.getErrorStream()));
            byte[] out = readAll(proc.getInputStream());
            if (!proc.waitFor(120, TimeUnit.SECONDS)) {
                proc.destroyForcibly();
                fail("reference timed out: " + cmd);
            }
            return new Run(proc.exitValue(), out, new String(err.join(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Runs the reference and returns its stdout as UTF-8, failing the test if it failed. */
    static String reference(String... args) {
        Run r = runReference(args);
        if (r.exitCode() != 0) fail("reference " + Arrays.toString(args) + " exited " + r.exitCode() + ": " + r.stderr());
        return r.text();
    }

    private static byte[] readAll(InputStream in) {
        try (in) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A generation request, turned into both Java options and reference arguments. */
    static final class Request {
        String prompt = "";
        int maxTokens = 60;
        Float temperature;
        Integer topK;
        Float topP;
        Float minP;
        Float repetitionPenalty;
        Long seed;
        boolean ignoreEos;
        final List<String> stops = new ArrayList<>();

        static Request of(String prompt) {
            Request r = new Request();
            r.prompt = prompt;
            return r;
        }

        Request n(int n) { maxTokens = n; return this; }
        Request temp(float t) { temperature = t; return this; }
        Request topK(int k) { topK = k; return this; }
        Request topP(float p) { topP = p; return this; }
        Request minP(float p) { minP = p; return this; }
        Request repeat(float r) { repetitionPenalty = r; return this; }
        Request seed(long s) { seed = s; return this; }
        Request ignoreEos() { ignoreEos = true; return this; }
        Request stop(String s) { stops.add(s); return this; }

        GenerationOptions options() {
            GenerationOptions.Builder b = GenerationOptions.builder().maxTokens(maxTokens);
            if (temperature != null) b.temperature(temperature);
            if (topK != null) b.topK(topK);
            if (topP != null) b.topP(topP);
            if (minP != null) b.minP(minP);
            if (repetitionPenalty != null) b.repetitionPenalty(repetitionPenalty);
            if (seed != null) b.seed(seed);
            if (ignoreEos) b.ignoreEos(true);
            for (String s : stops) b.stopString(s);
            return b.build();
        }

        /** What the C API generates for this request. */
        String reference(Path model) {
            List<String> a = new ArrayList<>(List.of("generate", model.toString(), "--prompt-hex", hex(prompt),
                                                     "-n", Integer.toString(maxTokens)));
            if (temperature != null) a.addAll(List.of("--temp", Float.toString(temperature)));
            if (topK != null) a.addAll(List.of("--top-k", Integer.toString(topK)));
            if (topP != null) a.addAll(List.of("--top-p", Float.toString(topP)));
            if (minP != null) a.addAll(List.of("--min-p", Float.toString(minP)));
            if (repetitionPenalty != null) a.addAll(List.of("--repeat-penalty", Float.toString(repetitionPenalty)));
            if (seed != null) a.addAll(List.of("--seed", Long.toUnsignedString(seed)));
            if (ignoreEos) a.add("--ignore-eos");
            for (String s : stops) a.addAll(List.of("--stop-hex", hex(s)));
            return TestSupport.reference(a.toArray(new String[0]));
        }

        @Override
        public String toString() {
            return "prompt=\"" + prompt + "\" n=" + maxTokens + " temp=" + temperature + " topK=" + topK + " topP=" + topP
                   + " minP=" + minP + " repeat=" + repetitionPenalty + " seed=" + seed + " ignoreEos=" + ignoreEos
                   + " stops=" + stops;
        }
    }
}
