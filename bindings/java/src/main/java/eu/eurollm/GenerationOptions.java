package eu.eurollm;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Sampling and stopping settings of a generation ({@code eurollm_generator_params} plus stop
 * strings and stop tokens). Immutable; build with {@link #builder()}. Fields left unset keep the
 * library's defaults (filled by {@code eurollm_generator_params_init}, so they never drift from C).
 *
 * <pre>{@code
 * GenerationOptions greedy = GenerationOptions.builder().temperature(0).maxTokens(60).build();
 * GenerationOptions sampled = GenerationOptions.builder().temperature(0.8f).topK(40).seed(42).build();
 * }</pre>
 */
public final class GenerationOptions {
    private final Integer maxTokens;
    private final Float temperature;
    private final Integer topK;
    private final Float topP;
    private final Float minP;
    private final Float repetitionPenalty;
    private final Float frequencyPenalty;
    private final Float presencePenalty;
    private final Integer penaltyLastN;
    private final Long seed;
    private final Boolean ignoreEos;
    private final Integer sequence;
    private final List<String> stopStrings;
    private final int[] stopTokens;

    private GenerationOptions(Builder b) {
        maxTokens = b.maxTokens;
        temperature = b.temperature;
        topK = b.topK;
        topP = b.topP;
        minP = b.minP;
        repetitionPenalty = b.repetitionPenalty;
        frequencyPenalty = b.frequencyPenalty;
        presencePenalty = b.presencePenalty;
        penaltyLastN = b.penaltyLastN;
        seed = b.seed;
        ignoreEos = b.ignoreEos;
        sequence = b.sequence;
        stopStrings = List.copyOf(b.stopStrings);
        stopTokens = b.stopTokens.stream().mapToInt(Integer::intValue).toArray();
    }

    /** All library defaults (256 tokens, temperature 0.8, top-k 40, top-p 0.95, min-p 0.05). */
    public static GenerationOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The stop strings, in the order given. */
    public List<String> stopStrings() {
        return stopStrings;
    }

    /** The extra stop tokens, in the order given. */
    public int[] stopTokens() {
        return stopTokens.clone();
    }

    GeneratorParams toNative() throws EurollmException {
        GeneratorParams p = new GeneratorParams();
        try {
            EurollmNative.generatorParamsInit(p, EurollmNative.GENERATOR_PARAMS_VERSION);
            if (maxTokens != null) p.setMaxTokens(maxTokens);
            if (temperature != null) p.setTemperature(temperature);
            if (topK != null) p.setTopK(topK);
            if (topP != null) p.setTopP(topP);
            if (minP != null) p.setMinP(minP);
            if (repetitionPenalty != null) p.setRepetitionPenalty(repetitionPenalty);
            if (frequencyPenalty != null) p.setFrequencyPenalty(frequencyPenalty);
            if (presencePenalty != null) p.setPresencePenalty(presencePenalty);
            if (penaltyLastN != null) p.setPenaltyLastN(penaltyLastN);
            if (seed != null) p.setSeed(seed);
            if (ignoreEos != null) p.setIgnoreEos(ignoreEos);
            if (sequence != null) p.setSeqId(sequence);
            return p;
        } catch (EurollmException | RuntimeException e) {
            p.close();
            throw e;
        }
    }

    /** The max_tokens a generator gets from these options (the library's default when unset). */
    int effectiveMaxTokens() throws EurollmException {
        try (GeneratorParams p = toNative()) {
            return p.getMaxTokens();
        }
    }

    /** These options on another context sequence. */
    GenerationOptions onSequence(int seq) {
        Builder b = new Builder();
        b.maxTokens = maxTokens; b.temperature = temperature; b.topK = topK; b.topP = topP; b.minP = minP;
        b.repetitionPenalty = repetitionPenalty; b.frequencyPenalty = frequencyPenalty;
        b.presencePenalty = presencePenalty; b.penaltyLastN = penaltyLastN; b.seed = seed; b.ignoreEos = ignoreEos;
        b.sequence = seq;
        b.stopStrings.addAll(stopStrings);
        for (int t : stopTokens) b.stopTokens.add(t);
        return b.build();
    }

    /** Installs the stop strings and tokens on a native generator. */
    void applyStops(long gen) throws EurollmException {
        for (String s : stopStrings) EurollmNative.generatorAddStopString(gen, s.getBytes(StandardCharsets.UTF_8));
        for (int t : stopTokens) EurollmNative.generatorAddStopToken(gen, t);
    }

    @Override
    public String toString() {
        return "GenerationOptions[maxTokens=" + maxTokens + ", temperature=" + temperature + ", topK=" + topK
               + ", topP=" + topP + ", minP=" + minP + ", repetitionPenalty=" + repetitionPenalty + ", seed=" + seed
               + ", ignoreEos=" + ignoreEos + ", stopStrings=" + stopStrings + "]";
    }

    public static final class Builder {
        private Integer maxTokens;
        private Float temperature;
        private Integer topK;
        private Float topP;
        private Float minP;
        private Float repetitionPenalty;
        private Float frequencyPenalty;
        private Float presencePenalty;
        private Integer penaltyLastN;
        private Long seed;
        private Boolean ignoreEos;
        private Integer sequence;
        private final List<String> stopStrings = new ArrayList<>();
        private final List<Integer> stopTokens = new ArrayList<>();

        private Builder() {}

        /** New tokens at most (default 256); &lt;= 0 means until the context is full. */
        public Builder maxTokens(int n) {
            maxTokens = n;
            return this;
        }

        /** Sampling temperature (default 0.8); 0 = greedy (argmax). */
        public Builder temperature(float t) {
            temperature = t;
            return this;
        }

        /** Keep the k most likely tokens (default 40); 0 = off. */
        public Builder topK(int k) {
            topK = k;
            return this;
        }

        /** Nucleus sampling mass (default 0.95); 1 = off. */
        public Builder topP(float p) {
            topP = p;
            return this;
        }

        /** Drop tokens below p times the top probability (default 0.05); 0 = off. */
        public Builder minP(float p) {
            minP = p;
            return this;
        }

        /** HF-style repetition penalty (default 1.0 = off). */
        public Builder repetitionPenalty(float r) {
            repetitionPenalty = r;
            return this;
        }

        /** OpenAI-style frequency penalty (default 0 = off). */
        public Builder frequencyPenalty(float f) {
            frequencyPenalty = f;
            return this;
        }

        /** OpenAI-style presence penalty (default 0 = off). */
        public Builder presencePenalty(float p) {
            presencePenalty = p;
            return this;
        }

        /** Tokens the penalties look back over (default 64); -1 = all. */
        public Builder penaltyLastN(int n) {
            penaltyLastN = n;
            return this;
        }

        /** Sampling seed, all 64 bits (default 0 = the context's seed). */
        public Builder seed(long s) {
            seed = s;
            return this;
        }

        /** Keep going past the model's end-of-generation tokens (default false). */
        public Builder ignoreEos(boolean ignore) {
            ignoreEos = ignore;
            return this;
        }

        /**
         * The context sequence the generator extends (default 0); see {@link Context} for
         * several sequences in one context.
         */
        public Builder sequence(int seq) {
            if (seq < 0) throw new IllegalArgumentException("sequence must not be negative: " + seq);
            sequence = seq;
            return this;
        }

        /** Stop when the generated text contains {@code text}; it and what follows are not returned. */
        public Builder stopString(String text) {
            stopStrings.add(Objects.requireNonNull(text, "stop string"));
            return this;
        }

        /** Stop when {@code token} is sampled (in addition to the model's end-of-generation ids). */
        public Builder stopToken(int token) {
            stopTokens.add(token);
            return this;
        }

        public GenerationOptions build() {
            return new GenerationOptions(this);
        }
    }
}
