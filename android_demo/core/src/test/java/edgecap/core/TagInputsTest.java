package edgecap.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A tag-conditioned model's tag inputs: the Java core, given the tags the Python runtime's
 * tagger gave a photo, must fill the same ids and scores as the Python runtime did
 * ({@code scripts/record_golden.py} records them as {@code *.tags.json}).
 */
class TagInputsTest {
    static Stream<Path> recorded() throws Exception {
        List<Path> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(Golden.dir())) {
            s.filter(p -> p.getFileName().toString().endsWith(".tags.json")).sorted().forEach(out::add);
        }
        assumeTrue(!out.isEmpty(), "no built-in model has tag inputs");
        return out.stream();
    }

    static List<TagInputs.Tag> tags(JSONArray a) throws Exception {
        List<TagInputs.Tag> out = new ArrayList<>();
        for (int i = 0; i < a.length(); i++) {
            JSONObject t = a.getJSONObject(i);
            JSONArray f = t.getJSONArray("forms");
            List<String> forms = new ArrayList<>();
            for (int k = 0; k < f.length(); k++) forms.add(f.getString(k));
            out.add(new TagInputs.Tag(t.getString("word"), t.getDouble("score"), t.getString("source"), forms));
        }
        return out;
    }

    @ParameterizedTest
    @MethodSource("recorded")
    void theSameInputsAsPython(Path file) throws Exception {
        JSONObject g = Golden.json(file);
        ModelMetadata m = ModelMetadata.read(Files.readAllBytes(Paths.get(g.getString("model"))), g.getString("model"));
        TagInputs.Rows rows = TagInputs.rows(tags(g.getJSONArray("tags")), m);
        JSONArray ids = g.getJSONArray("ids"), scores = g.getJSONArray("scores");
        int[] expIds = new int[ids.length()];
        float[] expScores = new float[scores.length()];
        for (int i = 0; i < expIds.length; i++) {
            expIds[i] = ids.getInt(i);
            expScores[i] = (float) scores.getDouble(i);
        }
        assertArrayEquals(expIds, rows.ids, file.getFileName() + ": ids");
        assertArrayEquals(expScores, rows.scores, file.getFileName() + ": scores");
    }

    @Test
    void aModelWithoutTagsRefuses() throws Exception {
        Path model = Golden.files("*.beam1.json").get(0);
        String path = Golden.json(model).getString("model");
        ModelMetadata m = ModelMetadata.read(Files.readAllBytes(Paths.get(path)), path);
        assumeTrue(m.tagCount == 0, "the first golden model has tag inputs");
        assertThrows(IllegalArgumentException.class, () -> TagInputs.rows(new ArrayList<>(), m));
    }
}
