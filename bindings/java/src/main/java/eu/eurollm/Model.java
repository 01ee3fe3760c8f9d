package eu.eurollm;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * A loaded model: weights, hyper-parameters and tokenizer ({@code eurollm_model}).
 *
 * <p>Immutable after loading and <b>thread-safe</b>: any number of threads may tokenize and
 * generate on one Model at the same time; each generation runs on its own {@link Context}.
 *
 * <pre>{@code
 * try (Model model = Model.load(Path.of("models/EuroLLM-1.7B-Instruct"))) {
 *     String text = model.generate("Once upon a time", GenerationOptions.builder().maxTokens(64).build());
 * }
 * }</pre>
 *
 * TODO(chat): chat messages ({@code generate(List<ChatMessage>, ...)}) once the chat-template API
 * lands; {@link #chatTemplate()} already exposes the template string.
 */
public final class Model extends NativeObject implements Tokenizer {
    private final Path path;
    private final int vocabSize;

    private Model(Path path, long handle, int vocabSize) {
        super("Model", handle, EurollmNative::modelFree);
        this.path = path;
        this.vocabSize = vocabSize;
    }

    /** Loads a model with default options (see {@link #load(Path, Options)}). */
    public static Model load(Path path) throws EurollmException {
        return load(path, Options.defaults());
    }

    /**
     * Loads a model: a Hugging Face directory (config.json, *.safetensors, tokenizer.model, ...).
     * @throws EurollmException {@link Status#ERR_IO} for a missing or unreadable file,
     *         {@link Status#ERR_BAD_MODEL} for malformed files, {@link Status#ERR_UNSUPPORTED}
     *         for an architecture or device this build lacks
     * @throws UnsatisfiedLinkError if the native library cannot be found or loaded
     */
    public static Model load(Path path, Options options) throws EurollmException {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(options, "options");
        NativeLibrary.ensureLoaded();
        String p = path.toString();
        if (p.indexOf('\0') >= 0) throw new EurollmException(Status.ERR_INVALID_ARGUMENT, "path contains a NUL character");
        long[] out = new long[1];
        try (ModelParams params = options.toNative()) {
            EurollmNative.modelLoad(p.getBytes(StandardCharsets.UTF_8), params, out);
        }
        return adopt(path, out[0]);
    }

    /** Wraps a handle fresh from the C API (freed here if this fails). */
    static Model adopt(Path path, long handle) throws EurollmException {
        long[] vocab = new long[1];
        try {
            EurollmNative.modelGetInfo(handle, ModelInfo.N_VOCAB, vocab);
        } catch (EurollmException | RuntimeException e) {
            EurollmNative.modelFree(handle);
            throw e;
        }
        return new Model(path, handle, (int) vocab[0]);
    }

    /** The path this model was loaded from. */
    public Path path() {
        return path;
    }

    // ---- properties ----

    /** An integer property of the model ({@code eurollm_model_get_info}). */
    public long info(ModelInfo key) throws EurollmException {
        Objects.requireNonNull(key, "key");
        long[] value = new long[1];
        long h = acquire();
        try {
            EurollmNative.modelGetInfo(h, key, value);
        } finally {
            release();
        }
        return value[0];
    }

    /** Number of tokens in the vocabulary. */
    public int vocabSize() {
        return vocabSize;
    }

    /** The architecture named in config.json ("llama", "mistral"). */
    public String architecture() {
        long h = acquire();
        try {
            return EurollmNative.modelArchitecture(h);
        } finally {
            release();
        }
    }

    /** The chat template from tokenizer_config.json, if the model has one. */
    public Optional<String> chatTemplate() {
        long h = acquire();
        try {
            return Optional.ofNullable(EurollmNative.modelChatTemplate(h));
        } finally {
            release();
        }
    }

    /** All end-of-generation token ids (config, generation_config, tokenizer). */
    public int[] eosIds() throws EurollmException {
        long h = acquire();
        try {
            int[] ids = new int[8];
            long[] n = new long[1];
            if (EurollmNative.modelEosIds(h, ids, n) == Status.ERR_BUFFER_TOO_SMALL) {
                ids = new int[Sizes.toInt(n[0], "eos ids")];
                Sizes.check(EurollmNative.modelEosIds(h, ids, n));
            }
            return Arrays.copyOf(ids, (int) n[0]);
        } finally {
            release();
        }
    }

    // ---- tokenizer ----

    @Override
    public int[] tokenize(String text, int flags) throws EurollmException {
        Objects.requireNonNull(text, "text");
        if ((flags & ~(ADD_BOS | PARSE_SPECIAL | MODEL_DEFAULT)) != 0)
            throw new EurollmException(Status.ERR_INVALID_ARGUMENT, "unknown tokenize flags 0x" + Integer.toHexString(flags));
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        long h = acquire();
        try {
            // Each token covers at least one byte, so bytes + BOS is enough unless special tokens
            // are parsed (they only make the count smaller) -- the retry covers any surprise.
            int[] ids = new int[utf8.length + 2];
            long[] n = new long[1];
            if (EurollmNative.tokenize(h, utf8, flags, ids, n) == Status.ERR_BUFFER_TOO_SMALL) {
                ids = new int[Sizes.toInt(n[0], "tokens")];
                Sizes.check(EurollmNative.tokenize(h, utf8, flags, ids, n));
            }
            return Arrays.copyOf(ids, (int) n[0]);
        } finally {
            release();
        }
    }

    @Override
    public String detokenize(int[] tokens) throws EurollmException {
        Objects.requireNonNull(tokens, "tokens");
        long h = acquire();
        try {
            byte[] buf = new byte[tokens.length * 8 + 16];
            long[] len = new long[1];
            if (EurollmNative.detokenize(h, tokens, buf, len) == Status.ERR_BUFFER_TOO_SMALL) {
                buf = new byte[Sizes.toInt(len[0] + 1, "text")];
                Sizes.check(EurollmNative.detokenize(h, tokens, buf, len));
            }
            return new String(buf, 0, (int) len[0], StandardCharsets.UTF_8);
        } finally {
            release();
        }
    }

    @Override
    public String tokenToPiece(int token) throws EurollmException {
        long h = acquire();
        try {
            byte[] buf = new byte[64];
            long[] len = new long[1];
            if (EurollmNative.tokenToPiece(h, token, buf, len) == Status.ERR_BUFFER_TOO_SMALL) {
                buf = new byte[Sizes.toInt(len[0] + 1, "piece")];
                Sizes.check(EurollmNative.tokenToPiece(h, token, buf, len));
            }
            return new String(buf, 0, (int) len[0], StandardCharsets.UTF_8);
        } finally {
            release();
        }
    }

    /**
     * Writes the model as a GGUF v3 file that llama.cpp loads ({@code eurollm_model_save_gguf}),
     * atomically. {@link WeightType#AS_STORED} keeps each tensor's stored type; Q8_0, Q4_0, Q4_K and Q6_K quantize.
     */
    public void saveGguf(Path file, WeightType type) throws EurollmException {
        byte[] p = Objects.requireNonNull(file, "file").toString().getBytes(StandardCharsets.UTF_8);
        Objects.requireNonNull(type, "type");
        long h = acquire();
        try {
            EurollmNative.modelSaveGguf(h, p, type);
        } finally {
            release();
        }
    }

    // ---- contexts and generation ----

    /** A new context (KV cache) with default options. Close it when done. */
    public Context newContext() throws EurollmException {
        return newContext(Context.Options.defaults());
    }

    /** A new context (KV cache, scratch, threads) on this model. Close it when done. */
    public Context newContext(Context.Options options) throws EurollmException {
        Objects.requireNonNull(options, "options");
        long[] out = new long[1];
        long h = acquire();
        try (ContextParams params = options.toNative()) {
            EurollmNative.contextInit(h, params, out);
        } finally {
            release();
        }
        return new Context(this, out[0]);
    }

    /**
     * Generates a completion of {@code prompt} on a fresh context with default context options.
     * The prompt is tokenized with the model's default flags (BOS when the model adds one,
     * special tokens parsed), as {@code eurollm_generate_text} does.
     */
    public String generate(String prompt, GenerationOptions options) throws EurollmException {
        return generate(prompt, options, Context.Options.defaults(), null);
    }

    /**
     * Generates and streams: {@code callback} receives every token with the text it completes
     * (see {@link TokenCallback}); returning false stops. Returns the whole text.
     */
    public String generate(String prompt, GenerationOptions options, TokenCallback callback) throws EurollmException {
        Objects.requireNonNull(callback, "callback");
        return generate(prompt, options, Context.Options.defaults(), callback);
    }

    /** Like {@link #generate(String, GenerationOptions, TokenCallback)} with context options; callback may be null. */
    public String generate(String prompt, GenerationOptions options, Context.Options contextOptions,
                           TokenCallback callback) throws EurollmException {
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(options, "options");
        try (Context ctx = newContext(contextOptions)) {
            return ctx.generate(prompt, options, callback);
        }
    }

    /**
     * Streams the completion as pieces of text: an {@link java.util.Iterator Iterator&lt;String&gt;}
     * that also gives a {@link java.util.stream.Stream Stream&lt;String&gt;} ({@link TextStream#stream()}).
     * It owns a fresh context; close it (try-with-resources) unless it is read to the end.
     */
    public TextStream generateStream(String prompt, GenerationOptions options) throws EurollmException {
        return generateStream(prompt, options, Context.Options.defaults());
    }

    /** Like {@link #generateStream(String, GenerationOptions)} with context options. */
    public TextStream generateStream(String prompt, GenerationOptions options, Context.Options contextOptions)
        throws EurollmException {
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(options, "options");
        Context ctx = newContext(contextOptions);
        try {
            Generator gen = ctx.startGeneration(prompt, options);
            return new TextStream(gen, ctx);
        } catch (EurollmException | RuntimeException | Error e) {
            ctx.closeQuietly();
            throw e;
        }
    }

    /**
     * Generates a completion for each prompt in one context, stepping them together in batches
     * (see {@link Context#generateBatch}); the context is sized for the prompts plus
     * {@code maxTokens} each (the library default when maxTokens is not positive).
     */
    public List<String> generateBatch(List<String> prompts, GenerationOptions options) throws EurollmException {
        Objects.requireNonNull(prompts, "prompts");
        Objects.requireNonNull(options, "options");
        long cells = 0;
        int max = options.effectiveMaxTokens();
        for (String p : prompts) cells += tokenize(Objects.requireNonNull(p, "prompt")).length + (long) Math.max(max, 0);
        Context.Options ctx = max > 0 && cells > 0 ? Context.Options.builder().size((int) Math.min(cells, 1 << 22)).build()
                                                     : Context.Options.defaults();
        return generateBatch(prompts, options, ctx);
    }

    /** Like {@link #generateBatch(List, GenerationOptions)} with context options. */
    public List<String> generateBatch(List<String> prompts, GenerationOptions options, Context.Options contextOptions)
        throws EurollmException {
        try (Context ctx = newContext(contextOptions)) {
            return ctx.generateBatch(prompts, options);
        }
    }

    /**
     * Embeddings of texts (one row per text; one per token with {@link Pooling#PER_TOKEN}), on a
     * fresh context. Thread-safe like {@link #generate}.
     */
    public float[][] embed(List<String> texts, EmbedOptions options) throws EurollmException {
        return embed(texts, options, Context.Options.defaults());
    }

    /** Like {@link #embed(List, EmbedOptions)} with context options (size it for the longest text). */
    public float[][] embed(List<String> texts, EmbedOptions options, Context.Options contextOptions)
        throws EurollmException {
        Objects.requireNonNull(texts, "texts");
        Objects.requireNonNull(options, "options");
        try (Context ctx = newContext(contextOptions)) {
            return ctx.embed(texts, options);
        }
    }

    /** The embedding of one text with default options (mean pooling). */
    public float[] embed(String text) throws EurollmException {
        Objects.requireNonNull(text, "text");
        return embed(List.of(text), EmbedOptions.defaults())[0];
    }

    /** Frees the model. Contexts still open on it keep it alive until they are closed. */
    @Override
    public void close() {
        super.close();
    }

    @Override
    public String toString() {
        return "Model[" + path + (isClosed() ? ", closed]" : "]");
    }

    // ---- options ----

    /** Options of {@link Model#load(Path, Options)}; unset fields keep the library's defaults. */
    public static final class Options {
        private final DeviceKind device;
        private final Integer deviceIndex;
        private final Integer gpuLayers;
        private final Boolean useMmap;
        private final WeightType weightType;

        private Options(Builder b) {
            this.device = b.device;
            this.deviceIndex = b.deviceIndex;
            this.gpuLayers = b.gpuLayers;
            this.useMmap = b.useMmap;
            this.weightType = b.weightType;
        }

        /** The library's defaults: the automatic device (the CPU for now), mmap on. */
        public static Options defaults() {
            return builder().build();
        }

        public static Builder builder() {
            return new Builder();
        }

        ModelParams toNative() throws EurollmException {
            ModelParams p = new ModelParams();
            try {
                EurollmNative.modelParamsInit(p, EurollmNative.MODEL_PARAMS_VERSION);
                if (device != null) p.setDevice(device);
                if (deviceIndex != null) p.setDeviceIndex(deviceIndex);
                if (gpuLayers != null) p.setNGpuLayers(gpuLayers);
                if (useMmap != null) p.setUseMmap(useMmap);
                if (weightType != null) p.setWeightType(weightType);
                return p;
            } catch (EurollmException | RuntimeException e) {
                p.close();
                throw e;
            }
        }

        public static final class Builder {
            private DeviceKind device;
            private Integer deviceIndex;
            private Integer gpuLayers;
            private Boolean useMmap;
            private WeightType weightType;

            private Builder() {}

            /** Where to run (default {@link DeviceKind#AUTO}: the CPU for now; a GPU only when asked for). */
            public Builder device(DeviceKind device) {
                this.device = Objects.requireNonNull(device, "device");
                return this;
            }

            /** Which device of that kind (default 0). */
            public Builder deviceIndex(int index) {
                this.deviceIndex = index;
                return this;
            }

            /** Layers placed on the GPU; -1 = all (default). */
            public Builder gpuLayers(int layers) {
                this.gpuLayers = layers;
                return this;
            }

            /** Map the weight files instead of reading them (default true). */
            public Builder useMmap(boolean useMmap) {
                this.useMmap = useMmap;
                return this;
            }

            /** Convert the 2-D weights at load (default {@link WeightType#AS_STORED}). */
            public Builder weightType(WeightType type) {
                this.weightType = Objects.requireNonNull(type, "type");
                return this;
            }

            public Options build() {
                return new Options(this);
            }
        }
    }
}
