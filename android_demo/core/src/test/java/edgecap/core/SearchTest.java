package edgecap.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The portable tie-breaking rule of edgecap.decoding: higher score, then lower token id, then lower beam. */
class SearchTest {
    @Test
    void topCandidatesBreakTiesByTokenThenRow() {
        float[][] scores = {{-1f, -0.5f, -0.5f, -2f}, {-0.5f, -3f, -0.5f, -1f}};
        int[][] top = Search.topCandidates(scores, 5);
        assertArrayEquals(new int[] {1, 0, 0, 1, 0}, top[0], "rows");
        assertArrayEquals(new int[] {0, 1, 2, 2, 0}, top[1], "tokens");
        assertThrows(IllegalArgumentException.class, () -> Search.topCandidates(scores, 0));
    }

    /**
     * Every word ties with every other (and beats {@code <end>}): the lowest ids win. The expected
     * hypotheses are what {@code edgecap.decoding} returns for the same step.
     */
    @Test
    void tiedStepsGiveLowestTokenIds() {
        final int V = 6, END = 2;
        StepFunction flat = (tokens, state) -> {
            float[][] lp = new float[tokens.length][V];
            for (float[] row : lp) {
                java.util.Arrays.fill(row, (float) Math.log(0.2));
                row[END] = (float) Math.log(0.1);
            }
            return new StepFunction.Result(lp, state, null);
        };
        float[][][] state = {{{0f}}};
        LogitsProcessor suppress = LogitsProcessors.list(List.of(LogitsProcessors.suppressTokens(0, 1, 3), LogitsProcessors.minLength(1, END)));
        Hypothesis greedy = Search.greedy(flat, state, 1, END, 3, suppress).get(0);
        assertArrayEquals(new int[] {4, 4, 4}, greedy.tokens);
        List<Hypothesis> beams = Search.beam(flat, state, 1, END, 2, 2, 0.0, 2, suppress);
        assertEquals(2, beams.size());
        assertArrayEquals(new int[] {4, 4}, beams.get(0).tokens);
        assertArrayEquals(new int[] {5, 4}, beams.get(1).tokens);
        assertEquals(2 * (float) Math.log(0.2) + (float) Math.log(0.1), beams.get(1).logProb, 1e-6);
    }

    @Test
    void noRepeatNGramBlocksTheRepeatedTrigram() {
        float[][] lp = new float[1][10];
        LogitsProcessors.noRepeatNGram(3).process(lp, new int[][] {{5, 6, 7, 5, 6}});
        assertEquals(Float.NEGATIVE_INFINITY, lp[0][7]);
        assertEquals(0f, lp[0][6]);
        assertThrows(IllegalArgumentException.class, () -> LogitsProcessors.noRepeatNGram(1));
    }
}
