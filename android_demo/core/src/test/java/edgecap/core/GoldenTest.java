package edgecap.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.stream.Stream;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The Java search, fed the step outputs the Python runtime recorded, must walk the same path
 * (same tokens into every step) and return the same hypotheses: token ids, log-probabilities to
 * 1e-9, scores, text. Decoding settings and vocabulary come from the real model file's metadata.
 */
class GoldenTest {
    static Stream<Path> decodings() throws Exception {
        return Golden.files("*.beam*.json").stream();
    }

    static Stream<Path> constrainedDecodings() throws Exception {
        return Golden.files("*.constrained*.json").stream();
    }

    /** Replays the recorded calls in order, checking each call's tokens. */
    static final class ReplayStep implements StepFunction {
        private final JSONArray calls;
        private final String name;
        int next = 0;

        ReplayStep(JSONArray calls, String name) {
            this.calls = calls;
            this.name = name;
        }

        @Override
        public Result step(int[] tokens, float[][][] state) {
            assertTrue(next < calls.length(), name + ": more steps than Python ran (" + calls.length() + ")");
            try {
                return replay(tokens, state);
            } catch (JSONException e) {
                throw new AssertionError(name + ": malformed golden file", e);
            }
        }

        private Result replay(int[] tokens, float[][][] state) throws JSONException {
            JSONObject call = calls.getJSONObject(next);
            JSONArray expected = call.getJSONArray("tokens");
            int[] exp = new int[expected.length()];
            for (int i = 0; i < exp.length; i++) exp[i] = expected.getInt(i);
            assertArrayEquals(exp, tokens, name + ": tokens into step " + next);
            JSONArray shape = call.getJSONArray("shape");
            next++;
            return new Result(Golden.floats(call.getString("log_probs"), shape.getInt(0), shape.getInt(1)), state, null);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("constrainedDecodings")
    void javaConstrainedSearchReproducesPythonRuntime(Path file) throws Exception {
        javaSearchReproducesPythonRuntime(file);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("decodings")
    void javaSearchReproducesPythonRuntime(Path file) throws Exception {
        JSONObject g = Golden.json(file);
        Path model = Paths.get(g.getString("model"));
        ModelMetadata m = ModelMetadata.read(Files.readAllBytes(model), model.toString());
        int k = g.getInt("beam_size");
        float[][][] state = new float[m.stateTensors().size()][1][];
        for (int i = 0; i < state.length; i++) state[i][0] = new float[m.stateTensors().get(i).size()];
        ReplayStep step = new ReplayStep(g.getJSONArray("calls"), file.getFileName().toString());
        LogitsProcessor processors = LogitsProcessors.captioningDefaults(m, m.noRepeatNGramSize);
        JSONArray c = g.has("constraints") ? g.getJSONArray("constraints") : new JSONArray();
        int[][] constraints = new int[c.length()][];
        for (int i = 0; i < constraints.length; i++) {
            JSONArray ids = c.getJSONArray(i);
            constraints[i] = new int[ids.length()];
            for (int j = 0; j < ids.length(); j++) constraints[i][j] = ids.getInt(j);
        }
        List<Hypothesis> hyps = constraints.length > 0
                ? ConstrainedSearch.search(step, state, m.startId, m.endId, constraints, m.vocabulary.size(), k, m.maxLength, m.lengthPenalty, k, processors)
                : k == 1
                ? Search.greedy(step, state, m.startId, m.endId, m.maxLength, processors)
                : Search.beam(step, state, m.startId, m.endId, k, m.maxLength, m.lengthPenalty, k, processors);
        assertEquals(g.getJSONArray("calls").length(), step.next, "steps run");
        JSONArray expected = g.getJSONArray("hypotheses");
        assertEquals(expected.length(), hyps.size(), "hypotheses");
        for (int i = 0; i < hyps.size(); i++) {
            JSONObject e = expected.getJSONObject(i);
            JSONArray t = e.getJSONArray("tokens");
            int[] tokens = new int[t.length()];
            for (int j = 0; j < tokens.length; j++) tokens[j] = t.getInt(j);
            Hypothesis h = hyps.get(i);
            assertArrayEquals(tokens, h.tokens, "tokens of hypothesis " + i);
            assertEquals(e.getDouble("log_prob"), h.logProb, 1e-9, "log-probability of hypothesis " + i);
            assertEquals(e.getDouble("score"), h.score, 1e-9, "score of hypothesis " + i);
            assertEquals(e.getString("text"), m.detokenize(h.tokens), "text of hypothesis " + i);
            assertEquals(e.optBoolean("constraints_met", true), h.constraintsMet, "constraints met by hypothesis " + i);
        }
    }
}
