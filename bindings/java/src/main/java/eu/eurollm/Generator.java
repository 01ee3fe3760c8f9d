package eu.eurollm;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Objects;

/**
 * Token-by-token generation on a {@link Context} ({@code eurollm_generator}): append prompt
 * tokens, then {@link #step()} until it returns -1, reading {@link #textDelta()} after each step.
 *
 * <pre>{@code
 * try (Context ctx = model.newContext();
 *      Generator gen = ctx.newGenerator(GenerationOptions.builder().temperature(0).build())) {
 *     gen.appendTokens(model.tokenize("Once upon a time"));
 *     while (gen.step() >= 0) System.out.print(gen.textDelta());
 *     System.out.print(gen.textDelta()); // text released when generation ended
 * }
 * }</pre>
 *
 * One thread at a time, like its context (calls are serialised with the context's).
 */
public final class Generator extends NativeObject {
    private final Context context;

    Generator(Context context, long handle) {
        super("Generator", handle, EurollmNative::generatorFree);
        this.context = context;
    }

    /** The context this generator runs on. */
    public Context context() {
        return context;
    }

    /**
     * Appends prompt tokens (evaluated lazily by the next step); may be called between steps.
     * @throws EurollmException {@link Status#ERR_CONTEXT_FULL} if they would not fit,
     *         {@link Status#ERR_INVALID_ARGUMENT} for ids outside the vocabulary or a finished generator
     */
    public void appendTokens(int... tokens) throws EurollmException {
        Objects.requireNonNull(tokens, "tokens");
        long h = lock();
        try {
            EurollmNative.generatorAppendTokens(h, tokens);
        } finally {
            unlock();
        }
    }

    /** Stop when this token is sampled (in addition to the model's end-of-generation ids). */
    public void addStopToken(int token) throws EurollmException {
        long h = lock();
        try {
            EurollmNative.generatorAddStopToken(h, token);
        } finally {
            unlock();
        }
    }

    /** Stop when the generated text contains {@code text}; it and what follows are not streamed. */
    public void addStopString(String text) throws EurollmException {
        Objects.requireNonNull(text, "text");
        long h = lock();
        try {
            EurollmNative.generatorAddStopString(h, text.getBytes(StandardCharsets.UTF_8));
        } finally {
            unlock();
        }
    }

    /**
     * Generates one token.
     * @return the new token id, or -1 when generation has ended (see {@link #stopReason()})
     */
    public int step() throws EurollmException {
        int[] token = new int[1];
        long h = lock();
        try {
            return EurollmNative.generatorStep(h, token) == Status.OK ? token[0] : -1;
        } finally {
            unlock();
        }
    }

    /**
     * The text made final by the last step: never a broken UTF-8 sequence nor part of a stop
     * string; may be "". After the step that returned -1 it holds the text released at the end.
     */
    public String textDelta() throws EurollmException {
        byte[][] text = new byte[1][];
        long h = lock();
        try {
            EurollmNative.generatorTextDelta(h, text);
        } finally {
            unlock();
        }
        return text[0] == null ? "" : new String(text[0], StandardCharsets.UTF_8);
    }

    /** The logits from which the next token will be sampled (evaluates pending tokens). */
    public float[] logits() throws EurollmException {
        float[][] logits = new float[1][];
        long h = lock();
        try {
            EurollmNative.generatorLogits(h, logits);
        } finally {
            unlock();
        }
        return logits[0];
    }

    /** Why generation ended; {@link StopReason#NONE} while it is still running. */
    public StopReason stopReason() {
        long h = lock();
        try {
            return EurollmNative.generatorStopReason(h);
        } finally {
            unlock();
        }
    }

    /** True once generation has ended. */
    public boolean isFinished() {
        return stopReason() != StopReason.NONE;
    }

    /** Tokens generated so far. */
    public long generatedCount() {
        long h = lock();
        try {
            return EurollmNative.generatorNGenerated(h);
        } finally {
            unlock();
        }
    }

    /**
     * One step of several generators of the same context at once, their pending tokens evaluated
     * in a single batch (continuous batching: generators may join or leave between calls). Each
     * must be on a different sequence ({@link GenerationOptions.Builder#sequence(int)}).
     * @return the new token of each generator, or -1 for one that has finished
     */
    public static int[] stepBatch(List<Generator> generators) throws EurollmException {
        Objects.requireNonNull(generators, "generators");
        int n = generators.size();
        if (n == 0) return new int[0];
        Context ctx = Objects.requireNonNull(generators.get(0), "generators[0]").context;
        for (int i = 0; i < n; ++i) {
            if (Objects.requireNonNull(generators.get(i), "generators[" + i + "]").context != ctx)
                throw new IllegalArgumentException("generators of a batch step must share one context");
        }
        long[] handles = new long[n];
        int[] tokens = new int[n];
        int[] statuses = new int[n];
        int acquired = 0;
        ctx.inUse.lock();
        try {
            for (; acquired < n; ++acquired) handles[acquired] = generators.get(acquired).acquire();
            EurollmNative.generatorStepBatch(handles, tokens, statuses);
        } finally {
            for (int i = 0; i < acquired; ++i) generators.get(i).release();
            ctx.inUse.unlock();
        }
        for (int i = 0; i < n; ++i)
            if (statuses[i] != Status.OK.swigValue()) tokens[i] = -1;
        return tokens;
    }

    /**
     * The rest of the generation as pieces of text (an Iterator, and a Stream via
     * {@link TextStream#stream()}). The generator stays open: close it yourself.
     */
    public TextStream texts() {
        return new TextStream(this, false, null);
    }

    /** Frees the generator (the context can then take a new one). */
    @Override
    public void close() {
        super.close();
    }

    private long lock() {
        context.inUse.lock();
        try {
            return acquire();
        } catch (RuntimeException e) {
            context.inUse.unlock();
            throw e;
        }
    }

    private void unlock() {
        release();
        context.inUse.unlock();
    }
}
