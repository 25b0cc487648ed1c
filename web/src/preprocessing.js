/**
 * The encoder's (and the detector's) input from decoded pixels, exactly as
 * `edgecap.runtime.preprocessing.load_image` makes it: the whole photo resized to `size × size`
 * without keeping the aspect ratio, with Pillow's antialiased bilinear filter
 * (`Image.resize(..., BILINEAR)`: separable, horizontal pass then vertical, fixed-point
 * coefficients of 22 fractional bits, 8-bit rounding between the passes; Pillow's
 * `src/libImaging/Resample.c`). A port of the Java core's `Preprocessing.java`.
 *
 * The order of the passes is Pillow 13's (python-pillow/Pillow#9549): the vertical pass first
 * when the height shrinks by more than twice what the width does (`verticalFirst`), else the
 * horizontal pass first, as every Pillow before did. The order changes some pixels by a level.
 *
 * Decoding is the browser's: for the same decoded pixels (a PNG) the result is the Python
 * runtime's byte for byte; a JPEG may decode differently (Pillow decodes a large JPEG at a
 * reduced DCT scale first, `Image.draft`), which docs/web.md measures.
 * @module preprocessing
 */

const PRECISION_BITS = 32 - 8 - 2;

/** One separable pass of Pillow's resampling over one channel (`horizontal`: along rows). */
function pass(input, w, h, outSize, horizontal) {
  const inSize = horizontal ? w : h;
  const scale = inSize / outSize, filterscale = Math.max(scale, 1.0);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
    let ww = 0.0;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const k = new Float64Array(xmax);
    for (let x = 0; x < xmax; x++) {
      const v = Math.abs((x + xmin - center + 0.5) * ss);
      k[x] = v < 1.0 ? 1.0 - v : 0.0;
      ww += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0.0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  const outW = horizontal ? outSize : w, outH = horizontal ? h : outSize;
  const out = new Int32Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = horizontal ? x : y;
      const min = bounds[o * 2], n = bounds[o * 2 + 1];
      let acc = 1 << (PRECISION_BITS - 1);
      for (let i = 0; i < n; i++) {
        const src = horizontal ? input[y * w + min + i] : input[(min + i) * w + x];
        acc += src * kk[o * ksize + i];
      }
      out[y * outW + x] = Math.min(255, Math.max(0, acc >> PRECISION_BITS));
    }
  }
  return out;
}

/**
 * Whether Pillow 13 runs the vertical pass first: the height shrinks, and by more than twice
 * what the width does (measured against Pillow 13.0 on 598 random sizes: no exception).
 */
export function verticalFirst(width, height, outWidth, outHeight) {
  return height > outHeight && height - outHeight > 2 * (width - outWidth);
}

/**
 * Resize RGBA or RGB pixels (a canvas's `ImageData.data`; alpha ignored) to the model input.
 * @param {Uint8Array|Uint8ClampedArray} pixels `width × height × channels`, row-major
 * @param {number} width
 * @param {number} height
 * @param {number} size output side in pixels (the model's `imageSize`)
 * @param {number} channels 4 (RGBA) or 3 (RGB)
 * @returns {Uint8Array} `uint8 (size, size, 3)` RGB, row-major, as `encode` takes it
 * @throws {RangeError} sizes that do not match the array, or < 1
 */
export function resize(pixels, width, height, size, channels = 4) {
  if (!(width >= 1 && height >= 1 && size >= 1)) throw new RangeError(`sizes must be >= 1, got ${width}x${height} -> ${size}`);
  if (pixels.length !== width * height * channels) {
    throw new RangeError(`expected ${width * height * channels} values (${width}x${height}x${channels}), got ${pixels.length}`);
  }
  const out = new Uint8Array(size * size * 3);
  for (let c = 0; c < 3; c++) {
    let p = new Int32Array(width * height);
    for (let i = 0; i < width * height; i++) p[i] = pixels[i * channels + c];
    if (verticalFirst(width, height, size, size)) {
      p = pass(p, width, height, size, false);
      if (width !== size) p = pass(p, width, size, size, true);
    } else {
      let w = width;
      if (w !== size) {
        p = pass(p, w, height, size, true);
        w = size;
      }
      if (height !== size) p = pass(p, w, height, size, false);
    }
    for (let i = 0; i < size * size; i++) out[i * 3 + c] = p[i];
  }
  return out;
}
