package eu.eurollm;

/**
 * Text to token ids and back, with the model's own tokenizer (SentencePiece or the GGUF
 * vocabulary). Implemented by {@link Model}; thread-safe.
 */
public interface Tokenizer {
    /** Flag: prepend BOS (when the model has one). */
    int ADD_BOS = (int) EurollmNative.TOKENIZE_ADD_BOS;
    /** Flag: "&lt;|im_start|&gt;" in the text becomes its special id. */
    int PARSE_SPECIAL = (int) EurollmNative.TOKENIZE_PARSE_SPECIAL;
    /** Flag: ADD_BOS when tokenizer_config.json says add_bos_token (the default there), and PARSE_SPECIAL. */
    int MODEL_DEFAULT = (int) EurollmNative.TOKENIZE_MODEL_DEFAULT;

    /** Token ids of {@code text} with the model's default flags ({@link #MODEL_DEFAULT}). */
    default int[] tokenize(String text) throws EurollmException {
        return tokenize(text, MODEL_DEFAULT);
    }

    /**
     * Token ids of {@code text}.
     * @param flags {@link #ADD_BOS}, {@link #PARSE_SPECIAL}, {@link #MODEL_DEFAULT} OR-ed together (0: none)
     */
    int[] tokenize(String text, int flags) throws EurollmException;

    /**
     * Text of token ids (the inverse of tokenize; BOS/EOS and other control tokens give no text).
     * @throws EurollmException {@link Status#ERR_INVALID_ARGUMENT} for an id outside the vocabulary
     */
    String detokenize(int[] tokens) throws EurollmException;

    /** The vocabulary piece of one token as stored ("▁the", "&lt;0x0A&gt;", "&lt;|im_end|&gt;"). */
    String tokenToPiece(int token) throws EurollmException;
}
