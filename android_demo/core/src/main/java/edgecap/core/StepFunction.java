package edgecap.core;

/**
 * One decoder step, as {@code edgecap.decoding.search.StepFunction}: the app implements it with
 * LiteRT's {@code decode_step} signature runner, the tests by replaying recorded outputs.
 *
 * <p>{@code tokens} is {@code int (B,)}, the previous words. {@code state[i][b]} holds row
 * {@code b} of the i-th state tensor of the step contract, flattened (e.g. an LSTM's {@code h}
 * and {@code c}, 512 floats each); the search reorders rows by beam parents. What is the same for
 * every beam of an image (its memory) is bound to the implementation, not carried in the state.
 */
public interface StepFunction {
    Result step(int[] tokens, float[][][] state);

    /** What one step returns. */
    final class Result {
        /** {@code float (B, V)}: next-word log-probabilities (owned by the search, which edits them). */
        public final float[][] logProbs;
        /** The new state, laid out as the input state. */
        public final float[][][] state;
        /** {@code float (B, L)} attention map of each row, or null. */
        public final float[][] attention;

        public Result(float[][] logProbs, float[][][] state, float[][] attention) {
            this.logProbs = logProbs;
            this.state = state;
            this.attention = attention;
        }
    }
}
