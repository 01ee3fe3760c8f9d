package eu.eurollm;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A context on a {@link Model}: the KV cache, scratch memory and CPU threads of one sequence
 * ({@code eurollm_context}).
 *
 * <p>A context is used by one thread at a time (the C API's rule). This class enforces it: calls
 * on a context, and on the generator running on it, from several threads are serialised rather
 * than racing. For parallel generation give each thread its own context (or use
 * {@link Model#generate}, which makes one per call).
 *
 * <p>A context holds up to {@link #MAX_SEQUENCES} sequences that share its cache cells (a copied
 * prefix is shared, not duplicated): {@link #decodeSequences}, {@link #copySequence},
 * {@link #generateBatch} (several prompts stepped together). The single-sequence calls act on
 * sequence 0; {@link #reset()} clears all.
 */
public final class Context extends NativeObject {
    /** Sequence ids run from 0 to MAX_SEQUENCES - 1 and share the context's cache cells. */
    public static final int MAX_SEQUENCES = EurollmNative.MAX_SEQUENCES;

    private final Model model;
    /** Held for every native call on this context or its generator: one thread at a time. */
    final ReentrantLock inUse = new ReentrantLock();

    Context(Model model, long handle) {
        super("Context", handle, EurollmNative::contextFree);
        this.model = model;
    }

    /** The model this context runs. */
    public Model model() {
        return model;
    }

    /** Capacity of the KV cache in tokens. */
    public long size() {
        long h = lock();
        try {
            return EurollmNative.contextNCtx(h);
        } finally {
            unlock();
        }
    }

    /** Tokens currently held in the KV cache. */
    public long tokenCount() {
        long h = lock();
        try {
            return EurollmNative.contextNPast(h);
        } finally {
            unlock();
        }
    }

    /** Forgets every cached token. */
    public void reset() throws EurollmException {
        long h = lock();
        try {
            EurollmNative.contextReset(h);
        } finally {
            unlock();
        }
    }

    /**
     * Evaluates {@code tokens} after those already cached; returns the logits of the last one
     * ({@link Model#vocabSize()} floats).
     * @throws EurollmException {@link Status#ERR_CONTEXT_FULL} if they do not fit,
     *         {@link Status#ERR_INVALID_ARGUMENT} for an id outside the vocabulary
     */
    public float[] decode(int... tokens) throws EurollmException {
        Objects.requireNonNull(tokens, "tokens");
        float[] logits = new float[model.vocabSize()];
        long h = lock();
        try {
            EurollmNative.contextDecode(h, tokens, logits);
        } finally {
            unlock();
        }
        return logits;
    }

    /** Like {@link #decode}, but returns the logits of every token: one row per token. */
    public float[][] decodeAll(int... tokens) throws EurollmException {
        Objects.requireNonNull(tokens, "tokens");
        int nVocab = model.vocabSize();
        float[] flat = new float[Sizes.toInt((long) tokens.length * nVocab, "logits")];
        long h = lock();
        try {
            EurollmNative.contextDecodeAll(h, tokens, flat);
        } finally {
            unlock();
        }
        float[][] rows = new float[tokens.length][];
        for (int i = 0; i < tokens.length; ++i) rows[i] = Arrays.copyOfRange(flat, i * nVocab, (i + 1) * nVocab);
        return rows;
    }

    /** Tokens held for sequence {@code seq}. */
    public long sequenceLength(int seq) throws EurollmException {
        long[] n = new long[1];
        long h = lock();
        try {
            EurollmNative.contextSeqNPast(h, seq, n);
        } finally {
            unlock();
        }
        return n[0];
    }

    /** Forgets sequence {@code seq}. */
    public void removeSequence(int seq) throws EurollmException {
        truncateSequence(seq, 0);
    }

    /** Forgets positions {@code [position, end)} of sequence {@code seq}. */
    public void truncateSequence(int seq, int position) throws EurollmException {
        if (position < 0) throw new IllegalArgumentException("position must not be negative: " + position);
        long h = lock();
        try {
            EurollmNative.contextSeqRemove(h, seq, position);
        } finally {
            unlock();
        }
    }

    /** Makes the empty sequence {@code dst} share all of {@code src} (prefix sharing, no copy). */
    public void copySequence(int src, int dst) throws EurollmException {
        copySequence(src, dst, -1);
    }

    /** Makes the empty sequence {@code dst} share the first {@code n} positions of {@code src} (n &lt; 0: all). */
    public void copySequence(int src, int dst, int n) throws EurollmException {
        long h = lock();
        try {
            EurollmNative.contextSeqCopy(h, src, dst, n);
        } finally {
            unlock();
        }
    }

    /** Forgets every sequence except {@code seq}. */
    public void keepSequence(int seq) throws EurollmException {
        long h = lock();
        try {
            EurollmNative.contextSeqKeep(h, seq);
        } finally {
            unlock();
        }
    }

    /**
     * Evaluates runs of tokens for several sequences in one batch: {@code tokens[i]} continues
     * sequence {@code seqIds[i]}. Read the results with {@link #sequenceLogits(int)}.
     * @throws EurollmException {@link Status#ERR_CONTEXT_FULL} (nothing evaluated) if they do not
     *         fit; {@link Status#ERR_INVALID_ARGUMENT} for a repeated or out-of-range id
     */
    public void decodeSequences(int[] seqIds, int[][] tokens) throws EurollmException {
        Objects.requireNonNull(seqIds, "seqIds");
        Objects.requireNonNull(tokens, "tokens");
        if (seqIds.length != tokens.length)
            throw new IllegalArgumentException(seqIds.length + " sequence ids but " + tokens.length + " token lists");
        int[] ids = seqIds.clone();
        int[][] lists = tokens.clone();
        for (int i = 0; i < lists.length; ++i) Objects.requireNonNull(lists[i], "tokens[" + i + "]");
        long h = lock();
        try {
            EurollmNative.contextDecodeSeqs(h, ids, lists);
        } finally {
            unlock();
        }
    }

    /** Logits of the last evaluated token of a sequence ({@link Model#vocabSize()} floats). */
    public float[] sequenceLogits(int seq) throws EurollmException {
        float[] logits = new float[model.vocabSize()];
        long h = lock();
        try {
            EurollmNative.contextSeqLogits(h, seq, logits);
        } finally {
            unlock();
        }
        return logits;
    }

    /** The state of every sequence (tokens, last logits, KV cache) as bytes. Generators are not part of it. */
    public byte[] saveState() throws EurollmException {
        long[] size = new long[1];
        long h = lock();
        try {
            byte[] buf = new byte[0];
            if (EurollmNative.contextStateSave(h, null, size) == Status.ERR_BUFFER_TOO_SMALL) {
                buf = new byte[Sizes.toInt(size[0], "state")];
                Sizes.check(EurollmNative.contextStateSave(h, buf, size));
            }
            return buf;
        } finally {
            unlock();
        }
    }

    /**
     * Replaces the context's state with one from {@link #saveState()}; on error it is unchanged.
     * @throws EurollmException {@link Status#ERR_INVALID_ARGUMENT} for a state of another model or a corrupt one
     */
    public void loadState(byte[] state) throws EurollmException {
        Objects.requireNonNull(state, "state");
        long h = lock();
        try {
            EurollmNative.contextStateLoad(h, state);
        } finally {
            unlock();
        }
    }

    /** Saves the state to a file, atomically (temporary file, then rename). */
    public void saveState(Path file) throws EurollmException {
        byte[] p = Objects.requireNonNull(file, "file").toString().getBytes(StandardCharsets.UTF_8);
        long h = lock();
        try {
            EurollmNative.contextStateSaveFile(h, p);
        } finally {
            unlock();
        }
    }

    /** Loads a state saved by {@link #saveState(Path)}. */
    public void loadState(Path file) throws EurollmException {
        byte[] p = Objects.requireNonNull(file, "file").toString().getBytes(StandardCharsets.UTF_8);
        long h = lock();
        try {
            EurollmNative.contextStateLoadFile(h, p);
        } finally {
            unlock();
        }
    }

    /**
     * Generates a completion for each prompt, all in this context (reset first): prompt i on
     * sequence i, the generators stepped together in one batch per token (continuous batching).
     * Each result equals what {@link #generate(String, GenerationOptions)} gives alone. The
     * context must hold every prompt plus its completion.
     */
    public List<String> generateBatch(List<String> prompts, GenerationOptions options) throws EurollmException {
        Objects.requireNonNull(prompts, "prompts");
        Objects.requireNonNull(options, "options");
        int n = prompts.size();
        if (n > MAX_SEQUENCES)
            throw new EurollmException(Status.ERR_INVALID_ARGUMENT, n + " prompts but a context holds " + MAX_SEQUENCES + " sequences");
        int[][] ids = new int[n][];
        for (int i = 0; i < n; ++i) {
            ids[i] = model.tokenize(Objects.requireNonNull(prompts.get(i), "prompts[" + i + "]"));
            if (ids[i].length == 0)
                throw new EurollmException(Status.ERR_INVALID_ARGUMENT, "the prompt is empty and the model has no BOS token");
        }
        reset();
        List<Generator> gens = new java.util.ArrayList<>();
        try {
            StringBuilder[] text = new StringBuilder[n];
            List<Integer> active = new java.util.ArrayList<>();
            for (int i = 0; i < n; ++i) {
                Generator g = newGenerator(options.onSequence(i));
                gens.add(g);
                g.appendTokens(ids[i]);
                text[i] = new StringBuilder();
                active.add(i);
            }
            while (!active.isEmpty()) {
                List<Generator> step = new java.util.ArrayList<>();
                for (int i : active) step.add(gens.get(i));
                int[] tokens = Generator.stepBatch(step);
                List<Integer> still = new java.util.ArrayList<>();
                for (int k = 0; k < tokens.length; ++k) {
                    int i = active.get(k);
                    text[i].append(gens.get(i).textDelta()); // after the last step: the released tail
                    if (tokens[k] >= 0) still.add(i);
                }
                active = still;
            }
            List<String> out = new java.util.ArrayList<>();
            for (StringBuilder sb : text) out.add(sb.toString());
            return out;
        } finally {
            for (Generator g : gens) g.closeQuietly();
        }
    }

    /**
     * Embeddings of texts, each embedded as if alone (one row per text, or per token with
     * {@link Pooling#PER_TOKEN}). Uses the cache as scratch: every cached token is cleared.
     * @throws EurollmException {@link Status#ERR_CONTEXT_FULL} for a text longer than the context
     */
    public float[][] embed(List<String> texts, EmbedOptions options) throws EurollmException {
        Objects.requireNonNull(texts, "texts");
        Objects.requireNonNull(options, "options");
        byte[][] utf8 = new byte[texts.size()][];
        for (int i = 0; i < utf8.length; ++i)
            utf8[i] = Objects.requireNonNull(texts.get(i), "texts[" + i + "]").getBytes(StandardCharsets.UTF_8);
        return embedRows(options, (h, p, out, rows, dim) -> EurollmNative.embedTexts(h, utf8, p, out, rows, dim));
    }

    /** Embeddings of token lists (see {@link #embed(List, EmbedOptions)}). */
    public float[][] embedTokens(int[][] tokens, EmbedOptions options) throws EurollmException {
        Objects.requireNonNull(tokens, "tokens");
        Objects.requireNonNull(options, "options");
        int[][] copy = tokens.clone();
        for (int i = 0; i < copy.length; ++i) Objects.requireNonNull(copy[i], "tokens[" + i + "]");
        return embedRows(options, (h, p, out, rows, dim) -> EurollmNative.embedTokens(h, copy, p, out, rows, dim));
    }

    private interface EmbedCall {
        Status call(long ctx, EmbedParams params, float[] out, long[] rows, long[] dim) throws EurollmException;
    }

    private float[][] embedRows(EmbedOptions options, EmbedCall call) throws EurollmException {
        long[] rows = new long[1];
        long[] dim = new long[1];
        float[] flat;
        long h = lock();
        try (EmbedParams params = options.toNative()) {
            // The first call only reports the shape (nothing is evaluated when the buffer is short).
            if (call.call(h, params, null, rows, dim) == Status.ERR_BUFFER_TOO_SMALL) {
                flat = new float[Sizes.toInt(rows[0] * dim[0], "embeddings")];
                Sizes.check(call.call(h, params, flat, rows, dim));
            } else {
                flat = new float[0];
            }
        } finally {
            unlock();
        }
        int n = (int) rows[0];
        int d = (int) dim[0];
        float[][] out = new float[n][];
        for (int i = 0; i < n; ++i) out[i] = Arrays.copyOfRange(flat, i * d, (i + 1) * d);
        return out;
    }

    /**
     * A generator on this context (one at a time). It continues the cached sequence: call
     * {@link #reset()} first for a fresh one. Stop strings and tokens of the options are installed.
     */
    public Generator newGenerator(GenerationOptions options) throws EurollmException {
        Objects.requireNonNull(options, "options");
        long[] out = new long[1];
        long h = lock();
        try (GeneratorParams params = options.toNative()) {
            EurollmNative.generatorInit(h, params, out);
            try {
                options.applyStops(out[0]);
            } catch (EurollmException | RuntimeException e) {
                EurollmNative.generatorFree(out[0]);
                throw e;
            }
        } finally {
            unlock();
        }
        return new Generator(this, out[0]);
    }

    /**
     * Generates a completion of {@code prompt} from an empty cache (the context is reset first).
     * The prompt is tokenized with the model's default flags, as {@code eurollm_generate_text} does.
     */
    public String generate(String prompt, GenerationOptions options) throws EurollmException {
        return generate(prompt, options, null);
    }

    /**
     * Generates and streams each token to {@code callback} (may be null). Returning false from
     * the callback stops at once (text still held back for a possible stop string is dropped).
     * @return the whole generated text (stop strings removed)
     */
    public String generate(String prompt, GenerationOptions options, TokenCallback callback) throws EurollmException {
        try (Generator gen = startGeneration(prompt, options)) {
            StringBuilder text = new StringBuilder();
            int token;
            while ((token = gen.step()) >= 0) {
                String delta = gen.textDelta();
                text.append(delta);
                if (callback != null && !callback.onToken(token, delta)) return text.toString();
            }
            String tail = gen.textDelta(); // text released when generation ended
            text.append(tail);
            if (callback != null && !tail.isEmpty()) callback.onToken(-1, tail);
            return text.toString();
        }
    }

    /** Streams a completion of {@code prompt} (reset first); closing the stream frees its generator. */
    public TextStream generateStream(String prompt, GenerationOptions options) throws EurollmException {
        return new TextStream(startGeneration(prompt, options), null);
    }

    /** reset + tokenize (model defaults) + a generator with the prompt appended. */
    Generator startGeneration(String prompt, GenerationOptions options) throws EurollmException {
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(options, "options");
        int[] ids = model.tokenize(prompt);
        if (ids.length == 0)
            throw new EurollmException(Status.ERR_INVALID_ARGUMENT, "the prompt is empty and the model has no BOS token");
        reset();
        Generator gen = newGenerator(options);
        try {
            gen.appendTokens(ids);
        } catch (EurollmException | RuntimeException e) {
            gen.closeQuietly();
            throw e;
        }
        return gen;
    }

    /** acquire() plus the one-thread-at-a-time lock. */
    long lock() {
        inUse.lock();
        try {
            return acquire();
        } catch (RuntimeException e) {
            inUse.unlock();
            throw e;
        }
    }

    void unlock() {
        release();
        inUse.unlock();
    }

    /** Frees the context. A generator still open on it keeps it alive until it is closed. */
    @Override
    public void close() {
        super.close();
    }

    /** Context options ({@code eurollm_context_params}); unset fields keep the library's defaults. */
    public static final class Options {
        private final Integer size;
        private final Integer batchSize;
        private final Integer threads;
        private final Long seed;
        private final Precision precision;
        private final WeightType kvType;

        private Options(Builder b) {
            size = b.size;
            batchSize = b.batchSize;
            threads = b.threads;
            seed = b.seed;
            precision = b.precision;
            kvType = b.kvType;
        }

        /** The library's defaults: min(model context, 4096) tokens, batch 512, one thread per core, seed 0. */
        public static Options defaults() {
            return builder().build();
        }

        public static Builder builder() {
            return new Builder();
        }

        ContextParams toNative() throws EurollmException {
            ContextParams p = new ContextParams();
            try {
                EurollmNative.contextParamsInit(p, EurollmNative.CONTEXT_PARAMS_VERSION);
                if (size != null) p.setNCtx(size);
                if (batchSize != null) p.setNBatch(batchSize);
                if (threads != null) p.setNThreads(threads);
                if (seed != null) p.setSeed(seed);
                if (precision != null) p.setPrecision(precision);
                if (kvType != null) p.setKvType(kvType);
                return p;
            } catch (EurollmException | RuntimeException e) {
                p.close();
                throw e;
            }
        }

        public static final class Builder {
            private Integer size;
            private Integer batchSize;
            private Integer threads;
            private Long seed;
            private Precision precision;
            private WeightType kvType;

            private Builder() {}

            /** Tokens the KV cache holds; 0 = min(model n_ctx_train, 4096) (default). */
            public Builder size(int tokens) {
                if (tokens < 0) throw new IllegalArgumentException("size must not be negative: " + tokens);
                size = tokens;
                return this;
            }

            /** Most tokens evaluated in one pass (default 512). */
            public Builder batchSize(int tokens) {
                if (tokens < 0) throw new IllegalArgumentException("batchSize must not be negative: " + tokens);
                batchSize = tokens;
                return this;
            }

            /** CPU threads; 0 = one per core (default). */
            public Builder threads(int n) {
                threads = n;
                return this;
            }

            /** Default seed of the generators on this context (default 0). */
            public Builder seed(long s) {
                seed = s;
                return this;
            }

            /** How activations meet bf16 (and, in prompts, q8_0/q4_0) weights (default {@link Precision#EXACT}; BF16 is faster). */
            public Builder precision(Precision p) {
                precision = Objects.requireNonNull(p, "precision");
                return this;
            }

            /**
             * KV cache elements: {@link WeightType#F32} (default, exact) or {@link WeightType#F16} (half
             * the memory; keys and values rounded to f16). Other types fail when the context is created.
             */
            public Builder kvType(WeightType t) {
                kvType = Objects.requireNonNull(t, "kvType");
                return this;
            }

            public Options build() {
                return new Options(this);
            }
        }
    }
}
