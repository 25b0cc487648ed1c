package edgecap.core;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A tag-conditioned model's tag inputs, as {@code edgecap/runtime/tag_inputs.py} fills them: the
 * tags of the model's tagger scored at least its {@code min_score} whose word the vocabulary has,
 * one slot per word (its best score), best first (ties by word), at most {@code size}; the other
 * slots hold id 0 and score 0.
 */
public final class TagInputs {
    private TagInputs() {}

    /** One tag of a tagger (as {@code edgecap.runtime.Tag}). */
    public static final class Tag {
        public final String word, source;
        public final double score;
        public final List<String> forms;

        public Tag(String word, double score, String source, List<String> forms) {
            this.word = word;
            this.score = score;
            this.source = source;
            this.forms = forms;
        }
    }

    /** The two input rows: vocabulary ids and scores, {@code size} each. */
    public static final class Rows {
        public final int[] ids;
        public final float[] scores;

        Rows(int[] ids, float[] scores) {
            this.ids = ids;
            this.scores = scores;
        }
    }

    /** The vocabulary id a tag enters the model as: its word, else its first form the vocabulary has; -1 if none. */
    static int wordId(Tag tag, Map<String, Integer> index) {
        List<String> words = new ArrayList<>();
        words.add(tag.word);
        words.addAll(tag.forms);
        for (String w : words) {
            Integer i = index.get(w);
            if (i != null && i >= 4) return i;
        }
        return -1;
    }

    /**
     * The tag inputs of one photo.
     *
     * @throws IllegalArgumentException the model declares no tags, or a score outside [0, 1]
     */
    public static Rows rows(List<Tag> tags, ModelMetadata m) {
        if (m.tagCount == 0) throw new IllegalArgumentException(m.name + ": the model has no tag inputs");
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < m.vocabulary.size(); i++) index.putIfAbsent(m.vocabulary.get(i), i);
        Map<Integer, Tag> best = new HashMap<>();
        List<Integer> order = new ArrayList<>();
        for (Tag t : tags) {
            if (!(t.score >= 0.0 && t.score <= 1.0))
                throw new IllegalArgumentException("tag " + t.word + ": score must be in [0, 1], got " + t.score);
            if (m.tagger != null && !m.tagger.isEmpty() && !m.tagger.equals(t.source)) continue;
            int id = wordId(t, index);
            if (id < 0 || t.score < m.tagMinScore) continue;
            Tag prev = best.get(id);
            if (prev == null) order.add(id);
            if (prev == null || t.score > prev.score) best.put(id, t);
        }
        order.sort((a, b) -> {
            Tag x = best.get(a), y = best.get(b);
            int c = Double.compare(y.score, x.score);
            return c != 0 ? c : x.word.compareTo(y.word);
        });
        int[] ids = new int[m.tagCount];
        float[] scores = new float[m.tagCount];
        for (int slot = 0; slot < Math.min(order.size(), m.tagCount); slot++) {
            ids[slot] = order.get(slot);
            scores[slot] = (float) best.get(order.get(slot)).score;
        }
        return new Rows(ids, scores);
    }
}
