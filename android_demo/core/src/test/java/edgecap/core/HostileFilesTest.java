package edgecap.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.json.JSONObject;
import org.junit.jupiter.api.Test;

/**
 * The shared corpus of hostile model files ({@code scripts/make_hostile_models.py}), read under a
 * phone-sized heap ({@code test.sh} runs the tests with -Xmx256m): every file refused with a
 * {@link ModelFileException} of its class of reason, as the Python runtime refuses it
 * ({@code tests/test_hostile_models.py}); never an {@code OutOfMemoryError} or a
 * {@code StackOverflowError}.
 */
class HostileFilesTest {
    /** What this core's message says for each class of reason. */
    static final Map<String, Pattern> PATTERNS = new HashMap<>();

    static {
        PATTERNS.put("archive", Pattern.compile("damaged edgecap metadata \\(.*(declares|archive entries|inflates past)"));
        PATTERNS.put("json", Pattern.compile("malformed edgecap.json"));
        PATTERNS.put("digest", Pattern.compile("digest"));
        PATTERNS.put("fields", Pattern.compile("metadata fields? .*must"));
        PATTERNS.put("contract", Pattern.compile("tensor h: shape .* must have dimensions in"));
        PATTERNS.put("unverified", Pattern.compile("verification"));
    }

    @Test
    void everyHostileFileIsRefusedWithItsClassOfReason() throws Exception {
        Path dir = Paths.get(System.getProperty("edgecap.hostile", "build/hostile"));
        Path manifest = dir.resolve("manifest.json");
        if (!Files.isRegularFile(manifest))
            throw new IllegalStateException(manifest.toAbsolutePath() + " is missing: make it first with `python scripts/make_hostile_models.py --out " + dir + "` (from the repository root)");
        JSONObject files = new JSONObject(new String(Files.readAllBytes(manifest), StandardCharsets.UTF_8));
        Set<String> kinds = new HashSet<>();
        for (Iterator<String> it = files.keys(); it.hasNext(); ) {
            String name = it.next(), kind = files.getString(name);
            kinds.add(kind);
            Path path = dir.resolve(name);
            byte[] data = Files.readAllBytes(path);
            ModelFileException e = assertThrows(ModelFileException.class, () -> ModelMetadata.read(data, path.toString()), name);
            assertTrue(e.getMessage().startsWith(path.toString()), e.getMessage());
            assertTrue(PATTERNS.get(kind).matcher(e.getMessage()).find(), name + " (" + kind + "): " + e.getMessage());
        }
        assertEquals(PATTERNS.keySet(), kinds);  // every class has its files, and this core knows every class
    }
}
