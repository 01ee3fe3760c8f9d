package eu.eurollm;

import java.util.Objects;

/**
 * How embeddings are computed ({@code eurollm_embed_params}): pooling, L2 normalisation,
 * Matryoshka truncation, tokenize flags. Immutable; unset fields keep the library's defaults
 * (mean pooling, no normalisation, every dimension, the model's default tokenize flags).
 */
public final class EmbedOptions {
    private final Pooling pooling;
    private final Boolean normalize;
    private final Integer dimensions;
    private final Integer tokenizeFlags;

    private EmbedOptions(Builder b) {
        pooling = b.pooling;
        normalize = b.normalize;
        dimensions = b.dimensions;
        tokenizeFlags = b.tokenizeFlags;
    }

    public static EmbedOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The pooling asked for (the library default, MEAN, when unset). */
    public Pooling pooling() {
        return pooling == null ? Pooling.MEAN : pooling;
    }

    EmbedParams toNative() throws EurollmException {
        EmbedParams p = new EmbedParams();
        try {
            EurollmNative.embedParamsInit(p, EurollmNative.EMBED_PARAMS_VERSION);
            if (pooling != null) p.setPooling(pooling);
            if (normalize != null) p.setNormalize(normalize);
            if (dimensions != null) p.setDim(dimensions);
            if (tokenizeFlags != null) p.setTokenizeFlags(tokenizeFlags);
            return p;
        } catch (EurollmException | RuntimeException e) {
            p.close();
            throw e;
        }
    }

    public static final class Builder {
        private Pooling pooling;
        private Boolean normalize;
        private Integer dimensions;
        private Integer tokenizeFlags;

        private Builder() {}

        /** MEAN (default), LAST, FIRST, or PER_TOKEN (one row per token, no pooling). */
        public Builder pooling(Pooling pooling) {
            this.pooling = Objects.requireNonNull(pooling, "pooling");
            return this;
        }

        /** L2-normalise each row (default false). */
        public Builder normalize(boolean normalize) {
            this.normalize = normalize;
            return this;
        }

        /** Keep the first {@code n} components (Matryoshka); 0 = all (default). */
        public Builder dimensions(int n) {
            if (n < 0) throw new IllegalArgumentException("dimensions must not be negative: " + n);
            this.dimensions = n;
            return this;
        }

        /** Tokenize flags for text inputs (default {@link Tokenizer#MODEL_DEFAULT}). */
        public Builder tokenizeFlags(int flags) {
            this.tokenizeFlags = flags;
            return this;
        }

        public EmbedOptions build() {
            return new EmbedOptions(this);
        }
    }
}
