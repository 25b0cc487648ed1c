package edgecap.core;

/**
 * An edit of next-word log-probabilities before each search choice, as
 * {@code edgecap.decoding.processors.LogitsProcessor} in the Python runtime.
 *
 * <p>{@code logProbs} is {@code float (B, V)} and may be edited in place; {@code sequences} is
 * {@code int (B, t)}, the words each row has emitted so far (no {@code <start>}; {@code t} is the
 * 0-based step).
 */
public interface LogitsProcessor {
    void process(float[][] logProbs, int[][] sequences);
}
