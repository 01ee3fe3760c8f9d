package eu.eurollm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Several sequences in one context: batched generation, sequence operations, saved state. */
class SequencesTest {
    static Model model;
    static final List<String> PROMPTS = List.of("Once upon a time", "The little dog", "Lily and Ben", "The sun was");

    @BeforeAll
    static void load() throws EurollmException {
        model = Model.load(TestSupport.requireStories());
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    @Test
    void batchedGenerationEqualsSeparateRunsAndC() throws EurollmException {
        Path dir = TestSupport.storiesDir();
        for (GenerationOptions o : List.of(GenerationOptions.builder().temperature(0).maxTokens(50).build(),
                                           GenerationOptions.builder().temperature(0.9f).seed(11).maxTokens(50).build(),
                                           GenerationOptions.builder().temperature(0).maxTokens(40).stopString(".").build())) {
            List<String> batched = model.generateBatch(PROMPTS, o);
            assertEquals(PROMPTS.size(), batched.size());
            for (int i = 0; i < PROMPTS.size(); ++i) {
                assertEquals(model.generate(PROMPTS.get(i), o), batched.get(i), o + " prompt " + i);
            }
        }
        // and against the C API for the greedy case
        TestSupport.Request r = TestSupport.Request.of(PROMPTS.get(1)).temp(0).n(50);
        assertEquals(r.reference(dir), model.generateBatch(PROMPTS, r.options()).get(1));
        assertEquals(List.of(), model.generateBatch(List.of(), GenerationOptions.defaults()));
    }

    @Test
    void stepBatchIsContinuousBatching() throws EurollmException {
        GenerationOptions greedy = GenerationOptions.builder().temperature(0).maxTokens(30).build();
        try (Context ctx = model.newContext(Context.Options.builder().size(256).build());
             Generator a = ctx.newGenerator(GenerationOptions.builder().temperature(0).maxTokens(30).sequence(0).build());
             Generator b = ctx.newGenerator(GenerationOptions.builder().temperature(0).maxTokens(30).sequence(5).build())) {
            a.appendTokens(model.tokenize(PROMPTS.get(0)));
            StringBuilder ta = new StringBuilder();
            StringBuilder tb = new StringBuilder();
            for (int i = 0; i < 5; ++i) { // a alone first, then b joins
                assertEquals(1, Generator.stepBatch(List.of(a)).length);
                ta.append(a.textDelta());
            }
            b.appendTokens(model.tokenize(PROMPTS.get(1)));
            boolean runA = true;
            boolean runB = true;
            while (runA || runB) {
                List<Generator> step = new ArrayList<>();
                if (runA) step.add(a);
                if (runB) step.add(b);
                int[] t = Generator.stepBatch(step);
                int k = 0;
                if (runA) { ta.append(a.textDelta()); runA = t[k++] >= 0; }
                if (runB) { tb.append(b.textDelta()); runB = t[k] >= 0; }
            }
            assertEquals(model.generate(PROMPTS.get(0), greedy), ta.toString());
            assertEquals(model.generate(PROMPTS.get(1), greedy), tb.toString());
            assertThrows(IllegalArgumentException.class, () -> {
                try (Context other = model.newContext(); Generator c = other.newGenerator(greedy)) {
                    Generator.stepBatch(List.of(a, c));
                }
            });
        }
    }

    @Test
    void sequenceOperationsAndLogits() throws EurollmException {
        int[] prompt = model.tokenize("Once upon a time");
        try (Context ctx = model.newContext(Context.Options.builder().size(128).build()); Context alone = model.newContext()) {
            float[] expected = alone.decode(prompt);
            ctx.decodeSequences(new int[] {0, 3}, new int[][] {prompt, {1, 403}});
            assertEquals(prompt.length, ctx.sequenceLength(0));
            assertEquals(2, ctx.sequenceLength(3));
            assertArrayEquals(expected, ctx.sequenceLogits(0));
            ctx.copySequence(0, 7);
            assertEquals(prompt.length, ctx.sequenceLength(7));
            ctx.truncateSequence(7, 2);
            assertEquals(2, ctx.sequenceLength(7));
            ctx.keepSequence(0);
            assertEquals(0, ctx.sequenceLength(3));
            ctx.removeSequence(0);
            assertEquals(0, ctx.sequenceLength(0));
            assertEquals(Status.ERR_INVALID_ARGUMENT, assertThrows(EurollmException.class,
                () -> ctx.decodeSequences(new int[] {1, 1}, new int[][] {{1}, {1}})).status());
            assertEquals(Status.ERR_INVALID_ARGUMENT, assertThrows(EurollmException.class,
                () -> ctx.decodeSequences(new int[] {Context.MAX_SEQUENCES}, new int[][] {{1}})).status());
            assertEquals(Status.ERR_INVALID_ARGUMENT, assertThrows(EurollmException.class, () -> ctx.sequenceLogits(9)).status());
            assertThrows(IllegalArgumentException.class, () -> ctx.decodeSequences(new int[] {0}, new int[][] {{1}, {1}}));
            assertThrows(NullPointerException.class, () -> ctx.decodeSequences(new int[] {0}, new int[][] {null}));
        }
    }

    @Test
    void stateSaveAndLoad(@TempDir Path tmp) throws EurollmException {
        int[] prompt = model.tokenize("Once upon a time");
        try (Context a = model.newContext(); Context b = model.newContext()) {
            float[] logits = a.decode(prompt);
            byte[] state = a.saveState();
            b.loadState(state);
            assertEquals(prompt.length, b.tokenCount());
            assertArrayEquals(logits, b.sequenceLogits(0));
            // continuing from the loaded state equals continuing from the original
            assertArrayEquals(a.decode(403), b.decode(403));
            a.saveState(tmp.resolve("state.bin"));
            b.reset();
            b.loadState(tmp.resolve("state.bin"));
            assertEquals(a.tokenCount(), b.tokenCount());
            byte[] corrupt = state.clone();
            corrupt[corrupt.length / 2] ^= 0x55;
            java.util.Arrays.fill(corrupt, 0, Math.min(16, corrupt.length), (byte) 0x7f);
            assertEquals(Status.ERR_INVALID_ARGUMENT, assertThrows(EurollmException.class, () -> b.loadState(corrupt)).status());
            assertEquals(Status.ERR_INVALID_ARGUMENT, assertThrows(EurollmException.class, () -> b.loadState(new byte[3])).status());
            assertEquals(a.tokenCount(), b.tokenCount(), "unchanged after a failed load");
            assertThrows(EurollmException.class, () -> b.loadState(tmp.resolve("missing.bin")));
        }
    }
}
