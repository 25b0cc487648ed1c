package edgecap.core;

/** One finished caption, as {@code edgecap.decoding.search.Hypothesis}. */
public final class Hypothesis {
    /** Word ids, without {@code <start>}/{@code <end>}. */
    public final int[] tokens;
    /** Sum of the chosen words' log-probabilities, {@code <end>} included (nats; a float32 sum). */
    public final double logProb;
    /** {@code logProb / length^lengthPenalty} (length counts {@code <end>}); ranks hypotheses. */
    public final double score;
    /** {@code (tokens.length, L)} attention weights per emitted word, or null. */
    public final float[][] attention;
    /** False when a constrained search could not meet its constraints and returned this caption instead. */
    public final boolean constraintsMet;

    public Hypothesis(int[] tokens, double logProb, double score, float[][] attention) {
        this(tokens, logProb, score, attention, true);
    }

    public Hypothesis(int[] tokens, double logProb, double score, float[][] attention, boolean constraintsMet) {
        this.tokens = tokens;
        this.logProb = logProb;
        this.score = score;
        this.attention = attention;
        this.constraintsMet = constraintsMet;
    }
}
