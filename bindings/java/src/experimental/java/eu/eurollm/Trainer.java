package eu.eurollm;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Training on a {@link Model}: full fine-tuning or LoRA ({@code eurollm_trainer}, from
 * capi/eurollm_experimental.h). EXPERIMENTAL: it follows that header, which has no ABI promise.
 *
 * <p>Batches are {@code tokens[nSeqs][seqLen]} with labels of the same shape in the Hugging Face
 * convention: position t is trained to predict {@code labels[t + 1]}; a label of
 * {@link #IGNORE_LABEL} (-100) is not trained on (set prompt positions to it to train on answers
 * only). The model is never written: save the result with {@link #saveModel} or
 * {@link #exportPeft}.
 *
 * <pre>{@code
 * try (Trainer trainer = Trainer.create(model, Trainer.Options.builder().mode(TrainMode.LORA).loraRank(8).build())) {
 *     for (int step = 0; step < 100; ++step) {
 *         TrainResult r = trainer.step(tokens, labels);
 *     }
 *     trainer.exportPeft(Path.of("run/adapter"));
 * }
 * }</pre>
 *
 * One thread at a time; the model may serve contexts on other threads meanwhile. Calls on one
 * trainer from several threads are serialised.
 */
public final class Trainer extends NativeObject {
    /** Label value that is not trained on. */
    public static final int IGNORE_LABEL = -100;
    /** LoRA target projections, OR-ed together for {@link Options.Builder#loraTargets(int)}. */
    public static final int LORA_Q = (int) EurollmNative.LORA_Q;
    public static final int LORA_K = (int) EurollmNative.LORA_K;
    public static final int LORA_V = (int) EurollmNative.LORA_V;
    public static final int LORA_O = (int) EurollmNative.LORA_O;
    public static final int LORA_GATE = (int) EurollmNative.LORA_GATE;
    public static final int LORA_UP = (int) EurollmNative.LORA_UP;
    public static final int LORA_DOWN = (int) EurollmNative.LORA_DOWN;
    public static final int LORA_ALL = (int) EurollmNative.LORA_ALL;

    private final Model model;

    private Trainer(Model model, long handle) {
        super("Trainer", handle, EurollmNative::trainerFree);
        this.model = model;
    }

    /** A trainer on {@code model} (which it keeps alive until the trainer is closed). */
    public static Trainer create(Model model, Options options) throws EurollmException {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(options, "options");
        long[] out = new long[1];
        long m = model.acquire();
        try (TrainerParams params = options.toNative()) {
            EurollmNative.trainerCreate(m, params, out);
        } finally {
            model.release();
        }
        return new Trainer(model, out[0]);
    }

    /** The model being trained. */
    public Model model() {
        return model;
    }

    /** One optimizer step over a batch. */
    public TrainResult step(int[][] tokens, int[][] labels) throws EurollmException {
        Batch b = Batch.of(tokens, labels);
        try (TrainResultNative r = new TrainResultNative()) {
            long h = lock();
            try {
                EurollmNative.trainerStep(h, b.tokens, b.labels, b.nSeqs, b.seqLen, r);
            } finally {
                unlock();
            }
            return new TrainResult(r.getLoss(), r.getGradNorm(), r.getLr(), r.getTokens(), r.getLossTokens(), r.getStep());
        }
    }

    /** The mean loss of a batch and the number of labelled tokens it covers. */
    public record Evaluation(float loss, long lossTokens) {}

    /** Mean loss of a batch with the current weights (no dropout, no state change). */
    public Evaluation evaluate(int[][] tokens, int[][] labels) throws EurollmException {
        Batch b = Batch.of(tokens, labels);
        float[] loss = new float[1];
        long[] lossTokens = new long[1];
        long h = lock();
        try {
            EurollmNative.trainerEval(h, b.tokens, b.labels, b.nSeqs, b.seqLen, loss, lossTokens);
        } finally {
            unlock();
        }
        return new Evaluation(loss[0], lossTokens[0]);
    }

    /** Forward and backward only: keeps the gradients for {@link #tensor}; returns the loss. */
    public float computeGradients(int[][] tokens, int[][] labels) throws EurollmException {
        Batch b = Batch.of(tokens, labels);
        float[] loss = new float[1];
        long h = lock();
        try {
            EurollmNative.trainerComputeGradients(h, b.tokens, b.labels, b.nSeqs, b.seqLen, loss);
        } finally {
            unlock();
        }
        return loss[0];
    }

    /** Logits of every position of one sequence with the trained weights: one row per token. */
    public float[][] logits(int[] tokens) throws EurollmException {
        Objects.requireNonNull(tokens, "tokens");
        int nVocab = model.vocabSize();
        float[] flat = new float[Sizes.toInt((long) tokens.length * nVocab, "logits")];
        long h = lock();
        try {
            EurollmNative.trainerLogits(h, tokens, flat);
        } finally {
            unlock();
        }
        float[][] rows = new float[tokens.length][];
        for (int i = 0; i < tokens.length; ++i) rows[i] = java.util.Arrays.copyOfRange(flat, i * nVocab, (i + 1) * nVocab);
        return rows;
    }

    /** Names of the trainable tensors (Hugging Face names; PEFT's for LoRA). */
    public List<String> tensorNames() throws EurollmException {
        long[] n = new long[1];
        long[] elements = new long[1];
        long h = lock();
        try {
            EurollmNative.trainerNTensors(h, n, elements);
            List<String> names = new ArrayList<>();
            for (long i = 0; i < n[0]; ++i) {
                String name = EurollmNative.trainerTensorName(h, i);
                if (name == null) throw new EurollmException(Status.ERR_GENERIC, EurollmNative.lastError());
                names.add(name);
            }
            return names;
        } finally {
            unlock();
        }
    }

    /** Total number of trainable parameters. */
    public long parameterCount() throws EurollmException {
        long[] n = new long[1];
        long[] elements = new long[1];
        long h = lock();
        try {
            EurollmNative.trainerNTensors(h, n, elements);
        } finally {
            unlock();
        }
        return elements[0];
    }

    /** A copy of one array (value, gradient, AdamW moments) of a trainable tensor. */
    public float[] tensor(String name, TensorPart part) throws EurollmException {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(part, "part");
        byte[] utf8 = name.getBytes(StandardCharsets.UTF_8);
        long[] n = new long[1];
        long h = lock();
        try {
            float[] out = new float[0];
            if (EurollmNative.trainerGetTensor(h, utf8, part, null, n) == Status.ERR_BUFFER_TOO_SMALL) {
                out = new float[Sizes.toInt(n[0], "tensor")];
                Sizes.check(EurollmNative.trainerGetTensor(h, utf8, part, out, n));
            }
            return out;
        } finally {
            unlock();
        }
    }

    /** Optimizer steps taken so far (after a resume: the checkpoint's). */
    public long stepCount() {
        long h = lock();
        try {
            return EurollmNative.trainerStepCount(h);
        } finally {
            unlock();
        }
    }

    /** The data loader's position, stored in checkpoints for the caller (all 64 bits of each). */
    public record DataPosition(long epoch, long offset, long seed) {}

    public DataPosition dataPosition() throws EurollmException {
        long[] epoch = new long[1];
        long[] offset = new long[1];
        long[] seed = new long[1];
        long h = lock();
        try {
            EurollmNative.trainerGetDataPosition(h, epoch, offset, seed);
        } finally {
            unlock();
        }
        return new DataPosition(epoch[0], offset[0], seed[0]);
    }

    public void setDataPosition(DataPosition position) throws EurollmException {
        Objects.requireNonNull(position, "position");
        long h = lock();
        try {
            EurollmNative.trainerSetDataPosition(h, position.epoch(), position.offset(), position.seed());
        } finally {
            unlock();
        }
    }

    /** Writes a checkpoint under dir/checkpoints/step-N, atomically (keeps the last 2). */
    public void saveCheckpoint(Path dir) throws EurollmException {
        pathCall(dir, EurollmNative::trainerSaveCheckpoint);
    }

    /** Resumes from the latest valid checkpoint under dir/checkpoints ({@link Status#ERR_IO} if none). */
    public void loadCheckpoint(Path dir) throws EurollmException {
        pathCall(dir, EurollmNative::trainerLoadCheckpoint);
    }

    /** Writes the LoRA adapters as a PEFT adapter directory. */
    public void exportPeft(Path dir) throws EurollmException {
        pathCall(dir, EurollmNative::trainerExportPeft);
    }

    /** Sets the LoRA adapters from a PEFT adapter directory (rank, alpha, targets must match). */
    public void loadPeft(Path dir) throws EurollmException {
        pathCall(dir, EurollmNative::trainerLoadPeft);
    }

    /** Writes a model directory (trained weights, or the base with the adapters merged). */
    public void saveModel(Path dir) throws EurollmException {
        pathCall(dir, EurollmNative::trainerSaveModel);
    }

    /** Merges a PEFT LoRA adapter into a base model directory at {@code scale} into a new directory. */
    public static void mergeAdapter(Path baseDir, Path adapterDir, float scale, Path outDir) throws EurollmException {
        Objects.requireNonNull(baseDir, "baseDir");
        Objects.requireNonNull(adapterDir, "adapterDir");
        Objects.requireNonNull(outDir, "outDir");
        NativeLibrary.ensureLoaded();
        EurollmNative.adapterMerge(utf8(baseDir), utf8(adapterDir), scale, utf8(outDir));
    }

    /** Loads a model with a PEFT adapter merged in memory at {@code scale} (0 gives the base). */
    public static Model loadModelWithAdapter(Path path, Path adapterDir, float scale, Model.Options options)
        throws EurollmException {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(adapterDir, "adapterDir");
        Objects.requireNonNull(options, "options");
        NativeLibrary.ensureLoaded();
        long[] out = new long[1];
        try (ModelParams params = options.toNative()) {
            EurollmNative.modelLoadWithAdapter(utf8(path), utf8(adapterDir), scale, params, out);
        }
        return Model.adopt(path, out[0]);
    }

    @Override
    public void close() {
        super.close();
    }

    private interface PathCall {
        Status call(long trainer, byte[] dir) throws EurollmException;
    }

    private void pathCall(Path dir, PathCall call) throws EurollmException {
        byte[] d = utf8(Objects.requireNonNull(dir, "dir"));
        long h = lock();
        try {
            call.call(h, d);
        } finally {
            unlock();
        }
    }

    private static byte[] utf8(Path p) throws EurollmException {
        String s = p.toString();
        if (s.indexOf('\0') >= 0) throw new EurollmException(Status.ERR_INVALID_ARGUMENT, "path contains a NUL character");
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private final java.util.concurrent.locks.ReentrantLock inUse = new java.util.concurrent.locks.ReentrantLock();

    private long lock() {
        inUse.lock();
        try {
            return acquire();
        } catch (RuntimeException e) {
            inUse.unlock();
            throw e;
        }
    }

    private void unlock() {
        release();
        inUse.unlock();
    }

    /** A rectangular batch, flattened row-major; the JNI layer relies on its exact sizes. */
    private static final class Batch {
        final int[] tokens;
        final int[] labels;
        final int nSeqs;
        final int seqLen;

        private Batch(int[] tokens, int[] labels, int nSeqs, int seqLen) {
            this.tokens = tokens;
            this.labels = labels;
            this.nSeqs = nSeqs;
            this.seqLen = seqLen;
        }

        static Batch of(int[][] tokens, int[][] labels) {
            Objects.requireNonNull(tokens, "tokens");
            Objects.requireNonNull(labels, "labels");
            if (tokens.length == 0) throw new IllegalArgumentException("the batch is empty");
            if (labels.length != tokens.length)
                throw new IllegalArgumentException(tokens.length + " token rows but " + labels.length + " label rows");
            int seqLen = Objects.requireNonNull(tokens[0], "tokens[0]").length;
            long total = (long) tokens.length * seqLen;
            if (total > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("the batch is too large");
            int[] t = new int[(int) total];
            int[] l = new int[(int) total];
            for (int i = 0; i < tokens.length; ++i) {
                int[] tr = Objects.requireNonNull(tokens[i], "tokens[" + i + "]");
                int[] lr = Objects.requireNonNull(labels[i], "labels[" + i + "]");
                if (tr.length != seqLen || lr.length != seqLen)
                    throw new IllegalArgumentException("row " + i + " has " + tr.length + " tokens and " + lr.length
                                                       + " labels; every row needs " + seqLen);
                System.arraycopy(tr, 0, t, i * seqLen, seqLen);
                System.arraycopy(lr, 0, l, i * seqLen, seqLen);
            }
            return new Batch(t, l, tokens.length, seqLen);
        }
    }

    /** Trainer options ({@code eurollm_trainer_params}); unset fields keep the library's defaults. */
    public static final class Options {
        private final Builder b;

        private Options(Builder b) {
            this.b = b.copy();
        }

        /** The library's defaults: LoRA rank 8 alpha 16 on q/v, lr 1e-4, cosine schedule, AdamW. */
        public static Options defaults() {
            return builder().build();
        }

        public static Builder builder() {
            return new Builder();
        }

        TrainerParams toNative() throws EurollmException {
            TrainerParams p = new TrainerParams();
            try {
                EurollmNative.trainerParamsInit(p, EurollmNative.TRAINER_PARAMS_VERSION);
                if (b.mode != null) p.setMode(b.mode);
                if (b.loraRank != null) p.setLoraRank(b.loraRank);
                if (b.loraAlpha != null) p.setLoraAlpha(b.loraAlpha);
                if (b.loraDropout != null) p.setLoraDropout(b.loraDropout);
                if (b.loraTargets != null) p.setLoraTargets(b.loraTargets & 0xffffffffL);
                if (b.lr != null) p.setLr(b.lr);
                if (b.beta1 != null) p.setBeta1(b.beta1);
                if (b.beta2 != null) p.setBeta2(b.beta2);
                if (b.eps != null) p.setEps(b.eps);
                if (b.weightDecay != null) p.setWeightDecay(b.weightDecay);
                if (b.schedule != null) p.setSchedule(b.schedule);
                if (b.warmupSteps != null) p.setWarmupSteps(b.warmupSteps);
                if (b.totalSteps != null) p.setTotalSteps(b.totalSteps);
                if (b.minLrRatio != null) p.setMinLrRatio(b.minLrRatio);
                if (b.microBatch != null) p.setMicroBatch(b.microBatch);
                if (b.maxGradNorm != null) p.setMaxGradNorm(b.maxGradNorm);
                if (b.seed != null) p.setSeed(b.seed);
                if (b.threads != null) p.setNThreads(b.threads);
                if (b.precision != null) p.setPrecision(b.precision);
                return p;
            } catch (EurollmException | RuntimeException e) {
                p.close();
                throw e;
            }
        }

        public static final class Builder {
            private TrainMode mode;
            private Integer loraRank;
            private Float loraAlpha;
            private Float loraDropout;
            private Integer loraTargets;
            private Float lr;
            private Float beta1;
            private Float beta2;
            private Float eps;
            private Float weightDecay;
            private LrSchedule schedule;
            private Integer warmupSteps;
            private Integer totalSteps;
            private Float minLrRatio;
            private Integer microBatch;
            private Float maxGradNorm;
            private Long seed;
            private Integer threads;
            private Precision precision;

            private Builder() {}

            private Builder copy() {
                Builder c = new Builder();
                c.mode = mode; c.loraRank = loraRank; c.loraAlpha = loraAlpha; c.loraDropout = loraDropout;
                c.loraTargets = loraTargets; c.lr = lr; c.beta1 = beta1; c.beta2 = beta2; c.eps = eps;
                c.weightDecay = weightDecay; c.schedule = schedule; c.warmupSteps = warmupSteps;
                c.totalSteps = totalSteps; c.minLrRatio = minLrRatio; c.microBatch = microBatch;
                c.maxGradNorm = maxGradNorm; c.seed = seed; c.threads = threads; c.precision = precision;
                return c;
            }

            /** FULL (every weight) or LORA (adapters over the frozen base; default). */
            public Builder mode(TrainMode m) { mode = Objects.requireNonNull(m, "mode"); return this; }
            /** LoRA rank (default 8). */
            public Builder loraRank(int r) { loraRank = r; return this; }
            /** LoRA alpha (default 16); the update is scaled by alpha / rank. */
            public Builder loraAlpha(float a) { loraAlpha = a; return this; }
            /** Dropout on the adapters' input (default 0). */
            public Builder loraDropout(float d) { loraDropout = d; return this; }
            /** Target projections, {@link Trainer#LORA_Q} | ... (default Q | V). */
            public Builder loraTargets(int targets) { loraTargets = targets; return this; }
            /** Peak learning rate (default 1e-4). */
            public Builder learningRate(float v) { lr = v; return this; }
            /** AdamW beta1 (default 0.9). */
            public Builder beta1(float v) { beta1 = v; return this; }
            /** AdamW beta2 (default 0.999). */
            public Builder beta2(float v) { beta2 = v; return this; }
            /** AdamW epsilon (default 1e-8). */
            public Builder eps(float v) { eps = v; return this; }
            /** Decoupled weight decay (default 0). */
            public Builder weightDecay(float v) { weightDecay = v; return this; }
            /** COSINE (default), LINEAR or CONSTANT after the warmup. */
            public Builder schedule(LrSchedule s) { schedule = Objects.requireNonNull(s, "schedule"); return this; }
            /** Linear warmup steps (default 0). */
            public Builder warmupSteps(int n) { warmupSteps = n; return this; }
            /** Schedule length; 0 = constant after warmup (default). */
            public Builder totalSteps(int n) { totalSteps = n; return this; }
            /** Floor of the decay as a fraction of the learning rate (default 0). */
            public Builder minLrRatio(float v) { minLrRatio = v; return this; }
            /** Sequences per forward/backward (gradient accumulation); 0 = all (default). */
            public Builder microBatch(int n) { microBatch = n; return this; }
            /** Global-norm clipping (default 1.0); 0 = off. */
            public Builder maxGradNorm(float v) { maxGradNorm = v; return this; }
            /** LoRA initialisation and dropout seed (default 0). */
            public Builder seed(long s) { seed = s; return this; }
            /** CPU threads; 0 = one per core (default). */
            public Builder threads(int n) { threads = n; return this; }
            /**
             * EXACT (float32 gradients, default) or BF16 (bf16 products, float32 master weights and
             * moments; several times faster with AMX). Not recorded in checkpoints: pass it again on resume.
             */
            public Builder precision(Precision p) { precision = Objects.requireNonNull(p, "precision"); return this; }

            public Options build() {
                return new Options(this);
            }
        }
    }
}
