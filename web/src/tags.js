/**
 * Tags: what the built-in COCO detector sees in a photo, as caption words (a port of
 * `edgecap/runtime/tagger.py`'s detector path), and a tag-conditioned model's tag inputs (as
 * `edgecap/runtime/tag_inputs.py` and the Java core's `TagInputs` fill them).
 * @module tags
 */
import { ModelFileError } from './metadata.js';

export const UNUSED_LABEL = '???';
export const MAX_LABELS = 100_000;

/**
 * One thing a tagger names in a photo (Python's `edgecap.runtime.Tag`).
 * @typedef {object} Tag
 * @property {string} word the caption word that names it, e.g. "cat"
 * @property {number} score the detector's best box score, in [0, 1]
 * @property {string} source the tagger's name, e.g. "coco_detector"
 * @property {string} label the tagger's own label, e.g. "cat"
 * @property {string[]} forms every caption word that names it (a disjunctive constraint); [] for a
 *   class left to the captioner (the person)
 * @property {number[]|null} box `[ymin, xmin, ymax, xmax]` in [0, 1] of the photo
 */

/**
 * A tagger's label → caption-word mapping (`<name>.words.json`) checked against its labels file.
 * @param {object} raw the parsed mapping
 * @param {string} labelsText the labels file's text, one label a line
 * @param {string} source the mapping's name, for errors
 * @returns {{kind: string, labels: string[], words: string[][], labelOffset: number}}
 * @throws {ModelFileError} a field of another type or beyond its bounds, or labels that differ
 */
export function readTagWords(raw, labelsText, source) {
  const refuse = (f, expected, got) => new ModelFileError(`${source}: ${f} must be ${expected}, got ${Array.isArray(got) ? 'list' : typeof got}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw refuse('the mapping', 'a JSON object', raw);
  const { kind, labels: entries } = raw;
  const offset = raw.label_offset ?? 0;
  if (typeof kind !== 'string') throw refuse("'kind'", 'a string', kind);
  if (kind !== 'detector') throw new ModelFileError(`${source}: this page runs detectors only, got kind ${JSON.stringify(kind)}`);
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_LABELS) {
    throw new ModelFileError(`${source}: 'label_offset' must be an integer in 0..${MAX_LABELS}, got ${String(offset).slice(0, 40)}`);
  }
  if (!Array.isArray(entries) || entries.length > MAX_LABELS) throw refuse("'labels'", `a list of at most ${MAX_LABELS} entries`, entries);
  const lines = labelsText.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (lines.length !== entries.length) {
    throw new ModelFileError(`${source}: maps ${entries.length} labels, but the labels file has ${lines.length}`);
  }
  const words = entries.map((e, n) => {
    if (typeof e !== 'object' || e === null || typeof e.label !== 'string') throw refuse(`labels[${n}].label`, 'a string', e?.label);
    if (!Array.isArray(e.words) || e.words.length > 64 || !e.words.every((w) => typeof w === 'string' && w.length <= 64)) {
      throw refuse(`labels[${n}].words`, 'a list of at most 64 words (strings of 64 characters or fewer)', e.words);
    }
    if (e.label !== lines[n]) throw new ModelFileError(`${source}: label ${n} is ${JSON.stringify(e.label)}, but line ${n} of the labels is ${JSON.stringify(lines[n])}`);
    return e.words.slice();
  });
  return { kind, labels: lines, words, labelOffset: offset };
}

/**
 * `[name, word]` of a detector's tag for `label` with these mapped `forms` (Python's
 * `detector_word`); null for a label that gives no tag.
 */
export function detectorWord(label, forms) {
  const name = label.split(',')[0].trim();
  if (forms.length) return [name, forms[0]];
  if (!name || name === UNUSED_LABEL || name.includes(' ')) return null;
  return [name, name];
}

/**
 * The tags of a detector's `TFLite_Detection_PostProcess` outputs, best first (Python's
 * `Tagger._detect` then `_select` with the default options: every score, at most `maxResults`).
 * @param {{boxes: Float32Array, classes: Float32Array, scores: Float32Array, count: number}} out
 *   boxes `(n, 4)` flattened, classes and scores `(n)`
 * @param {{labels: string[], words: string[][], labelOffset: number}} words the mapping
 * @param {string} name the tagger's name (each tag's `source`)
 * @param {number} maxResults most tags returned (-1: all)
 * @returns {Tag[]}
 */
export function detectorTags(out, words, name, maxResults = 5, scoreThreshold = 0) {
  const n = Math.min(Math.max(Math.trunc(out.count), 0), out.scores.length);
  const best = new Map();
  for (let j = 0; j < n; j++) {
    const line = Math.trunc(out.classes[j]) + words.labelOffset;
    const [label, forms] = line >= 0 && line < words.labels.length ? [words.labels[line], words.words[line]] : ['', []];
    const named = detectorWord(label, forms);
    if (!named) continue;
    const [labelName, word] = named;
    const score = out.scores[j];
    if (!best.has(word) || score > best.get(word).score) {
      const box = Array.from(out.boxes.subarray(j * 4, j * 4 + 4), (v) => Math.min(1, Math.max(0, v)));
      best.set(word, { word, score, source: name, label: labelName, forms: forms.slice(), box });
    }
  }
  const tags = [...best.values()].filter((t) => t.score >= scoreThreshold);
  tags.sort(byScoreThenWord);
  return maxResults === -1 ? tags : tags.slice(0, maxResults);
}

/** Python's `key=lambda t: (-t.score, t.word)`. */
export function byScoreThenWord(a, b) {
  if (a.score !== b.score) return b.score - a.score;
  return a.word < b.word ? -1 : a.word > b.word ? 1 : 0;
}

/** The vocabulary id a tag enters the model as: its word, else its first form the vocabulary has; -1 if none. */
export function tagWordId(tag, index) {
  for (const w of [tag.word, ...tag.forms]) {
    const i = index.get(w);
    if (i !== undefined && i >= 4) return i;
  }
  return -1;
}

/**
 * A tag-conditioned model's tag inputs of one photo: the tags of the model's tagger scored at
 * least its `minScore` whose word the vocabulary has, one slot per word (its best score), best
 * first (ties by word), at most `size`; the other slots hold id 0 and score 0.
 * @param {Tag[]} tags
 * @param {import('./metadata.js').ModelMetadata} m
 * @returns {{ids: Int32Array, scores: Float32Array}} `size` each
 * @throws {RangeError} the model declares no tags, or a score outside [0, 1]
 */
export function tagInputRows(tags, m) {
  if (!m.tags) throw new RangeError(`${m.name}: the model has no tag inputs`);
  const index = m.wordIndex();
  const best = new Map();
  for (const t of tags) {
    if (!(t.score >= 0 && t.score <= 1)) throw new RangeError(`tag ${t.word}: score must be in [0, 1], got ${t.score}`);
    if (m.tags.tagger && t.source !== m.tags.tagger) continue;
    const id = tagWordId(t, index);
    if (id < 0 || t.score < m.tags.minScore) continue;
    if (!best.has(id) || t.score > best.get(id).score) best.set(id, t);
  }
  const ranked = [...best.entries()].sort((a, b) => byScoreThenWord(a[1], b[1])).slice(0, m.tags.size);
  const ids = new Int32Array(m.tags.size), scores = new Float32Array(m.tags.size);
  ranked.forEach(([id, t], slot) => {
    ids[slot] = id;
    scores[slot] = t.score;
  });
  return { ids, scores };
}
