package edgecap.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.stream.Stream;
import org.json.JSONObject;

/** The golden files of {@code scripts/record_golden.py}: where they are, and how to read them. */
final class Golden {
    private Golden() {}

    /** {@code -Dedgecap.golden=DIR}, default {@code build/golden} (relative to android_demo/core). */
    static Path dir() {
        Path dir = Paths.get(System.getProperty("edgecap.golden", "build/golden"));
        if (!Files.isDirectory(dir))
            throw new IllegalStateException(dir.toAbsolutePath() + " is missing: record it first with `python scripts/record_golden.py --out " + dir + "` (from the repository root)");
        return dir;
    }

    static List<Path> files(String glob) throws IOException {
        List<Path> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir())) {
            s.filter(p -> p.getFileSystem().getPathMatcher("glob:" + glob).matches(p.getFileName())).sorted().forEach(out::add);
        }
        if (out.isEmpty()) throw new IllegalStateException("no " + glob + " in " + dir());
        return out;
    }

    static JSONObject json(Path p) throws Exception {
        return new JSONObject(new String(Files.readAllBytes(p), "UTF-8"));
    }

    static float[][] floats(String b64, int rows, int cols) {
        ByteBuffer b = ByteBuffer.wrap(Base64.getDecoder().decode(b64)).order(ByteOrder.LITTLE_ENDIAN);
        float[][] out = new float[rows][cols];
        for (float[] row : out) for (int i = 0; i < cols; i++) row[i] = b.getFloat();
        return out;
    }
}
