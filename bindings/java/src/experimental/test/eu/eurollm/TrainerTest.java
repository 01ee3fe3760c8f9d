package eu.eurollm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The experimental training API from Java equals the C API's (compiled only when
 * capi/eurollm_experimental.h exists; see CMakeLists.txt).
 */
class TrainerTest {
    static final String TEXT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";
    static final int SEQ_LEN = 16;
    static Path dir;
    static Model model;
    static int[][] batch;

    @BeforeAll
    static void load() throws EurollmException {
        dir = TestSupport.requireStories();
        model = Model.load(dir);
        int[] ids = model.tokenize(TEXT);
        batch = new int[][] {Arrays.copyOfRange(ids, 0, SEQ_LEN), Arrays.copyOfRange(ids, SEQ_LEN, 2 * SEQ_LEN)};
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    static Trainer.Options options(TrainMode mode, int steps, float lr, long seed) {
        return Trainer.Options.builder().mode(mode).loraRank(4).learningRate(lr).seed(seed).warmupSteps(1)
                      .totalSteps(steps).threads(1).build();
    }

    @Test
    void stepsMatchC() throws EurollmException {
        for (TrainMode mode : TrainMode.values()) {
            int steps = 3;
            String[] ref = TestSupport.reference("train", dir.toString(), Integer.toString(mode.swigValue()),
                                                 Integer.toString(steps), "0.001", "7", Integer.toString(SEQ_LEN),
                                                 TestSupport.hex(TEXT)).split("\n");
            try (Trainer trainer = Trainer.create(model, options(mode, steps, 0.001f, 7))) {
                for (int s = 0; s < steps; ++s) {
                    TrainResult r = trainer.step(batch, batch);
                    String[] v = ref[s].split(" ");
                    String what = mode + " step " + (s + 1);
                    assertEquals(f(v[0]), r.loss(), what);
                    assertEquals(f(v[1]), r.gradNorm(), what);
                    assertEquals(f(v[2]), r.learningRate(), what);
                    assertEquals(Long.parseLong(v[3]), r.tokens(), what);
                    assertEquals(Long.parseLong(v[4]), r.lossTokens(), what);
                    assertEquals(Long.parseLong(v[5]), r.step(), what);
                }
                String[] eval = ref[steps].split(" ");
                Trainer.Evaluation e = trainer.evaluate(batch, batch);
                assertEquals(f(eval[1]), e.loss());
                assertEquals(Long.parseLong(eval[2]), e.lossTokens());
                String[] tensors = ref[steps + 1].split(" ");
                List<String> names = trainer.tensorNames();
                assertEquals(Integer.parseInt(tensors[1]), names.size());
                assertEquals(Long.parseLong(tensors[2]), trainer.parameterCount());
                assertEquals(ref[steps + 2], names.get(0));
                assertEquals(steps, trainer.stepCount());
                long total = 0;
                for (String n : names) total += trainer.tensor(n, TensorPart.VALUE).length;
                assertEquals(trainer.parameterCount(), total);
            }
        }
    }

    @Test
    void trainingLowersTheLossAndGradientsAreReadable() throws EurollmException {
        try (Trainer trainer = Trainer.create(model, options(TrainMode.FULL, 0, 0.003f, 1))) {
            float before = trainer.evaluate(batch, batch).loss();
            for (int i = 0; i < 5; ++i) trainer.step(batch, batch);
            assertTrue(trainer.evaluate(batch, batch).loss() < before);
            String name = trainer.tensorNames().get(0);
            float loss = trainer.computeGradients(batch, batch);
            assertTrue(loss > 0);
            float[] grad = trainer.tensor(name, TensorPart.GRAD);
            assertEquals(trainer.tensor(name, TensorPart.VALUE).length, grad.length);
            assertTrue(norm(grad) > 0);
            float[][] logits = trainer.logits(batch[0]);
            assertEquals(SEQ_LEN, logits.length);
            assertEquals(model.vocabSize(), logits[0].length);
        }
    }

    @Test
    void bf16PrecisionTracksExact() throws EurollmException {
        Trainer.Options.Builder opts = Trainer.Options.builder().mode(TrainMode.LORA).loraTargets(Trainer.LORA_ALL)
                                           .learningRate(0.005f).threads(1);
        try (Trainer exact = Trainer.create(model, opts.build());
             Trainer bf16 = Trainer.create(model, opts.precision(Precision.BF16).build())) {
            boolean differ = false;
            for (int s = 0; s < 4; ++s) {
                TrainResult a = exact.step(batch, batch), b = bf16.step(batch, batch);
                // bf16 products: the same run to within their rounding, not bit for bit.
                assertEquals(a.loss(), b.loss(), 2e-2 * a.loss(), "step " + (s + 1));
                differ |= a.loss() != b.loss();
            }
            assertTrue(differ, "BF16 gave EXACT's losses bit for bit: the precision did not reach the trainer");
        }
        assertThrows(NullPointerException.class, () -> Trainer.Options.builder().precision(null));
    }

    @Test
    void loraAdapterRoundTrip(@TempDir Path tmp) throws EurollmException {
        GenerationOptions greedy = GenerationOptions.builder().temperature(0).maxTokens(30).build();
        String base = model.generate("Once upon a time", greedy);
        Path adapter = tmp.resolve("adapter");
        float[][] trainedLogits;
        try (Trainer trainer = Trainer.create(model, Trainer.Options.builder().mode(TrainMode.LORA).loraRank(4)
                                                   .loraTargets(Trainer.LORA_ALL).learningRate(0.01f).seed(3).threads(1).build())) {
            for (int i = 0; i < 5; ++i) trainer.step(batch, batch);
            trainer.exportPeft(adapter);
            trainedLogits = trainer.logits(batch[0]);
            trainer.setDataPosition(new Trainer.DataPosition(2, 40, -1L));
            trainer.saveCheckpoint(tmp.resolve("run"));
        }
        try (Model adapted = Trainer.loadModelWithAdapter(dir, adapter, 1.0f, Model.Options.defaults());
             Context ctx = adapted.newContext()) {
            float[][] all = ctx.decodeAll(batch[0]);
            for (int i = 0; i < all.length; ++i) assertArrayEquals(trainedLogits[i], all[i], 1e-3f);
            assertNotEquals(base, adapted.generate("Once upon a time", greedy));
        }
        try (Model unchanged = Trainer.loadModelWithAdapter(dir, adapter, 0.0f, Model.Options.defaults())) {
            assertEquals(base, unchanged.generate("Once upon a time", greedy));
        }
        try (Trainer resumed = Trainer.create(model, Trainer.Options.builder().mode(TrainMode.LORA).loraRank(4)
                                                   .loraTargets(Trainer.LORA_ALL).learningRate(0.01f).seed(3).threads(1).build())) {
            resumed.loadCheckpoint(tmp.resolve("run"));
            assertEquals(5, resumed.stepCount());
            assertEquals(new Trainer.DataPosition(2, 40, -1L), resumed.dataPosition());
        }
    }

    @Test
    void badInputThrows(@TempDir Path tmp) throws EurollmException {
        try (Trainer trainer = Trainer.create(model, options(TrainMode.LORA, 0, 0.001f, 0))) {
            assertThrows(NullPointerException.class, () -> trainer.step(null, batch));
            assertThrows(IllegalArgumentException.class, () -> trainer.step(new int[0][], new int[0][]));
            assertThrows(IllegalArgumentException.class, () -> trainer.step(batch, new int[][] {batch[0]}));
            assertThrows(IllegalArgumentException.class, () -> trainer.step(new int[][] {{1, 2, 3}, {1, 2}}, new int[][] {{1, 2, 3}, {1, 2}}));
            assertEquals(Status.ERR_INVALID_ARGUMENT,
                assertThrows(EurollmException.class, () -> trainer.step(new int[][] {{1, 9999}}, new int[][] {{1, 9999}})).status());
            assertEquals(Status.ERR_INVALID_ARGUMENT,
                assertThrows(EurollmException.class, () -> trainer.tensor("no such tensor", TensorPart.VALUE)).status());
            assertEquals(Status.ERR_IO,
                assertThrows(EurollmException.class, () -> trainer.loadCheckpoint(tmp.resolve("none"))).status());
            assertFalse(trainer.tensorNames().isEmpty(), "usable after errors");
        }
        Trainer t = Trainer.create(model, Trainer.Options.defaults());
        t.close();
        assertThrows(IllegalStateException.class, t::close);
        assertThrows(IllegalStateException.class, () -> t.step(batch, batch));
        assertThrows(NullPointerException.class, () -> Trainer.create(null, Trainer.Options.defaults()));
    }

    private static float f(String hex) {
        return (float) Double.parseDouble(hex);
    }

    private static double norm(float[] v) {
        double s = 0;
        for (float x : v) s += (double) x * x;
        return Math.sqrt(s);
    }
}
