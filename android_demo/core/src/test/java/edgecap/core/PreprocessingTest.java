package edgecap.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.Base64;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.json.JSONObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The Java resize gives exactly the encoder input Pillow gives the Python runtime. */
class PreprocessingTest {
    static Stream<Path> photos() throws Exception {
        return Golden.files("*.resize*.json").stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("photos")
    void resizeMatchesPillowBilinear(Path file) throws Exception {
        JSONObject g = Golden.json(file);
        BufferedImage img = ImageIO.read(file.resolveSibling(g.getString("png")).toFile());
        int w = img.getWidth(), h = img.getHeight();
        byte[] rgb = Preprocessing.resize(img.getRGB(0, 0, w, h, null, 0, w), w, h, g.getInt("size"));
        byte[] expected = Base64.getDecoder().decode(g.getString("rgb"));
        assertEquals(expected.length, rgb.length);
        assertArrayEquals(expected, rgb, file + ": pixels differ from Pillow's");
    }

    @Test
    void sameSizeIsUnchangedAndBadSizesAreRefused() {
        int[] argb = {0xff102030, 0xff405060, 0xff708090, 0xffa0b0c0};
        assertArrayEquals(new byte[] {0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, (byte) 0x80, (byte) 0x90, (byte) 0xa0, (byte) 0xb0, (byte) 0xc0}, Preprocessing.resize(argb, 2, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> Preprocessing.resize(argb, 3, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> Preprocessing.resize(argb, 2, 2, 0));
    }
}
