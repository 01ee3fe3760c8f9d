package eu.eurollm;

/**
 * What one training step did ({@code eurollm_train_result}). EXPERIMENTAL, like {@link Trainer}.
 *
 * @param loss mean loss of the step's labelled tokens
 * @param gradNorm global gradient norm before clipping
 * @param learningRate the learning rate this step used
 * @param tokens tokens processed (sequences x length)
 * @param lossTokens tokens that carried a label
 * @param step optimizer steps taken so far, this one included
 */
public record TrainResult(float loss, float gradNorm, float learningRate, long tokens, long lossTokens, long step) {}
