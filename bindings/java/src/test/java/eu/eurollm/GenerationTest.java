package eu.eurollm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import eu.eurollm.TestSupport.Request;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Generation from Java equals the C API's for the same settings (the reference program). */
class GenerationTest {
    static Path dir;
    static Model model;

    @BeforeAll
    static void load() throws EurollmException {
        dir = TestSupport.requireStories();
        model = Model.load(dir);
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    static Stream<Request> greedy() {
        return Stream.of(Request.of("Once upon a time").temp(0),
                         Request.of("").temp(0),
                         Request.of("The little dog").temp(0).n(100),
                         Request.of("Lily wanted to").temp(0).n(1),
                         Request.of("Ben and Mia went to the park.").temp(0).ignoreEos().n(200),
                         Request.of("Once upon a time").temp(0).repeat(1.3f).n(80));
    }

    static Stream<Request> sampled() {
        return Stream.of(Request.of("Once upon a time").temp(0.8f).seed(42),
                         Request.of("Once upon a time").temp(0.8f).seed(43),
                         Request.of("").temp(1.0f).topK(0).topP(1).minP(0).seed(7).n(120),
                         Request.of("The sun").temp(1.2f).topK(10).seed(123456789012345L),
                         Request.of("The sun").temp(0.9f).topP(0.7f).minP(0).seed(-1L), // seed 2^64-1
                         Request.of("A big").temp(0.7f).minP(0.2f).repeat(1.1f).seed(99).ignoreEos().n(150));
    }

    static Stream<Request> stops() {
        return Stream.of(Request.of("Once upon a time").temp(0).stop("Lily"),
                         Request.of("Once upon a time").temp(0).stop("park").stop(" play"),
                         Request.of("Once upon a time").temp(0.8f).seed(5).stop("."),
                         Request.of("Once upon a time").temp(0).stop("never appears in the text"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("greedy")
    void greedyMatchesC(Request r) throws EurollmException {
        String expected = r.reference(dir);
        assertFalse(expected.isEmpty() && r.maxTokens > 1, "the reference produced nothing");
        assertEquals(expected, model.generate(r.prompt, r.options()), r.toString());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("sampled")
    void seededSamplingMatchesC(Request r) throws EurollmException {
        assertEquals(r.reference(dir), model.generate(r.prompt, r.options()), r.toString());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("stops")
    void stopStringsMatchC(Request r) throws EurollmException {
        String expected = r.reference(dir);
        String actual = model.generate(r.prompt, r.options());
        assertEquals(expected, actual, r.toString());
        for (String s : r.stops) assertFalse(actual.contains(s), "stop string " + s + " leaked into " + actual);
    }

    @Test
    void samplingDependsOnTheSeed() throws EurollmException {
        // Guards the comparisons above against a sampler that silently ignores its settings.
        String a = model.generate("Once upon a time", Request.of("").temp(1.0f).seed(1).n(40).options());
        String b = model.generate("Once upon a time", Request.of("").temp(1.0f).seed(2).n(40).options());
        assertNotEquals(a, b);
        assertEquals(a, model.generate("Once upon a time", Request.of("").temp(1.0f).seed(1).n(40).options()));
    }

    @Test
    void iteratorStreamAndCallbackGiveTheSameText() throws EurollmException {
        for (Request r : List.of(Request.of("Once upon a time").temp(0), Request.of("Once").temp(0.8f).seed(3).stop("."))) {
            String whole = model.generate(r.prompt, r.options());

            StringBuilder viaIterator = new StringBuilder();
            try (TextStream it = model.generateStream(r.prompt, r.options())) {
                while (it.hasNext()) {
                    String piece = it.next();
                    assertFalse(piece.isEmpty());
                    viaIterator.append(piece);
                }
                assertThrows(NoSuchElementException.class, it::next);
                assertNotEquals(StopReason.NONE, it.stopReason());
            }
            assertEquals(whole, viaIterator.toString());

            try (Stream<String> s = model.generateStream(r.prompt, r.options()).stream()) {
                assertEquals(whole, s.collect(Collectors.joining()));
            }

            List<Integer> tokens = new ArrayList<>();
            StringBuilder viaCallback = new StringBuilder();
            String returned = model.generate(r.prompt, r.options(), (token, text) -> {
                tokens.add(token);
                viaCallback.append(text);
                return true;
            });
            assertEquals(whole, returned);
            assertEquals(whole, viaCallback.toString());
            assertFalse(tokens.isEmpty());
            // the generated ids re-tokenize... detokenize to the same text (no stop string in this one)
            if (r.stops.isEmpty()) {
                int[] ids = tokens.stream().filter(t -> t >= 0).mapToInt(Integer::intValue).toArray();
                assertEquals(whole.strip(), model.detokenize(ids).strip());
            }
        }
    }

    @Test
    void callbackReturningFalseStops() throws EurollmException {
        List<String> pieces = new ArrayList<>();
        String text = model.generate("Once upon a time", Request.of("").temp(0).n(60).options(), (token, piece) -> {
            pieces.add(piece);
            return pieces.size() < 5;
        });
        assertEquals(5, pieces.size());
        assertEquals(String.join("", pieces), text);
        String full = model.generate("Once upon a time", Request.of("").temp(0).n(60).options());
        assertTrue(full.startsWith(text) && full.length() > text.length());
    }

    @Test
    void maxTokensAndStopReason() throws EurollmException {
        try (TextStream it = model.generateStream("Once upon a time", Request.of("").temp(0).n(7).ignoreEos().options())) {
            it.forEachRemaining(piece -> {});
            assertEquals(StopReason.MAX_TOKENS, it.stopReason());
            assertEquals(7, it.generatedCount());
        }
    }

    @Test
    void generatorStepByStepMatchesGenerate() throws EurollmException {
        GenerationOptions greedy = Request.of("").temp(0).n(50).options();
        String expected = model.generate("Once upon a time", greedy);
        try (Context ctx = model.newContext(Context.Options.builder().size(256).threads(1).build());
             Generator gen = ctx.newGenerator(greedy)) {
            int[] prompt = model.tokenize("Once upon a time");
            gen.appendTokens(prompt);
            float[] logits = gen.logits();
            assertEquals(model.vocabSize(), logits.length);
            StringBuilder text = new StringBuilder();
            int first = gen.step();
            assertEquals(argmax(logits), first, "greedy picks the argmax of the logits");
            text.append(gen.textDelta());
            int token;
            while ((token = gen.step()) >= 0) {
                assertTrue(token < model.vocabSize());
                text.append(gen.textDelta());
            }
            text.append(gen.textDelta());
            assertEquals(expected, text.toString());
            assertTrue(gen.isFinished());
            assertEquals(-1, gen.step(), "a finished generator stays finished");
            assertTrue(ctx.tokenCount() >= prompt.length && ctx.tokenCount() <= prompt.length + gen.generatedCount());
        }
    }

    @Test
    void contextDecodeMatchesGeneratorLogits() throws EurollmException {
        int[] prompt = model.tokenize("Once upon a time");
        try (Context a = model.newContext(); Context b = model.newContext()) {
            float[] last = a.decode(prompt);
            float[][] all;
            try (Generator gen = b.newGenerator(GenerationOptions.defaults())) {
                gen.appendTokens(prompt);
                assertArrayEquals(last, gen.logits());
            }
            b.reset();
            all = b.decodeAll(prompt);
            assertEquals(prompt.length, all.length);
            assertArrayEquals(last, all[prompt.length - 1], 1e-5f);
            assertEquals(prompt.length, a.tokenCount());
            a.reset();
            assertEquals(0, a.tokenCount());
        }
    }

    @Test
    void contextReusedAcrossGenerations() throws EurollmException {
        GenerationOptions greedy = Request.of("").temp(0).n(40).options();
        try (Context ctx = model.newContext()) {
            String first = ctx.generate("Once upon a time", greedy);
            String second = ctx.generate("Once upon a time", greedy); // reset in between
            assertEquals(first, second);
            assertEquals(model.generate("Once upon a time", greedy), first);
        }
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; ++i) if (v[i] > v[best]) best = i;
        return best;
    }
}
