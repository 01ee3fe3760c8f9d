package eu.eurollm;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Misuse and bad input are exceptions, never JVM crashes (the JVM running this test is the proof). */
class LifecycleTest {
    static Path dir;
    static final GenerationOptions GREEDY = GenerationOptions.builder().temperature(0).maxTokens(20).build();

    @BeforeAll
    static void requireModel() {
        dir = TestSupport.requireStories();
    }

    @Test
    void closingTwiceThrows() throws EurollmException {
        Model model = Model.load(dir);
        Context ctx = model.newContext();
        Generator gen = ctx.newGenerator(GREEDY);
        gen.close();
        assertThrows(IllegalStateException.class, gen::close);
        ctx.close();
        assertThrows(IllegalStateException.class, ctx::close);
        assertFalse(model.isClosed());
        model.close();
        assertTrue(model.isClosed());
        IllegalStateException e = assertThrows(IllegalStateException.class, model::close);
        assertTrue(e.getMessage().contains("Model"));
    }

    @Test
    void usingClosedObjectsThrows() throws EurollmException {
        Model model = Model.load(dir);
        Context ctx = model.newContext();
        Generator gen = ctx.newGenerator(GREEDY);
        gen.close();
        assertThrows(IllegalStateException.class, gen::step);
        assertThrows(IllegalStateException.class, gen::textDelta);
        assertThrows(IllegalStateException.class, gen::logits);
        assertThrows(IllegalStateException.class, gen::stopReason);
        assertThrows(IllegalStateException.class, () -> gen.appendTokens(1));
        assertThrows(IllegalStateException.class, () -> gen.addStopString("x"));
        ctx.close();
        assertThrows(IllegalStateException.class, ctx::reset);
        assertThrows(IllegalStateException.class, () -> ctx.decode(1));
        assertThrows(IllegalStateException.class, () -> ctx.generate("Once", GREEDY));
        assertThrows(IllegalStateException.class, () -> ctx.newGenerator(GREEDY));
        model.close();
        assertThrows(IllegalStateException.class, () -> model.tokenize("Once"));
        assertThrows(IllegalStateException.class, () -> model.detokenize(new int[] {1}));
        assertThrows(IllegalStateException.class, () -> model.tokenToPiece(1));
        assertThrows(IllegalStateException.class, () -> model.info(ModelInfo.N_VOCAB));
        assertThrows(IllegalStateException.class, model::architecture);
        assertThrows(IllegalStateException.class, model::newContext);
        assertThrows(IllegalStateException.class, () -> model.generate("Once", GREEDY));
        assertThrows(IllegalStateException.class, () -> model.generateStream("Once", GREEDY));
    }

    @Test
    void childrenOutliveTheirParents() throws EurollmException {
        // The C API frees a parent with its last child, so closing in the "wrong" order is safe.
        String expected;
        try (Model m = Model.load(dir)) {
            expected = m.generate("Once upon a time", GREEDY);
        }
        Model model = Model.load(dir);
        Context ctx = model.newContext();
        Generator gen = ctx.newGenerator(GREEDY);
        model.close();
        ctx.close();
        gen.appendTokens(1, 403, 407, 261, 378); // "Once upon a time" with BOS
        StringBuilder text = new StringBuilder();
        while (gen.step() >= 0) text.append(gen.textDelta());
        text.append(gen.textDelta());
        gen.close();
        assertEquals(expected, text.toString());
    }

    @Test
    void nullArgumentsThrow() throws EurollmException {
        assertThrows(NullPointerException.class, () -> Model.load(null));
        assertThrows(NullPointerException.class, () -> Model.load(dir, null));
        try (Model model = Model.load(dir); Context ctx = model.newContext(); Generator gen = ctx.newGenerator(GREEDY)) {
            assertThrows(NullPointerException.class, () -> model.tokenize(null));
            assertThrows(NullPointerException.class, () -> model.tokenize(null, 0));
            assertThrows(NullPointerException.class, () -> model.detokenize(null));
            assertThrows(NullPointerException.class, () -> model.info(null));
            assertThrows(NullPointerException.class, () -> model.newContext(null));
            assertThrows(NullPointerException.class, () -> model.generate(null, GREEDY));
            assertThrows(NullPointerException.class, () -> model.generate("x", null));
            assertThrows(NullPointerException.class, () -> model.generate("x", GREEDY, (TokenCallback) null));
            assertThrows(NullPointerException.class, () -> model.generateStream(null, GREEDY));
            assertThrows(NullPointerException.class, () -> ctx.decode((int[]) null));
            assertThrows(NullPointerException.class, () -> ctx.generate(null, GREEDY));
            assertThrows(NullPointerException.class, () -> ctx.newGenerator(null));
            assertThrows(NullPointerException.class, () -> gen.appendTokens((int[]) null));
            assertThrows(NullPointerException.class, () -> gen.addStopString(null));
            assertThrows(NullPointerException.class, () -> GenerationOptions.builder().stopString(null));
            assertThrows(NullPointerException.class, () -> Model.Options.builder().device(null));
            assertThrows(NullPointerException.class, () -> Eurollm.deviceCount(null));
            // everything still works afterwards
            gen.appendTokens(1, 403);
            assertTrue(gen.step() >= 0);
            assertFalse(model.generate("Once upon a time", GREEDY).isEmpty());
        }
    }

    @Test
    void badModelPathsThrow(@TempDir Path tmp) throws IOException {
        Path missing = tmp.resolve("no-such-model");
        EurollmException e = assertThrows(EurollmException.class, () -> Model.load(missing));
        assertEquals(Status.ERR_IO, e.status());
        assertTrue(e.getMessage().contains("no-such-model"), e.getMessage());

        Path broken = Files.createDirectory(tmp.resolve("broken"));
        Files.writeString(broken.resolve("config.json"), "{ this is not json");
        EurollmException bad = assertThrows(EurollmException.class, () -> Model.load(broken));
        assertTrue(Set.of(Status.ERR_BAD_MODEL, Status.ERR_IO).contains(bad.status()), bad.toString());
        assertFalse(bad.getMessage().isEmpty());

        Path truncated = Files.createDirectory(tmp.resolve("truncated"));
        for (String f : new String[] {"config.json", "tokenizer.model", "tokenizer_config.json", "generation_config.json"})
            if (Files.exists(dir.resolve(f))) Files.copy(dir.resolve(f), truncated.resolve(f));
        byte[] weights = Files.readAllBytes(dir.resolve("model.safetensors"));
        Files.write(truncated.resolve("model.safetensors"), java.util.Arrays.copyOf(weights, weights.length / 2));
        EurollmException trunc = assertThrows(EurollmException.class, () -> Model.load(truncated));
        assertTrue(Set.of(Status.ERR_BAD_MODEL, Status.ERR_IO).contains(trunc.status()), trunc.toString());

        assertEquals(Status.ERR_UNSUPPORTED, assertThrows(EurollmException.class,
            () -> Model.load(dir, Model.Options.builder().device(DeviceKind.HIP).build())).status());
    }

    @Test
    void badGenerationInputThrows() throws EurollmException {
        try (Model model = Model.load(dir)) {
            try (Context ctx = model.newContext(Context.Options.builder().size(16).threads(1).build())) {
                assertEquals(16, ctx.size());
                try (Generator gen = ctx.newGenerator(GREEDY)) {
                    assertEquals(Status.ERR_INVALID_ARGUMENT,
                                 assertThrows(EurollmException.class, () -> gen.appendTokens(1, 512)).status());
                    assertEquals(Status.ERR_INVALID_ARGUMENT,
                                 assertThrows(EurollmException.class, () -> gen.appendTokens(-5)).status());
                    assertEquals(Status.ERR_CONTEXT_FULL,
                                 assertThrows(EurollmException.class, () -> gen.appendTokens(new int[40])).status());
                    assertEquals(Status.ERR_INVALID_ARGUMENT,
                                 assertThrows(EurollmException.class, () -> gen.addStopString("")).status());
                    assertEquals(Status.ERR_INVALID_ARGUMENT,
                                 assertThrows(EurollmException.class, () -> gen.addStopToken(100000)).status());
                    // one generator per context
                    assertEquals(Status.ERR_INVALID_ARGUMENT,
                                 assertThrows(EurollmException.class, () -> ctx.newGenerator(GREEDY)).status());
                    // logits before any token was appended
                    assertThrows(EurollmException.class, gen::logits);
                }
                assertEquals(Status.ERR_CONTEXT_FULL, assertThrows(EurollmException.class,
                    () -> ctx.generate("Once upon a time there was a little girl named Lily who loved to play", GREEDY)).status());
                assertEquals(Status.ERR_CONTEXT_FULL,
                             assertThrows(EurollmException.class, () -> ctx.decode(new int[17])).status());
                assertEquals(Status.ERR_INVALID_ARGUMENT,
                             assertThrows(EurollmException.class, () -> ctx.decode(1, 600)).status());
                // a context that failed stays usable
                ctx.reset();
                assertEquals(model.vocabSize(), ctx.decode(1).length);
            }
            // stop token and max_tokens 0 (= until the context is full) on a small context
            String text = model.generate("Once", GenerationOptions.builder().temperature(0).maxTokens(0).ignoreEos(true).build(),
                                         Context.Options.builder().size(32).build(), null);
            assertFalse(text.isEmpty());
            try (TextStream s = model.generateStream("Once", GenerationOptions.builder().temperature(0).maxTokens(0)
                                                                  .ignoreEos(true).build(),
                                                      Context.Options.builder().size(32).build())) {
                s.forEachRemaining(p -> {});
                assertEquals(StopReason.CONTEXT_FULL, s.stopReason());
            }
            // iterator misuse
            TextStream s = model.generateStream("Once", GREEDY);
            s.close();
            s.close(); // idempotent: try-with-resources after reading to the end must not throw
            assertThrows(IllegalStateException.class, s::hasNext);
        }
    }

    @Test
    void oddSettingsGiveAResultOrAnException() throws EurollmException {
        // Whatever the library makes of these, the answer is a value or an EurollmException.
        List<GenerationOptions> options = List.of(
            GenerationOptions.builder().temperature(-1).maxTokens(5).build(),
            GenerationOptions.builder().temperature(Float.NaN).maxTokens(5).build(),
            GenerationOptions.builder().temperature(Float.POSITIVE_INFINITY).maxTokens(5).seed(1).build(),
            GenerationOptions.builder().topK(-3).topP(-1).minP(2).maxTokens(5).build(),
            GenerationOptions.builder().repetitionPenalty(0).frequencyPenalty(-5).penaltyLastN(-7).maxTokens(5).build(),
            GenerationOptions.builder().maxTokens(-10).build(),
            GenerationOptions.builder().stopToken(-1).build(),
            GenerationOptions.builder().stopString("\u0000").maxTokens(5).build());
        List<Context.Options> contexts = List.of(
            Context.Options.builder().threads(-4).build(),
            Context.Options.builder().batchSize(0).build(),
            Context.Options.builder().batchSize(1).size(1).build(),
            Context.Options.builder().size(Integer.MAX_VALUE).build());
        try (Model model = Model.load(dir)) {
            for (GenerationOptions o : options) {
                try {
                    model.generate("Once", o, Context.Options.builder().size(64).build(), null);
                } catch (EurollmException expected) {
                    assertFalse(expected.getMessage().isEmpty());
                }
            }
            for (Context.Options c : contexts) {
                try {
                    model.generate("Once", GREEDY, c, null);
                } catch (EurollmException expected) {
                    assertFalse(expected.getMessage().isEmpty());
                }
            }
            for (DeviceKind d : DeviceKind.values()) {
                try (Model m = Model.load(dir, Model.Options.builder().device(d).deviceIndex(3).gpuLayers(-9).useMmap(false).build())) {
                    assertFalse(m.generate("Once", GREEDY).isEmpty());
                } catch (EurollmException expected) {
                    assertFalse(expected.getMessage().isEmpty());
                }
            }
            assertFalse(model.generate("Once", GREEDY).isEmpty());
        }
    }

    @Test
    void exceptionsFromCallbacksPropagateAndReleaseTheContext() throws EurollmException {
        try (Model model = Model.load(dir); Context ctx = model.newContext()) {
            RuntimeException boom = new RuntimeException("boom");
            assertEquals(boom, assertThrows(RuntimeException.class, () -> ctx.generate("Once", GREEDY, (t, s) -> {
                throw boom;
            })));
            // the generator was freed: the context takes a new one
            assertDoesNotThrow(() -> ctx.generate("Once", GREEDY));
        }
    }

    @Test
    void closingWhileAnotherThreadGenerates() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            for (int round = 0; round < 5; ++round) {
                Model model = Model.load(dir);
                Context ctx = model.newContext(Context.Options.builder().threads(1).build());
                CountDownLatch started = new CountDownLatch(1);
                Future<String> gen = pool.submit(() -> ctx.generate("Once upon a time",
                    GenerationOptions.builder().temperature(0).maxTokens(200).ignoreEos(true).build(), (t, s) -> {
                        started.countDown();
                        return true;
                    }));
                started.await();
                // Neither waits for nor breaks the generation in flight: the C API keeps a context
                // (and its model) alive until its generator is freed, at the end of generate().
                ctx.close();
                model.close();
                assertFalse(gen.get().isEmpty());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void unclosedObjectsAreCleanedUp() throws Exception {
        for (int i = 0; i < 20; ++i) {
            Model model = Model.load(dir);
            Context ctx = model.newContext(Context.Options.builder().size(64).build());
            ctx.newGenerator(GREEDY).appendTokens(1);
        }
        System.gc();
        Thread.sleep(100);
        System.gc();
        try (Model model = Model.load(dir)) {
            assertFalse(model.generate("Once", GREEDY).isEmpty());
        }
    }
}
