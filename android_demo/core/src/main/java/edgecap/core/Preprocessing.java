package edgecap.core;

/**
 * The encoder's input from decoded RGB pixels, exactly as {@code edgecap.runtime.preprocessing.load_image}
 * makes it: the whole photo resized to {@code size × size} without keeping the aspect ratio, with
 * Pillow's antialiased bilinear filter ({@code Image.resize(..., BILINEAR)}: separable, horizontal
 * pass then vertical, fixed-point coefficients of 22 fractional bits, 8-bit rounding between the
 * passes; Pillow's {@code src/libImaging/Resample.c}). The passes run in Pillow 13's order
 * (python-pillow/Pillow#9549): vertical first when the height shrinks by more than twice what the
 * width does ({@link #verticalFirst}), else horizontal first. Normalisation is inside the model
 * graph: its input is {@code uint8}.
 *
 * <p>Decoding is the platform's (Android's {@code BitmapFactory}, {@code javax.imageio}): JPEG
 * decoders may differ from libjpeg-turbo by a level here and there, so pixels are identical to
 * the Python runtime's for the same decoded pixels (e.g. a PNG), not always for a JPEG. EXIF
 * orientation is the caller's to apply.
 */
public final class Preprocessing {
    private static final int PRECISION_BITS = 32 - 8 - 2;

    private Preprocessing() {}

    /**
     * Resize packed ARGB pixels (Android's {@code Bitmap.getPixels}, {@code BufferedImage.getRGB};
     * alpha ignored) to the model input.
     *
     * @param argb {@code width × height} pixels, row-major
     * @param size output side in pixels (the model's {@code image_size})
     * @return {@code uint8 (size, size, 3)} RGB, row-major, as the {@code encode} signature takes it
     * @throws IllegalArgumentException sizes that do not match the array, or &lt; 1
     */
    public static byte[] resize(int[] argb, int width, int height, int size) {
        if (width < 1 || height < 1 || size < 1) throw new IllegalArgumentException("sizes must be >= 1, got " + width + "x" + height + " -> " + size);
        if (argb.length != width * height) throw new IllegalArgumentException("expected " + width * height + " pixels, got " + argb.length);
        int[][] planes = new int[3][width * height];
        for (int i = 0; i < argb.length; i++) {
            planes[0][i] = (argb[i] >> 16) & 0xff;
            planes[1][i] = (argb[i] >> 8) & 0xff;
            planes[2][i] = argb[i] & 0xff;
        }
        byte[] out = new byte[size * size * 3];
        for (int c = 0; c < 3; c++) {
            int[] p = planes[c];
            if (verticalFirst(width, height, size, size)) {
                p = pass(p, width, height, size, false);
                if (width != size) p = pass(p, width, size, size, true);
            } else {
                int w = width;
                if (w != size) {
                    p = pass(p, w, height, size, true);
                    w = size;
                }
                if (height != size) p = pass(p, w, height, size, false);
            }
            for (int i = 0; i < size * size; i++) out[i * 3 + c] = (byte) p[i];
        }
        return out;
    }

    /** Whether Pillow 13 runs the vertical pass first: the height shrinks, and by more than twice what the width does. */
    static boolean verticalFirst(int width, int height, int outWidth, int outHeight) {
        return height > outHeight && height - outHeight > 2 * (width - outWidth);
    }

    /** One separable pass of Pillow's resampling over one channel ({@code horizontal}: along rows). */
    private static int[] pass(int[] in, int w, int h, int outSize, boolean horizontal) {
        int inSize = horizontal ? w : h;
        double scale = (double) inSize / outSize, filterscale = Math.max(scale, 1.0);
        double support = 1.0 * filterscale;  // bilinear support
        int ksize = (int) Math.ceil(support) * 2 + 1;
        int[] bounds = new int[outSize * 2];
        int[] kk = new int[outSize * ksize];
        for (int xx = 0; xx < outSize; xx++) {
            double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
            int xmin = Math.max((int) (center - support + 0.5), 0);
            int xmax = Math.min((int) (center + support + 0.5), inSize) - xmin;
            double[] k = new double[xmax];
            for (int x = 0; x < xmax; x++) {
                double v = Math.abs((x + xmin - center + 0.5) * ss);
                k[x] = v < 1.0 ? 1.0 - v : 0.0;
                ww += k[x];
            }
            for (int x = 0; x < xmax; x++) {
                double v = ww != 0.0 ? k[x] / ww : k[x];
                kk[xx * ksize + x] = v < 0 ? (int) (-0.5 + v * (1 << PRECISION_BITS)) : (int) (0.5 + v * (1 << PRECISION_BITS));
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        int outW = horizontal ? outSize : w, outH = horizontal ? h : outSize;
        int[] out = new int[outW * outH];
        for (int y = 0; y < outH; y++) {
            for (int x = 0; x < outW; x++) {
                int o = horizontal ? x : y;
                int min = bounds[o * 2], n = bounds[o * 2 + 1];
                int acc = 1 << (PRECISION_BITS - 1);
                for (int i = 0; i < n; i++) {
                    int src = horizontal ? in[y * w + min + i] : in[(min + i) * w + x];
                    acc += src * kk[o * ksize + i];
                }
                out[y * outW + x] = Math.min(255, Math.max(0, acc >> PRECISION_BITS));
            }
        }
        return out;
    }
}
