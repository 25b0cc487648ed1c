package edgecap.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Constrained beam search (Anderson, Fernando, Johnson &amp; Gould, EMNLP 2017): a line-by-line
 * port of {@code edgecap/decoding/constraints.py}, so that the same step outputs give the same
 * captions in the app as in the Python runtime.
 *
 * <p>Each constraint is a set of word ids, any one of which meets it. The finite-state machine's
 * states are the subsets of constraints met (bit i = constraint i); each state keeps
 * {@code beamSize} beams, so the step runs with {@code 2^m * beamSize} rows, row = state *
 * beamSize + beam. Ties: higher score, then lower token id, then lower row, as {@link Search}.
 */
public final class ConstrainedSearch {
    /** At most this many constraints (2^4 = 16 states). */
    public static final int MAX_CONSTRAINTS = 4;

    private ConstrainedSearch() {}

    /** The bits of the constraints each word id meets. */
    static long[] tokenMask(int[][] constraints, int vocabSize) {
        if (constraints.length > MAX_CONSTRAINTS) throw new IllegalArgumentException("at most " + MAX_CONSTRAINTS + " constraints, got " + constraints.length);
        long[] mask = new long[vocabSize];
        for (int i = 0; i < constraints.length; i++) {
            if (constraints[i].length == 0) throw new IllegalArgumentException("constraint " + i + " has no word ids");
            for (int id : constraints[i]) {
                if (id < 0 || id >= vocabSize) throw new IllegalArgumentException("constraint " + i + ": word ids must be in 0.." + (vocabSize - 1) + ", got " + id);
                mask[id] |= 1L << i;
            }
        }
        return mask;
    }

    /** {rows, tokens} of the n best candidates landing in state {@code target}, best first (Python: {@code _state_candidates}). */
    static int[][] stateCandidates(long[] mask, int[] constraintTokens, float[][] cand, int K, int target, int n) {
        int vocab = cand[0].length;
        List<int[]> found = new ArrayList<>();  // {row, token}
        float[][] same = new float[K][];
        for (int k = 0; k < K; k++) {
            same[k] = cand[target * K + k].clone();
            for (int v = 0; v < vocab; v++) if ((mask[v] & ~(long) target) != 0) same[k][v] = Float.NEGATIVE_INFINITY;
        }
        int[][] top = Search.topCandidates(same, Math.min(n, K * vocab));
        for (int i = 0; i < top[0].length; i++) found.add(new int[] {top[0][i] + target * K, top[1][i]});
        for (int s = 0; s < target; s++) {
            if ((s & ~target) != 0) continue;
            for (int k = 0; k < K; k++) {
                for (int token : constraintTokens) {
                    if ((s | mask[token]) != target) continue;
                    found.add(new int[] {s * K + k, token});
                }
            }
        }
        List<int[]> finite = new ArrayList<>();
        for (int[] f : found) if (Float.isFinite(cand[f[0]][f[1]])) finite.add(f);
        finite.sort((a, b) -> {
            float sa = cand[a[0]][a[1]], sb = cand[b[0]][b[1]];
            if (sa != sb) return sa > sb ? -1 : 1;
            if (a[1] != b[1]) return Integer.compare(a[1], b[1]);
            return Integer.compare(a[0], b[0]);
        });
        int m = Math.min(n, finite.size());
        int[] rows = new int[m], tokens = new int[m];
        for (int i = 0; i < m; i++) {
            rows[i] = finite.get(i)[0];
            tokens[i] = finite.get(i)[1];
        }
        return new int[][] {rows, tokens};
    }

    private static double norm(double logp, int length, double lengthPenalty) {
        return lengthPenalty != 0 ? logp / Math.pow(length, lengthPenalty) : logp;
    }

    /**
     * Beam search whose captions contain one word of each constraint, as Python's
     * {@code constrained_beam_search}. If no caption meets them all within {@code maxLength}
     * words, the best finished captions of any state come back with {@code constraintsMet}
     * false.
     *
     * @param state initial state of one image (each tensor with one row)
     * @param constraints m (&lt;= 4) sets of word ids
     * @param vocabSize V, the width of the step's log-probabilities
     * @param numReturn n-best size, 1..beamSize
     * @return up to {@code numReturn} hypotheses, best first
     * @throws IllegalArgumentException bad sizes or constraints, {@code endId} a constraint word
     */
    public static List<Hypothesis> search(StepFunction step, float[][][] state, int startId, int endId, int[][] constraints, int vocabSize, int beamSize, int maxLength, double lengthPenalty, int numReturn, LogitsProcessor processors) {
        if (maxLength < 1) throw new IllegalArgumentException("max_length must be >= 1, got " + maxLength);
        if (beamSize < 1) throw new IllegalArgumentException("beam_size must be >= 1, got " + beamSize);
        if (numReturn < 1 || numReturn > beamSize) throw new IllegalArgumentException("num_return must be in 1..beam_size (" + beamSize + "), got " + numReturn);
        if (state[0].length != 1) throw new IllegalArgumentException("constrained search decodes one image: state batch must be 1, got " + state[0].length);
        long[] mask = tokenMask(constraints, vocabSize);
        if (mask[endId] != 0) throw new IllegalArgumentException("end_id " + endId + " cannot be a constraint word");
        int[] constraintTokens = java.util.stream.IntStream.range(0, vocabSize).filter(v -> mask[v] != 0).toArray();
        final int K = beamSize, S = 1 << constraints.length, R = S * K, accepting = S - 1;
        float[][][] st = new float[state.length][R][];
        for (int i = 0; i < state.length; i++) for (int r = 0; r < R; r++) st[i][r] = state[i][0].clone();
        int[] tokens = new int[R];
        Arrays.fill(tokens, startId);
        float[] scores = new float[R];
        Arrays.fill(scores, Float.NEGATIVE_INFINITY);
        scores[0] = 0.0f;
        int[][] seqs = new int[R][0];
        List<List<float[]>> attns = new ArrayList<>();
        for (int r = 0; r < R; r++) attns.add(new ArrayList<>());
        List<List<Hypothesis>> finished = new ArrayList<>();
        for (int s = 0; s < S; s++) finished.add(new ArrayList<>());
        Comparator<Hypothesis> byScore = Comparator.comparingDouble(h -> -h.score);
        for (int t = 0; t <= maxLength; t++) {
            StepFunction.Result res = step.step(tokens, st);
            float[][] logProbs = res.logProbs;
            st = res.state;
            float[][] alpha = res.attention;
            if (processors != null) processors.process(logProbs, seqs);
            if (t == maxLength) {  // out of room: every live beam ends here
                for (int row = 0; row < R; row++) {
                    if (!Float.isFinite(scores[row])) continue;
                    float end = logProbs[row][endId];
                    finish(finished, row / K, accepting, K, seqs[row], attns.get(row), scores[row] + (Float.isFinite(end) ? end : 0.0f), lengthPenalty, byScore);
                }
                break;
            }
            int vocab = logProbs[0].length;
            float[][] cand = new float[R][vocab];
            for (int row = 0; row < R; row++) for (int v = 0; v < vocab; v++) cand[row][v] = scores[row] + logProbs[row][v];
            int[] keepRows = new int[R], keepTokens = new int[R];
            float[] keepScores = new float[R];
            Arrays.fill(keepTokens, endId);
            Arrays.fill(keepScores, Float.NEGATIVE_INFINITY);
            for (int target = 0; target < S; target++) {
                int[][] top = stateCandidates(mask, constraintTokens, cand, K, target, 2 * K);
                int n = 0;
                for (int i = 0; i < top[0].length; i++) {
                    int row = top[0][i], token = top[1][i];
                    float score = cand[row][token];
                    if (token == endId) {
                        finish(finished, row / K, accepting, K, seqs[row], attns.get(row), score, lengthPenalty, byScore);
                        continue;
                    }
                    keepRows[target * K + n] = row;
                    keepTokens[target * K + n] = token;
                    keepScores[target * K + n] = score;
                    if (++n == K) break;
                }
                for (int i = n; n > 0 && i < K; i++) {  // padding rows repeat a live row of this state, scored -inf
                    keepRows[target * K + i] = keepRows[target * K];
                    keepTokens[target * K + i] = keepTokens[target * K];
                }
            }
            float bestAlive = Float.NEGATIVE_INFINITY;
            for (float s : keepScores) bestAlive = Math.max(bestAlive, s);
            if (!Float.isFinite(bestAlive)) break;
            List<Hypothesis> acc = finished.get(accepting);
            if (acc.size() >= K) {
                double worst = acc.get(acc.size() - 1).score;
                if (lengthPenalty <= 0 && bestAlive <= worst || lengthPenalty > 0 && norm(bestAlive, t + 2, lengthPenalty) < worst) break;
            }
            float[][][] reordered = new float[st.length][R][];
            for (int i = 0; i < st.length; i++) for (int r = 0; r < R; r++) reordered[i][r] = st[i][keepRows[r]].clone();
            st = reordered;
            int[][] newSeqs = new int[R][];
            List<List<float[]>> newAttns = new ArrayList<>();
            for (int r = 0; r < R; r++) {
                int[] seq = Arrays.copyOf(seqs[keepRows[r]], t + 1);
                seq[t] = keepTokens[r];
                newSeqs[r] = seq;
                List<float[]> a = new ArrayList<>(attns.get(keepRows[r]));
                if (alpha != null) a.add(alpha[keepRows[r]].clone());
                newAttns.add(a);
            }
            seqs = newSeqs;
            attns = newAttns;
            scores = keepScores;
            tokens = keepTokens;
        }
        List<Hypothesis> acc = finished.get(accepting);
        if (!acc.isEmpty()) return new ArrayList<>(acc.subList(0, Math.min(numReturn, acc.size())));
        List<Hypothesis> all = new ArrayList<>();
        for (List<Hypothesis> f : finished) all.addAll(f);
        all.sort(byScore);
        return new ArrayList<>(all.subList(0, Math.min(numReturn, all.size())));
    }

    private static void finish(List<List<Hypothesis>> finished, int s, int accepting, int K, int[] seq, List<float[]> attn, float logp, double lengthPenalty, Comparator<Hypothesis> byScore) {
        float[][] a = attn.isEmpty() ? null : attn.toArray(new float[0][]);
        List<Hypothesis> f = finished.get(s);
        f.add(new Hypothesis(seq.clone(), logp, norm(logp, seq.length + 1, lengthPenalty), a, s == accepting));
        f.sort(byScore);
        while (f.size() > K) f.remove(f.size() - 1);
    }
}
