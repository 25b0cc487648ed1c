package edgecap.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Greedy and beam search over a {@link StepFunction}: a line-by-line port of
 * {@code edgecap/decoding/search.py}, so that the same step outputs give the same token ids,
 * log-probabilities and captions in the app as in the Python runtime.
 *
 * <p>Ties are broken by one portable rule: higher score first, then the lower token id, then the
 * lower beam index (int8 log-probabilities are multiples of a small step, and exact ties are
 * common). Scores are float32 sums, as in Python; length normalisation is done in double, as
 * Python does with its floats.
 */
public final class Search {
    private Search() {}

    private static void check(int maxLength, int beamSize) {
        if (maxLength < 1) throw new IllegalArgumentException("max_length must be >= 1, got " + maxLength);
        if (beamSize < 1) throw new IllegalArgumentException("beam_size must be >= 1, got " + beamSize);
    }

    private static int[][] prefix(int[][] out, int t) {
        int[][] seqs = new int[out.length][];
        for (int b = 0; b < out.length; b++) seqs[b] = Arrays.copyOf(out[b], t);
        return seqs;
    }

    /**
     * Pick the most probable word at each step for a batch of B images; ties go to the lowest
     * token id.
     *
     * @param state initial state, {@code state[i][b]} = row b of state tensor i (B rows)
     * @param maxLength most words per caption ({@code <end>} not counted)
     * @param processors edits applied before each choice, or null
     * @return one hypothesis per row (score = logProb)
     * @throws IllegalArgumentException {@code maxLength} &lt; 1
     */
    public static List<Hypothesis> greedy(StepFunction step, float[][][] state, int startId, int endId, int maxLength, LogitsProcessor processors) {
        check(maxLength, 1);
        int batch = state[0].length;
        int[] tokens = new int[batch];
        Arrays.fill(tokens, startId);
        int[][] out = new int[batch][maxLength + 1];
        for (int[] row : out) Arrays.fill(row, endId);
        float[] total = new float[batch];
        boolean[] done = new boolean[batch];
        List<float[][]> attn = new ArrayList<>();
        for (int t = 0; t <= maxLength; t++) {
            StepFunction.Result r = step.step(tokens, state);
            float[][] logProbs = r.logProbs;
            state = r.state;
            if (processors != null) processors.process(logProbs, prefix(out, t));
            int[] next = new int[batch];
            for (int b = 0; b < batch; b++) next[b] = t == maxLength ? endId : argmax(logProbs[b]);
            tokens = next;
            boolean allDone = true;
            for (int b = 0; b < batch; b++) {
                float chosen = logProbs[b][tokens[b]];
                total[b] += (done[b] || !Float.isFinite(chosen)) ? 0.0f : chosen;
                out[b][t] = done[b] ? endId : tokens[b];
                done[b] |= tokens[b] == endId;
                allDone &= done[b];
            }
            if (r.attention != null) attn.add(r.attention);
            if (allDone) break;
        }
        List<Hypothesis> hyps = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            int n = 0;
            while (out[b][n] != endId) n++;
            float[][] a = null;
            if (!attn.isEmpty()) {
                a = new float[n][];
                for (int i = 0; i < n; i++) a[i] = attn.get(i)[b].clone();
            }
            hyps.add(new Hypothesis(Arrays.copyOf(out[b], n), total[b], total[b], a));
        }
        return hyps;
    }

    private static int argmax(float[] row) {
        int best = 0;
        for (int v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
        return best;
    }

    /**
     * The {@code n} best entries of {@code scores (K, V)}, best first, as {@code {rows, tokens}}:
     * higher score, then lower token id, then lower row.
     *
     * @throws IllegalArgumentException {@code n} &lt; 1
     */
    public static int[][] topCandidates(float[][] scores, int n) {
        if (n < 1) throw new IllegalArgumentException("n must be >= 1, got " + n);
        int vocab = scores[0].length;
        n = Math.min(n, scores.length * vocab);
        int[] rows = new int[n], tokens = new int[n];
        float[] best = new float[n];
        int size = 0;
        for (int row = 0; row < scores.length; row++) {
            for (int token = 0; token < vocab; token++) {
                float s = scores[row][token];
                if (size == n && !better(s, token, row, best[n - 1], tokens[n - 1], rows[n - 1])) continue;
                int i = size == n ? n - 1 : size++;
                while (i > 0 && better(s, token, row, best[i - 1], tokens[i - 1], rows[i - 1])) {
                    best[i] = best[i - 1];
                    tokens[i] = tokens[i - 1];
                    rows[i] = rows[i - 1];
                    i--;
                }
                best[i] = s;
                tokens[i] = token;
                rows[i] = row;
            }
        }
        return new int[][] {rows, tokens};
    }

    private static boolean better(float s, int token, int row, float s2, int token2, int row2) {
        if (s != s2) return s > s2;
        if (token != token2) return token < token2;
        return row < row2;
    }

    private static double norm(double logp, int length, double lengthPenalty) {
        return lengthPenalty != 0 ? logp / Math.pow(length, lengthPenalty) : logp;
    }

    /**
     * Beam search for one image, as {@code beam_search} in Python: keeps the {@code beamSize}
     * best partial captions; finished ones are ranked by {@code logProb / length^lengthPenalty}
     * (length counts {@code <end>}). The step always runs with {@code beamSize} rows.
     *
     * @param state initial state of one image (each tensor with one row)
     * @param numReturn n-best size, 1..beamSize
     * @return up to {@code numReturn} hypotheses, best first
     * @throws IllegalArgumentException bad sizes, or a state not of one row
     */
    public static List<Hypothesis> beam(StepFunction step, float[][][] state, int startId, int endId, int beamSize, int maxLength, double lengthPenalty, int numReturn, LogitsProcessor processors) {
        check(maxLength, beamSize);
        if (numReturn < 1 || numReturn > beamSize) throw new IllegalArgumentException("num_return must be in 1..beam_size (" + beamSize + "), got " + numReturn);
        if (state[0].length != 1) throw new IllegalArgumentException("beam search decodes one image: state batch must be 1, got " + state[0].length);
        final int K = beamSize;
        float[][][] st = new float[state.length][K][];
        for (int i = 0; i < state.length; i++) for (int k = 0; k < K; k++) st[i][k] = state[i][0].clone();
        int[] tokens = new int[K];
        Arrays.fill(tokens, startId);
        float[] scores = new float[K];
        Arrays.fill(scores, Float.NEGATIVE_INFINITY);
        scores[0] = 0.0f;
        int[][] seqs = new int[K][0];
        List<List<float[]>> attns = new ArrayList<>();
        for (int k = 0; k < K; k++) attns.add(new ArrayList<>());
        List<Hypothesis> finished = new ArrayList<>();
        Comparator<Hypothesis> byScore = Comparator.comparingDouble(h -> -h.score);
        for (int t = 0; t <= maxLength; t++) {
            StepFunction.Result r = step.step(tokens, st);
            float[][] logProbs = r.logProbs;
            st = r.state;
            float[][] alpha = r.attention;
            if (processors != null) processors.process(logProbs, seqs);
            if (t == maxLength) {  // out of room: every live beam ends here
                for (int row = 0; row < K; row++) {
                    if (!Float.isFinite(scores[row])) continue;
                    float end = logProbs[row][endId];
                    finished.add(finish(seqs[row], attns.get(row), scores[row] + (Float.isFinite(end) ? end : 0.0f), lengthPenalty));
                }
                break;
            }
            int vocab = logProbs[0].length;
            float[][] cand = new float[K][vocab];
            for (int row = 0; row < K; row++) for (int v = 0; v < vocab; v++) cand[row][v] = scores[row] + logProbs[row][v];
            int[][] top = topCandidates(cand, Math.min(2 * K, K * vocab));
            int[] keepRows = new int[K], keepTokens = new int[K];
            float[] keepScores = new float[K];
            int kept = 0;
            for (int i = 0; i < top[0].length && kept < K; i++) {
                int row = top[0][i], token = top[1][i];
                float score = cand[row][token];
                if (!Float.isFinite(score)) break;
                if (token == endId) {
                    finished.add(finish(seqs[row], attns.get(row), score, lengthPenalty));
                } else {
                    keepRows[kept] = row;
                    keepTokens[kept] = token;
                    keepScores[kept++] = score;
                }
            }
            if (kept == 0) break;
            finished.sort(byScore);
            while (finished.size() > K) finished.remove(finished.size() - 1);
            double bestAlive = norm(keepScores[0], t + 2, lengthPenalty);
            if (finished.size() >= K) {
                double worst = finished.get(finished.size() - 1).score;
                if (lengthPenalty <= 0 && keepScores[0] <= worst || lengthPenalty > 0 && bestAlive < worst) break;
            }
            for (int i = kept; i < K; i++) {  // fewer live candidates than beams: pad, scored -inf
                keepRows[i] = keepRows[0];
                keepTokens[i] = keepTokens[0];
                keepScores[i] = Float.NEGATIVE_INFINITY;
            }
            float[][][] reordered = new float[st.length][K][];
            for (int i = 0; i < st.length; i++) for (int k = 0; k < K; k++) reordered[i][k] = st[i][keepRows[k]].clone();
            st = reordered;
            int[][] newSeqs = new int[K][];
            List<List<float[]>> newAttns = new ArrayList<>();
            for (int k = 0; k < K; k++) {
                int[] seq = Arrays.copyOf(seqs[keepRows[k]], t + 1);
                seq[t] = keepTokens[k];
                newSeqs[k] = seq;
                List<float[]> a = new ArrayList<>(attns.get(keepRows[k]));
                if (alpha != null) a.add(alpha[keepRows[k]].clone());
                newAttns.add(a);
            }
            seqs = newSeqs;
            attns = newAttns;
            scores = keepScores;
            tokens = keepTokens;
        }
        finished.sort(byScore);
        return new ArrayList<>(finished.subList(0, Math.min(numReturn, finished.size())));
    }

    private static Hypothesis finish(int[] seq, List<float[]> attn, float logp, double lengthPenalty) {
        float[][] a = attn.isEmpty() ? null : attn.toArray(new float[0][]);
        return new Hypothesis(seq.clone(), logp, norm(logp, seq.length + 1, lengthPenalty), a);
    }
}
