/**
 * The edgecap metadata packed in a `.tflite` file, read as `edgecap/runtime/metadata.py` (and the
 * Java core's `ModelMetadata.java`) reads it: the flatbuffer is followed by a zip archive holding
 * `edgecap.json`; the flatbuffer's SHA-256 digest (format 3) is checked, and a file not marked
 * verified is refused. The archive is read with fflate; the same bounds as the other runtimes are
 * checked before anything large is inflated.
 * @module metadata
 */
import { unzipSync } from 'fflate';

/** The newest metadata format this core reads. */
export const FORMAT_VERSION = 3;
export const MAX_ENTRY_BYTES = 64 << 20, MAX_ENTRIES = 16, MAX_VOCABULARY = 1_000_000, MAX_DEPTH = 64;
/** Bounds of a declared tensor's row (`edgecap/runtime/contract.py`). */
export const MAX_DIMENSION = 65536, MAX_VALUES = 1 << 24;

/** A model file is missing, damaged, not an edgecap model, or one this core cannot run; the message names the file. */
export class ModelFileError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ModelFileError';
  }
}

function show(v) {
  const text = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return text.length > 80 ? text.slice(0, 80) : text;
}

function field(source, key, expected, got) {
  return new ModelFileError(`${source}: metadata field '${key}' must be ${expected}, got ${show(got)}`);
}

/** An integer field in lo..hi: a fraction, a string or an out-of-range number is refused, never cast. */
function intIn(j, key, lo, hi, source) {
  const v = j[key];
  if (Number.isInteger(v) && v >= lo && v <= hi) return v;
  throw field(source, key, `an integer in ${lo}..${hi}`, v);
}

/** Nesting depth of JSON text (brackets outside strings), so a deep document is refused before it is parsed. */
export function depth(json) {
  let d = 0, most = 0, inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') most = Math.max(most, ++d);
    else if (c === '}' || c === ']') d--;
  }
  return most;
}

/** Where the appended zip archive starts: its end record says how far before it the central directory begins. */
export function archiveStart(data, source) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let p = data.length - 22; p >= Math.max(0, data.length - 22 - 65535); p--) {
    if (view.getUint32(p, true) !== 0x06054b50) continue;
    const cdSize = view.getUint32(p + 12, true), cdOffset = view.getUint32(p + 16, true);
    const start = p - cdSize - cdOffset;
    if (start >= 8 && start < p) return start;
  }
  throw new ModelFileError(`${source}: no edgecap metadata archive after the flatbuffer: re-export the model with edgecap`);
}

/** Hex SHA-256 of `bytes` (WebCrypto: the browser's and Node's). */
export async function sha256Hex(bytes) {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function readJson(data, start, source) {
  let entries = 0;
  let files;
  try {
    files = unzipSync(data.subarray(start), {
      filter(file) {
        if (++entries > MAX_ENTRIES) {
          throw new ModelFileError(`${source}: damaged edgecap metadata (more than ${MAX_ENTRIES} archive entries)`);
        }
        if (file.name !== 'edgecap.json') return false;
        if (file.originalSize > MAX_ENTRY_BYTES || file.size > MAX_ENTRY_BYTES) {
          throw new ModelFileError(`${source}: damaged edgecap metadata (edgecap.json declares ${file.originalSize} bytes, at most ${MAX_ENTRY_BYTES})`);
        }
        return true;
      },
    });
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(`${source}: damaged metadata archive (${e.message})`);
  }
  const bytes = files['edgecap.json'];
  if (!bytes) throw new ModelFileError(`${source}: the metadata archive has no edgecap.json: not an edgecap model`);
  if (bytes.length > MAX_ENTRY_BYTES) {
    throw new ModelFileError(`${source}: damaged edgecap metadata (edgecap.json inflates past ${MAX_ENTRY_BYTES} bytes)`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw new ModelFileError(`${source}: malformed edgecap.json (not UTF-8)`);
  }
}

/**
 * A model file's edgecap metadata.
 * Fields as the Java core's `ModelMetadata`: `name, version, architecture, quantization, task,
 * vocabulary, imageSize, padId, startId, endId, unkId, maxLength, beamSize, lengthPenalty,
 * noRepeatNGramSize, formatVersion, tensors` (`{name, shape, role, perBeam, size}` in contract
 * order), `attention` (`{output, size, overGrid}` or null), `items` (`{ids, scores, size}` or
 * null), `tags` (`{ids, scores, size, minScore, tagger}` or null), `web` (`{step_batch,
 * source_sha256}` for a web file, else null), `flatbufferSize`.
 */
export class ModelMetadata {
  constructor(j, flatbufferSize, source) {
    const str = (k, dflt) => {
      const v = j[k] ?? dflt;
      if (typeof v !== 'string') throw field(source, k, 'a string', v);
      return v;
    };
    this.name = str('name');
    this.version = str('version');
    this.architecture = str('architecture');
    this.quantization = str('quantization');
    this.task = str('task', 'captioning');
    if (this.task !== 'captioning') throw new ModelFileError(`${source}: a ${this.task} model (${this.architecture}), not a captioner`);
    const words = j.vocabulary;
    if (!Array.isArray(words) || words.length < 4 || words.length > MAX_VOCABULARY) {
      throw field(source, 'vocabulary', `a list of 4..${MAX_VOCABULARY} words`, Array.isArray(words) ? `${words.length} words` : words);
    }
    words.forEach((w, i) => {
      if (typeof w !== 'string' || !w || /\s/u.test(w)) {
        throw new ModelFileError(`${source}: metadata field 'vocabulary' must hold non-empty words without spaces or line breaks (word ${i})`);
      }
    });
    this.vocabulary = Object.freeze(words.slice());
    const V = words.length - 1;
    this.imageSize = intIn(j, 'image_size', 8, 4096, source);
    this.padId = intIn(j, 'pad_id', 0, V, source);
    this.startId = intIn(j, 'start_id', 0, V, source);
    this.endId = intIn(j, 'end_id', 0, V, source);
    this.unkId = intIn(j, 'unk_id', 0, V, source);
    this.maxLength = intIn(j, 'max_length', 1, 1000, source);
    this.beamSize = intIn(j, 'beam_size', 1, 100, source);
    const lp = j.length_penalty;
    if (!(typeof lp === 'number' && lp >= -10 && lp <= 10)) throw field(source, 'length_penalty', 'a number in -10..10', lp);
    this.lengthPenalty = lp;
    this.noRepeatNGramSize = intIn(j, 'no_repeat_ngram_size', 0, 100, source);
    if (this.noRepeatNGramSize === 1) throw field(source, 'no_repeat_ngram_size', '0 or an integer in 2..100', 1);
    this.formatVersion = intIn(j, 'format_version', 0, Number.MAX_SAFE_INTEGER, source);
    const specials = [this.padId, this.startId, this.endId, this.unkId];
    if (new Set(specials).size < 4) {
      throw new ModelFileError(`${source}: metadata fields pad_id, start_id, end_id, unk_id must be four different words, got [${specials.join(', ')}]`);
    }
    const contract = j.contract;
    if (contract === undefined || contract === null) {
      throw new ModelFileError(`${source}: metadata format ${this.formatVersion} has no step contract; re-export the model with a current edgecap`);
    }
    if (typeof contract !== 'object' || !Array.isArray(contract.tensors)) throw field(source, 'contract', 'an object with a list of tensors', contract);
    this.tensors = Object.freeze(contract.tensors.map((t) => {
      if (typeof t !== 'object' || t === null || typeof t.name !== 'string') throw field(source, 'contract', 'tensors with names', t);
      if (!Array.isArray(t.shape)) throw new ModelFileError(`${source}: tensor ${t.name}: shape ${show(t.shape)} must be a list`);
      let values = 1;
      for (const d of t.shape) {
        const v = Number.isInteger(d) ? d : -1;
        values *= v;
        if (v < 1 || v > MAX_DIMENSION || values > MAX_VALUES) {
          throw new ModelFileError(`${source}: tensor ${t.name}: shape ${JSON.stringify(t.shape)} must have dimensions in 1..${MAX_DIMENSION} and at most ${MAX_VALUES} values`);
        }
      }
      if (t.role !== 'state' && t.role !== 'memory') throw new ModelFileError(`${source}: tensor ${t.name} has role ${t.role} (state or memory expected)`);
      return Object.freeze({ name: t.name, shape: t.shape.slice(), role: t.role, perBeam: t.per_beam === true, size: values, dtype: t.dtype ?? 'float32' });
    }));
    const a = contract.attention;
    this.attention = a ? { output: a.output, size: a.shape.reduce((x, y) => x * y, 1), shape: a.shape.slice(), overGrid: (a.over ?? 'grid') === 'grid' } : null;
    const items = contract.items;
    this.items = items ? { ids: items.ids, scores: items.scores, size: items.size } : null;
    const tags = contract.tags;
    if (tags) {
      const minScore = tags.min_score ?? 0;
      if (!(Number.isInteger(tags.size) && tags.size >= 1) || !(minScore >= 0 && minScore <= 1) || tags.ids === tags.scores) {
        throw new ModelFileError(`${source}: the contract's tags are malformed (size ${tags.size}, min_score ${minScore})`);
      }
      this.tags = { ids: tags.ids, scores: tags.scores, size: tags.size, minScore, tagger: tags.tagger ?? '' };
    } else {
      this.tags = null;
    }
    this.web = j.extra && typeof j.extra === 'object' && j.extra.web ? j.extra.web : null;
    this.flatbufferSize = flatbufferSize;
  }

  /** The state tensors, in contract order (the order of `state[i]` in a step function). */
  stateTensors() {
    return this.tensors.filter((t) => t.role === 'state');
  }

  /** The memory tensors the `encode` signature makes (the tag inputs are the runtime's). */
  encodedMemory() {
    const tagNames = this.tags ? [this.tags.ids, this.tags.scores] : [];
    return this.tensors.filter((t) => t.role === 'memory' && !tagNames.includes(t.name));
  }

  /** The caption's words: token ids to text, as the Python runtime joins them. */
  detokenize(tokens) {
    return tokens.map((t) => this.vocabulary[t]).join(' ');
  }

  /** Word → id (the first id of a word), as the Python runtime's `word_index`. */
  wordIndex() {
    if (!this._index) {
      this._index = new Map();
      this.vocabulary.forEach((w, i) => {
        if (!this._index.has(w)) this._index.set(w, i);
      });
    }
    return this._index;
  }
}

/**
 * Read and check the metadata of a model file's bytes.
 * @param {Uint8Array} data the whole `.tflite` file
 * @param {string} source the file's name, for messages
 * @returns {Promise<ModelMetadata>}
 * @throws {ModelFileError} not a TFLite file, no edgecap metadata, a newer format, a digest that
 *   does not match the flatbuffer, an unverified export, or malformed fields
 */
export async function readMetadata(data, source) {
  if (!(data instanceof Uint8Array)) data = new Uint8Array(data);
  if (data.length < 8 || String.fromCharCode(...data.subarray(4, 8)) !== 'TFL3') {
    throw new ModelFileError(`${source}: not a TFLite model file`);
  }
  const start = archiveStart(data, source);
  const json = readJson(data, start, source);
  if (depth(json) > MAX_DEPTH) {
    throw new ModelFileError(`${source}: malformed edgecap.json (JSON nested too deeply, more than ${MAX_DEPTH} levels)`);
  }
  let j;
  try {
    j = JSON.parse(json);
  } catch (e) {
    throw new ModelFileError(`${source}: malformed edgecap.json (${e.message})`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new ModelFileError(`${source}: malformed edgecap.json (not an object)`);
  const m = new ModelMetadata(j, start, source);
  if (m.formatVersion > FORMAT_VERSION) {
    throw new ModelFileError(`${source}: metadata format ${m.formatVersion} is newer than this page reads (${FORMAT_VERSION}); update edgecap`);
  }
  if (j.verified === false) {
    throw new ModelFileError(`${source}: this export did not pass (or has not yet passed) verification against Keras`);
  }
  const expected = typeof j.flatbuffer_sha256 === 'string' ? j.flatbuffer_sha256 : '';
  if (m.formatVersion >= 3 && !/^[0-9a-f]{64}$/.test(expected)) {
    throw new ModelFileError(`${source}: metadata format ${m.formatVersion} without the flatbuffer's digest; the file is damaged or was not written by edgecap`);
  }
  if (expected && expected !== (await sha256Hex(data.subarray(0, start)))) {
    throw new ModelFileError(`${source}: the weights do not match the SHA-256 digest in the metadata: the file is damaged`);
  }
  return m;
}
