package edgecap.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The real built-in model files: metadata read as the Python runtime reads it; damage refused. */
class ModelMetadataTest {
    static Set<Path> models() throws Exception {
        Set<Path> out = new LinkedHashSet<>();
        for (Path g : Golden.files("*.beam1.json")) out.add(Paths.get(Golden.json(g).getString("model")));
        return out;
    }

    @Test
    void readsEveryBuiltInModel() throws Exception {
        for (Path p : models()) {
            byte[] data = Files.readAllBytes(p);
            ModelMetadata m = ModelMetadata.read(data, p.toString());
            assertEquals(224, m.imageSize);
            assertEquals("<end>", m.vocabulary.get(m.endId));
            assertTrue(m.stateTensors().size() >= 1 && m.flatbufferSize > 0 && m.flatbufferSize < data.length);
            assertEquals(m.attentionOutput == null, m.attentionSize == 0);
            if (m.architecture.equals("show_attend_tell")) assertTrue(m.attentionSize == 49 && m.attentionOverGrid);  // alpha over the 7×7 grid
            assertEquals(m.itemIdsOutput == null, m.itemCount == 0);
            if (m.architecture.equals("semantic_attention")) assertTrue(m.itemCount > 0 && m.attentionSize == 2 * m.itemCount && !m.attentionOverGrid);  // α and β over the attributes
        }
    }

    @Test
    void flippedWeightsAndOtherFilesAreRefused() throws Exception {
        Path p = models().iterator().next();
        byte[] data = Files.readAllBytes(p);
        byte[] flipped = data.clone();
        flipped[data.length / 3] ^= 0x10;
        ModelFileException e = assertThrows(ModelFileException.class, () -> ModelMetadata.read(flipped, "flipped.tflite"));
        assertTrue(e.getMessage().startsWith("flipped.tflite: ") && e.getMessage().contains("SHA-256"), e.getMessage());
        int end = ModelMetadata.read(data, "x").flatbufferSize;
        e = assertThrows(ModelFileException.class, () -> ModelMetadata.read(Arrays.copyOf(data, end), "bare.tflite"));
        assertTrue(e.getMessage().contains("no edgecap metadata"), e.getMessage());
        assertThrows(ModelFileException.class, () -> ModelMetadata.read("not a model".getBytes("UTF-8"), "text.tflite"));
    }
}
