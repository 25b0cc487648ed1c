/**
 * `Captioner`: the default pipeline of `edgecap caption` in the browser, over LiteRT.js (WASM).
 *
 * Loads a web file (`edgecap/web/files.py`: the released file with `decode_step`'s batch fixed to
 * K), checks its metadata and digest, and runs what `edgecap.runtime.Captioner.caption` runs: the
 * detector's tags, `encode`, the tag inputs (a tag-conditioned model), rule 7's penalty, the free
 * search (greedy for beam size 1, else beam search), and the constrained search over the tags the
 * rules choose (`guidance.js`). The search's rows are run K at a time (`webStep`).
 *
 * ```js
 * import { loadLiteRt } from '@litertjs/core';
 * await loadLiteRt('/node_modules/@litertjs/core/wasm/');
 * const captioner = await Captioner.fromManifest('/models/manifest.json');
 * const result = await captioner.caption(fileInput.files[0]); // a File, an <img>, a <video>, ...
 * console.log(result.caption.text);
 * ```
 * @module captioner
 */
import { Tensor, loadAndCompile } from '@litertjs/core';

import { constrainedBeam } from './constrained.js';
import { chooseConstraints, keepConstrained, perWord, untaggedWords } from './guidance.js';
import { ModelFileError, readMetadata } from './metadata.js';
import { resize } from './preprocessing.js';
import { captioningDefaults, processorList } from './processors.js';
import { beam, greedy } from './search.js';
import { detectorTags, readTagWords, tagInputRows } from './tags.js';

export const TOKENS = 'tokens', LOG_PROBS = 'log_probs', IMAGE = 'image';
/** Photos with more pixels once decoded are refused (`edgecap.runtime.preprocessing.DEFAULT_MAX_PIXELS`). */
export const MAX_PIXELS = 40_000_000;
/** The manifest format this page reads (`edgecap/web/files.py` MANIFEST_VERSION). */
export const MANIFEST_VERSION = 1;

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new ModelFileError(`${url}: HTTP ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function fetchJson(url) {
  const bytes = await fetchBytes(url);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ModelFileError(`${url}: not JSON (${e.message})`);
  }
}

function toArray(tensor) {
  return tensor.toTypedArray().slice();
}

function deleteAll(record) {
  for (const t of Object.values(record)) t.delete();
}

/** A photo's decoded pixels: `{data, width, height, channels}` (RGBA from a canvas, or RGB). */
export function pixelsOf(data, width, height, channels = 4) {
  return { data, width, height, channels };
}

/**
 * Decoded pixels of what a page has: a `Blob`/`File` (decoded with EXIF orientation and without
 * colour-profile conversion, as Pillow decodes), an `ImageData`, or anything a canvas draws (an
 * `ImageBitmap`, `<img>`, `<canvas>`, `<video>` frame). Transparency is composited on white, as
 * the Python runtime does.
 * @param {number} maxPixels refuse a photo with more pixels once decoded (Python's `DEFAULT_MAX_PIXELS`)
 * @returns {Promise<{data: Uint8ClampedArray, width: number, height: number, channels: number}>}
 * @throws {TypeError} a Blob that is not an image the browser decodes; {RangeError} too many pixels
 */
export async function pixelsFrom(source, maxPixels = MAX_PIXELS) {
  if (typeof ImageData !== 'undefined' && source instanceof ImageData) return pixelsOf(source.data, source.width, source.height, 4);
  let image = source;
  const name = source.name ?? 'the photo';
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    try {
      image = await createImageBitmap(source, { imageOrientation: 'from-image', colorSpaceConversion: 'none' });
    } catch {
      throw new TypeError(`${name}: not an image this browser can decode`);
    }
  }
  const width = image.naturalWidth ?? image.videoWidth ?? image.width;
  const height = image.naturalHeight ?? image.videoHeight ?? image.height;
  if (width * height > maxPixels) {
    throw new RangeError(`${name}: ${width}x${height} pixels is over the limit of ${maxPixels} (as edgecap caption's --max-pixels)`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(image, 0, 0, width, height);
  return pixelsOf(ctx.getImageData(0, 0, width, height).data, width, height, 4);
}

/**
 * The built-in COCO detector (TFLite_Detection_PostProcess outputs) with its word mapping.
 */
export class Tagger {
  constructor(model, words, name, imageSize, maxResults = 5) {
    this.model = model;
    this.words = words;
    this.name = name;
    this.imageSize = imageSize;
    this.maxResults = maxResults;
  }

  /**
   * @param {string} modelUrl, wordsUrl, labelsUrl
   * @param {string} name the tagger's name (each tag's `source`)
   * @throws {ModelFileError} a file that cannot be fetched, read or compiled, or a mapping that does not match its labels
   */
  static async fromUrls(modelUrl, wordsUrl, labelsUrl, name, options = {}) {
    const [bytes, raw, labels] = await Promise.all([fetchBytes(modelUrl), fetchJson(wordsUrl), fetchBytes(labelsUrl)]);
    const words = readTagWords(raw, new TextDecoder().decode(labels), wordsUrl);
    let model;
    try {
      model = await loadAndCompile(bytes, { accelerator: 'wasm', ...options.compile });
    } catch (e) {
      throw new ModelFileError(`${modelUrl}: LiteRT.js cannot run this tagger (${e.message ?? e})`);
    }
    const input = model.getInputDetails()[0];
    return new Tagger(model, words, name, input.shape[1]);
  }

  /**
   * The tags of one photo, best first.
   * @param {Uint8Array} pixels `uint8 (S, S, 3)` at the detector's input size
   * @returns {Promise<import('./tags.js').Tag[]>}
   */
  async tag(pixels) {
    const input = new Tensor(pixels, [1, this.imageSize, this.imageSize, 3]);
    let outputs;
    try {
      outputs = await this.model.run([input]);
    } finally {
      input.delete();
    }
    const [boxes, classes, scores, count] = outputs.map(toArray);
    outputs.forEach((t) => t.delete());
    return detectorTags({ boxes, classes, scores, count: count[0] }, this.words, this.name, this.maxResults);
  }
}

/**
 * One step of `decode_step` over any number of rows, run `batch` rows at a time (the web file's
 * static batch; the last call is padded by repeating its last row). Memory tensors are made once
 * per photo and shared by every call.
 */
function webStep(model, m, memory, batch) {
  const states = m.stateTensors();
  const attention = m.attention?.output;
  return async (tokens, state) => {
    const R = tokens.length;
    const logProbs = [], newState = states.map(() => []), alpha = attention ? [] : null;
    for (let start = 0; start < R; start += batch) {
      const rows = Math.min(batch, R - start);
      const pick = (r) => start + Math.min(r, rows - 1);
      const t = new Int32Array(batch);
      for (let r = 0; r < batch; r++) t[r] = tokens[pick(r)];
      const inputs = { [TOKENS]: new Tensor(t, [batch]) };
      states.forEach((decl, i) => {
        const flat = new Float32Array(batch * decl.size);
        for (let r = 0; r < batch; r++) flat.set(state[i][pick(r)], r * decl.size);
        inputs[decl.name] = new Tensor(flat, [batch, ...decl.shape]);
      });
      let out;
      try {
        out = await model.run('decode_step', { ...inputs, ...memory });
      } finally {
        deleteAll(inputs);
      }
      const lp = toArray(out[LOG_PROBS]);
      const V = lp.length / batch;
      for (let r = 0; r < rows; r++) logProbs.push(lp.slice(r * V, (r + 1) * V));
      states.forEach((decl, i) => {
        const s = toArray(out[decl.name]);
        for (let r = 0; r < rows; r++) newState[i].push(s.subarray(r * decl.size, (r + 1) * decl.size));
      });
      if (alpha) {
        const a = toArray(out[attention]);
        const L = a.length / batch;
        for (let r = 0; r < rows; r++) alpha.push(a.subarray(r * L, (r + 1) * L));
      }
      deleteAll(out);
    }
    return { logProbs, state: newState, attention: alpha };
  };
}

/**
 * A captioner and its taggers: `caption(photo)` runs the default pipeline.
 */
export class Captioner {
  /**
   * @param {object} model LiteRT.js CompiledModel of the web file
   * @param {import('./metadata.js').ModelMetadata} metadata
   * @param {Tagger[]} taggers
   * @param {object} pipeline the manifest's `pipeline` (rules and synonyms)
   * @param {object} options `{numResults = 3, beamSize, constrain = true}`
   */
  constructor(model, metadata, taggers, pipeline, options = {}) {
    this.model = model;
    this.metadata = metadata;
    this.taggers = taggers;
    this.pipeline = pipeline;
    this.options = { numResults: 3, constrain: true, ...options };
    this.batch = metadata.web.step_batch;
    this.suppress = captioningDefaults(metadata);
    this._queue = Promise.resolve();
  }

  /**
   * Load a web file and check it (metadata, digest, a static step batch).
   * @param {string} url the web file
   * @param {object} options `{taggers: Tagger[], pipeline, compile, ...Captioner options}`
   * @throws {ModelFileError} a file that cannot be fetched, is damaged, is not an edgecap web file, or that LiteRT.js refuses
   */
  static async fromUrl(url, options = {}) {
    const bytes = await fetchBytes(url);
    const metadata = await readMetadata(bytes, url);
    if (!metadata.web || !Number.isInteger(metadata.web.step_batch)) {
      throw new ModelFileError(`${url}: not a web file (its decode_step batch is dynamic, which LiteRT.js refuses): make it with \`edgecap demo --build-only\``);
    }
    let model;
    try {
      model = await loadAndCompile(bytes, { accelerator: 'wasm', ...options.compile });
    } catch (e) {
      throw new ModelFileError(`${url}: LiteRT.js cannot run this model (${e.message ?? e})`);
    }
    const { taggers = [], pipeline = null, compile, ...rest } = options;
    return new Captioner(model, metadata, taggers, pipeline, rest);
  }

  /**
   * The manifest's model (default: its default) with the default pipeline's taggers and rules.
   * @param {string} manifestUrl e.g. `/models/manifest.json`
   * @param {string|null} name a captioner preset name, or null for the manifest's default
   * @throws {ModelFileError} an unreadable manifest, an unknown model, or a file refused as in `fromUrl`
   */
  static async fromManifest(manifestUrl, name = null, options = {}) {
    const manifest = await fetchJson(manifestUrl);
    if (manifest.format !== MANIFEST_VERSION) {
      throw new ModelFileError(`${manifestUrl}: manifest format ${manifest.format}, this page reads ${MANIFEST_VERSION}: rebuild the web files`);
    }
    const entry = manifest.models.find((e) => e.name === (name ?? manifest.default));
    if (!entry) throw new ModelFileError(`${manifestUrl}: no model ${JSON.stringify(name)} (has ${manifest.models.map((e) => e.name)})`);
    const base = new URL(manifestUrl, globalThis.location?.href);
    const at = (f, sha256) => {
      const u = new URL(f, base);
      if (sha256) u.searchParams.set('sha256', sha256.slice(0, 16)); // a new release is a new URL (sw.js caches by URL)
      return u.href;
    };
    const taggers = await Promise.all(
      manifest.taggers
        .filter((t) => manifest.pipeline.taggers.includes(t.name))
        .map((t) => Tagger.fromUrls(at(t.file, t.sha256), at(t.words), at(t.labels), t.name, options)),
    );
    const captioner = await Captioner.fromUrl(at(entry.file, entry.sha256), { ...options, taggers, pipeline: manifest.pipeline });
    captioner.entry = entry;
    return captioner;
  }

  /** `encode`: the photo's state (one row per tensor) and memory tensors (LiteRT.js Tensors, to delete). */
  async encode(pixels) {
    const m = this.metadata;
    const image = new Tensor(pixels, [1, m.imageSize, m.imageSize, 3]);
    let out;
    try {
      out = await this.model.run('encode', { [IMAGE]: image });
    } finally {
      image.delete();
    }
    const state = m.stateTensors().map((t) => [toArray(out[t.name])]);
    const memory = {};
    for (const t of m.encodedMemory()) memory[t.name] = out[t.name];
    for (const [k, t] of Object.entries(out)) if (!(k in memory)) t.delete();
    return { state, memory };
  }

  /** `decode_step` with one photo's memory bound, any number of rows (as Python's `Captioner.step_function`). */
  stepFunction(memory) {
    return webStep(this.model, this.metadata, memory, this.batch);
  }

  /** Greedy, beam, or constrained beam search from one photo's state, as the Python runtime's `Captioner.search`. */
  async search(state, memory, constraints = null, processors = null) {
    const m = this.metadata;
    const k = this.options.beamSize ?? m.beamSize;
    const n = Math.min(this.options.numResults, k);
    const suppress = processors ? processorList([this.suppress, processors]) : this.suppress;
    const step = this.stepFunction(memory);
    if (constraints && constraints.length) {
      return constrainedBeam(step, state, m.startId, m.endId, constraints, m.vocabulary.length, k, m.maxLength, m.lengthPenalty, n, suppress);
    }
    if (k === 1) return greedy(step, state, m.startId, m.endId, m.maxLength, suppress);
    return beam(step, state, m.startId, m.endId, k, m.maxLength, m.lengthPenalty, n, suppress);
  }

  /**
   * Caption one photo with the default pipeline. Calls are queued: one Captioner is safe to share.
   * @param {Blob|ImageBitmap|HTMLImageElement|HTMLCanvasElement|HTMLVideoElement|ImageData|{data: Uint8Array|Uint8ClampedArray, width: number, height: number, channels?: number}|{pixels: Object<string, Uint8Array>}} photo
   *   a photo (`pixelsFrom`), decoded pixels (resized here for each model), or `{pixels: {captioner:
   *   Uint8Array, <tagger name>: Uint8Array}}` already at each model's input size (the Python
   *   runtime's own pixels, for an exact comparison)
   * @returns {Promise<object>} `{caption, captions, tags, constraints, constraintsMet, timings}`;
   *   a caption is `{text, words, tokens, logProb, score, attention}` (attention: per word, the
   *   step's map, `Float32Array` of `metadata.attention.size`)
   */
  caption(photo) {
    const run = this._queue.then(async () => this._caption(photo.pixels || photo.data ? photo : await pixelsFrom(photo)));
    this._queue = run.catch(() => {});
    return run;
  }

  _pixelsFor(photo, key, size) {
    if (photo.pixels) {
      const p = photo.pixels[key];
      if (!p || p.length !== size * size * 3) throw new RangeError(`pixels for ${key}: expected ${size * size * 3} values (${size}x${size}x3), got ${p?.length}`);
      return p;
    }
    return resize(photo.data, photo.width, photo.height, size, photo.channels ?? 4);
  }

  async _caption(photo) {
    const m = this.metadata;
    const rules = this.pipeline?.constraints;
    const t0 = performance.now();
    const tagging = Promise.all(this.taggers.map((t) => t.tag(this._pixelsFor(photo, t.name, t.imageSize))));
    const pixels = this._pixelsFor(photo, 'captioner', m.imageSize);
    const t1 = performance.now();
    const { state, memory } = await this.encode(pixels);
    const t2 = performance.now();
    let guard = null;
    try {
      const tags = mergeTags((await tagging).flat());
      const t3 = performance.now();
      if (m.tags) {
        const rows = tagInputRows(tags, m);
        memory[m.tags.ids] = new Tensor(rows.ids, [1, m.tags.size]);
        memory[m.tags.scores] = new Tensor(rows.scores, [1, m.tags.size]);
        if (rules) guard = untaggedWords(tags, m.wordIndex(), rules, this.pipeline.synonyms);
      }
      const free = await this.search(state, memory, null, guard);
      const t4 = performance.now();
      let hyps = free, constraints = [], met = true;
      if (this.options.constrain && rules && tags.length && free.length) {
        const chosen = chooseConstraints(tags, m.wordIndex(), free[0].tokens, rules, perWord(free[0]));
        if (chosen.length) {
          const constrained = await this.search(state, memory, chosen.map(([, ids]) => ids), guard);
          if (constrained.length && keepConstrained(free[0], constrained[0], rules.margin)) {
            hyps = constrained;
            constraints = chosen.map(([t]) => t.word);
          } else {
            met = false;
          }
        }
      }
      const t5 = performance.now();
      const captions = hyps.map((h) => this._toCaption(h));
      return {
        caption: captions[0],
        captions,
        tags,
        constraints,
        constraintsMet: met,
        timings: { preprocess: t1 - t0, encode: t2 - t1, tag_wait: t3 - t2, search: t4 - t3, constrained: t5 - t4, total: t5 - t0 },
      };
    } finally {
      deleteAll(memory);
    }
  }

  /** Free the models' WASM memory (LiteRT.js does not collect it); the Captioner is unusable after. */
  close() {
    this.model.delete();
    for (const t of this.taggers) t.model.delete();
  }

  _toCaption(h) {
    const words = h.tokens.map((t) => this.metadata.vocabulary[t]);
    return { text: words.join(' '), words, tokens: h.tokens, logProb: h.logProb, score: h.score, attention: h.attention ?? [] };
  }
}

/** Every tagger's tags, a word named twice keeping its best score, best first (Python's `Captioner.tag`). */
export function mergeTags(tags) {
  const best = new Map();
  for (const t of tags) if (!best.has(t.word) || t.score > best.get(t.word).score) best.set(t.word, t);
  return [...best.values()].sort((a, b) => (a.score !== b.score ? b.score - a.score : a.word < b.word ? -1 : a.word > b.word ? 1 : 0));
}
