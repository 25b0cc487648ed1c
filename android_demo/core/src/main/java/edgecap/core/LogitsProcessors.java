package edgecap.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;

/** The processors of {@code edgecap/decoding/processors.py}, with the same rules and errors. */
public final class LogitsProcessors {
    private LogitsProcessors() {}

    /** Never emit the given ids ({@code <pad>}, {@code <start>}, {@code <unk>}): their log-prob becomes -inf. */
    public static LogitsProcessor suppressTokens(int... tokenIds) {
        TreeSet<Integer> ids = new TreeSet<>();
        for (int id : tokenIds) {
            if (id < 0) throw new IllegalArgumentException("token ids must be >= 0, got " + Arrays.toString(tokenIds));
            ids.add(id);
        }
        int[] sorted = ids.stream().mapToInt(Integer::intValue).toArray();
        return (logProbs, sequences) -> {
            for (float[] row : logProbs) for (int id : sorted) row[id] = Float.NEGATIVE_INFINITY;
        };
    }

    /** Forbid {@code <end>} before {@code minLength} words. */
    public static LogitsProcessor minLength(int minLength, int endId) {
        if (minLength < 0) throw new IllegalArgumentException("min_length must be >= 0, got " + minLength);
        return (logProbs, sequences) -> {
            int t = sequences.length == 0 ? 0 : sequences[0].length;
            if (t < minLength) for (float[] row : logProbs) row[endId] = Float.NEGATIVE_INFINITY;
        };
    }

    /**
     * Forbid any word that would repeat an n-gram already in the caption ("a dog on a skateboard
     * on a skateboard" with n = 3 blocks the second "skateboard"); 0 disables it.
     *
     * @throws IllegalArgumentException {@code ngramSize} &lt; 0 or == 1
     */
    public static LogitsProcessor noRepeatNGram(int ngramSize) {
        if (ngramSize < 0 || ngramSize == 1) throw new IllegalArgumentException("no_repeat_ngram_size must be 0 (off) or >= 2, got " + ngramSize);
        final int n = ngramSize;
        return (logProbs, sequences) -> {
            for (int row = 0; row < sequences.length; row++) {
                int[] seq = sequences[row];
                int t = seq.length;
                if (n == 0 || t < n) return;
                for (int i = 0; i < t - n + 1; i++) {
                    boolean match = true;
                    for (int j = 0; j < n - 1 && match; j++) match = seq[i + j] == seq[t - n + 1 + j];
                    if (match) logProbs[row][seq[i + n - 1]] = Float.NEGATIVE_INFINITY;
                }
            }
        };
    }

    /** Applies {@code processors} in order. */
    public static LogitsProcessor list(List<LogitsProcessor> processors) {
        List<LogitsProcessor> copy = new ArrayList<>(processors);
        return (logProbs, sequences) -> {
            for (LogitsProcessor p : copy) p.process(logProbs, sequences);
        };
    }

    /**
     * The captioning default, as {@code decoding_processors} in Python: never emit
     * {@code <pad>}, {@code <start>} or {@code <unk>}, nor an empty caption; optionally no
     * repeated n-gram.
     */
    public static LogitsProcessor captioningDefaults(ModelMetadata m, int noRepeatNGramSize) {
        List<LogitsProcessor> list = new ArrayList<>();
        list.add(suppressTokens(m.padId, m.startId, m.unkId));
        list.add(minLength(1, m.endId));
        if (noRepeatNGramSize != 0) list.add(noRepeatNGram(noRepeatNGramSize));
        return list(list);
    }
}
