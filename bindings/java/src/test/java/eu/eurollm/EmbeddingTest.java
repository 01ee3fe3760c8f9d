package eu.eurollm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Embeddings from Java equal the C API's (the reference program prints exact hex floats). */
class EmbeddingTest {
    static Path dir;
    static Model model;
    static final List<String> TEXTS = List.of("Once upon a time", "Hi", "The little dog ran to the park.",
                                              "Ünïcödé 🙂", "a");

    @BeforeAll
    static void load() throws EurollmException {
        dir = TestSupport.requireStories();
        model = Model.load(dir);
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    static float[][] reference(List<String> texts, Pooling pooling, boolean normalize, int dim) {
        List<String> args = new ArrayList<>(List.of("embed", dir.toString(), Integer.toString(pooling.swigValue()),
                                                    normalize ? "1" : "0", Integer.toString(dim)));
        for (String t : texts) args.add(TestSupport.hex(t));
        String[] lines = TestSupport.reference(args.toArray(new String[0])).split("\n");
        String[] shape = lines[0].split(" ");
        int rows = Integer.parseInt(shape[0]);
        int cols = Integer.parseInt(shape[1]);
        float[][] out = new float[rows][cols];
        for (int r = 0; r < rows; ++r) {
            String[] v = lines[1 + r].split(" ");
            for (int c = 0; c < cols; ++c) out[r][c] = (float) Double.parseDouble(v[c]);
        }
        return out;
    }

    @Test
    void everyPoolingMatchesC() throws EurollmException {
        for (Pooling pooling : Pooling.values()) {
            for (boolean normalize : new boolean[] {false, true}) {
                for (int dim : new int[] {0, 16}) {
                    EmbedOptions o = EmbedOptions.builder().pooling(pooling).normalize(normalize).dimensions(dim).build();
                    float[][] expected = reference(TEXTS, pooling, normalize, dim);
                    float[][] actual = model.embed(TEXTS, o);
                    String what = pooling + " normalize=" + normalize + " dim=" + dim;
                    assertEquals(expected.length, actual.length, what);
                    for (int r = 0; r < expected.length; ++r) assertArrayEquals(expected[r], actual[r], what + " row " + r);
                    int width = dim == 0 ? (int) model.info(ModelInfo.N_EMBD) : dim;
                    for (float[] row : actual) assertEquals(width, row.length);
                    if (pooling == Pooling.PER_TOKEN) {
                        int tokens = 0;
                        for (String t : TEXTS) tokens += model.tokenize(t).length;
                        assertEquals(tokens, actual.length);
                    } else {
                        assertEquals(TEXTS.size(), actual.length);
                    }
                    if (normalize)
                        for (float[] row : actual) assertEquals(1.0, norm(row), 1e-5);
                }
            }
        }
    }

    @Test
    void tokensAndTextsAgree() throws EurollmException {
        int[][] ids = new int[TEXTS.size()][];
        for (int i = 0; i < ids.length; ++i) ids[i] = model.tokenize(TEXTS.get(i));
        try (Context ctx = model.newContext()) {
            float[][] fromTokens = ctx.embedTokens(ids, EmbedOptions.defaults());
            float[][] fromTexts = ctx.embed(TEXTS, EmbedOptions.defaults());
            for (int i = 0; i < ids.length; ++i) assertArrayEquals(fromTexts[i], fromTokens[i]);
            // each text is embedded as if alone
            assertArrayEquals(fromTexts[1], ctx.embed(List.of(TEXTS.get(1)), EmbedOptions.defaults())[0]);
            assertArrayEquals(fromTexts[0], model.embed(TEXTS.get(0)));
            assertEquals(0, ctx.embed(List.of(), EmbedOptions.defaults()).length);
        }
    }

    @Test
    void cosineSimilarity() throws EurollmException {
        float[][] e = model.embed(TEXTS, EmbedOptions.defaults());
        for (float[] a : e) {
            for (float[] b : e) {
                double dot = 0, aa = 0, bb = 0;
                for (int i = 0; i < a.length; ++i) {
                    dot += (double) a[i] * b[i];
                    aa += (double) a[i] * a[i];
                    bb += (double) b[i] * b[i];
                }
                assertEquals(dot / Math.sqrt(aa * bb), Eurollm.cosineSimilarity(a, b), 1e-6);
            }
        }
        assertEquals(0f, Eurollm.cosineSimilarity(new float[3], new float[] {1, 2, 3}));
        assertThrows(IllegalArgumentException.class, () -> Eurollm.cosineSimilarity(new float[2], new float[3]));
        assertThrows(NullPointerException.class, () -> Eurollm.cosineSimilarity(null, new float[3]));
    }

    @Test
    void badInputThrows() throws EurollmException {
        assertThrows(NullPointerException.class, () -> model.embed((List<String>) null, EmbedOptions.defaults()));
        assertThrows(NullPointerException.class, () -> model.embed(Arrays.asList("a", null), EmbedOptions.defaults()));
        assertThrows(NullPointerException.class, () -> model.embed(TEXTS, null));
        assertThrows(IllegalArgumentException.class, () -> EmbedOptions.builder().dimensions(-1));
        try (Context ctx = model.newContext(Context.Options.builder().size(8).build())) {
            assertThrows(NullPointerException.class, () -> ctx.embedTokens(new int[][] {{1}, null}, EmbedOptions.defaults()));
            assertEquals(Status.ERR_INVALID_ARGUMENT, assertThrows(EurollmException.class,
                () -> ctx.embedTokens(new int[][] {{1, 9999}}, EmbedOptions.defaults())).status());
            assertEquals(Status.ERR_INVALID_ARGUMENT, assertThrows(EurollmException.class,
                () -> ctx.embed(TEXTS, EmbedOptions.builder().dimensions(100000).build())).status());
            assertEquals(Status.ERR_CONTEXT_FULL, assertThrows(EurollmException.class,
                () -> ctx.embed(List.of("Once upon a time there was a little girl named Lily"), EmbedOptions.defaults())).status());
            assertEquals(1, ctx.embed(List.of("Hi"), EmbedOptions.defaults()).length, "usable after errors");
        }
    }

    @Test
    void parallelEmbeddingsEqualSerial() throws Exception {
        float[][] serial = model.embed(TEXTS, EmbedOptions.builder().normalize(true).build());
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<float[][]>> futures = new ArrayList<>();
            for (int i = 0; i < 16; ++i)
                futures.add(pool.submit(() -> model.embed(TEXTS, EmbedOptions.builder().normalize(true).build(),
                                                          Context.Options.builder().threads(1).build())));
            for (Future<float[][]> f : futures) {
                float[][] got = f.get();
                for (int r = 0; r < serial.length; ++r) assertArrayEquals(serial[r], got[r]);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private static double norm(float[] v) {
        double s = 0;
        for (float x : v) s += (double) x * x;
        return Math.sqrt(s);
    }
}
