package eu.eurollm;

/**
 * Receives generated text as it is produced (the Java side of {@code eurollm_token_cb}).
 * Called on the generating thread.
 */
@FunctionalInterface
public interface TokenCallback {
    /**
     * @param token the generated token id, or -1 for text released when generation ended
     *              (a held-back prefix of a stop string that never completed, for example)
     * @param text  the text this token completes: never a broken UTF-8 sequence nor part of a
     *              stop string; may be ""
     * @return true to continue, false to stop
     */
    boolean onToken(int token, String text);
}
