/**
 * Logits processors: edits of next-word log-probabilities before each search choice, as
 * `edgecap/decoding/processors.py` (and the Java core's `LogitsProcessors`), with the same rules
 * and errors. A processor is `(logProbs, sequences) => void`: `logProbs` is `Float32Array[]`
 * (B rows of V, edited in place), `sequences` is `number[][]` (B rows of the t words emitted so far,
 * no `<start>`).
 * @module processors
 */

/**
 * Never emit the given ids (`<pad>`, `<start>`, `<unk>`): their log-probability becomes -Infinity.
 * @param {number[]} tokenIds
 * @throws {RangeError} a negative id
 */
export function suppressTokens(tokenIds) {
  for (const id of tokenIds) {
    if (!Number.isInteger(id) || id < 0) throw new RangeError(`token ids must be integers >= 0, got [${tokenIds}]`);
  }
  const ids = [...new Set(tokenIds)].sort((a, b) => a - b);
  return (logProbs) => {
    for (const row of logProbs) for (const id of ids) row[id] = -Infinity;
  };
}

/**
 * Forbid `<end>` before `minLength` words.
 * @throws {RangeError} minLength < 0
 */
export function minLength(min, endId) {
  if (!(min >= 0)) throw new RangeError(`min_length must be >= 0, got ${min}`);
  return (logProbs, sequences) => {
    const t = sequences.length === 0 ? 0 : sequences[0].length;
    if (t < min) for (const row of logProbs) row[endId] = -Infinity;
  };
}

/**
 * Forbid any word that would repeat an n-gram already in the caption; 0 disables it.
 * @throws {RangeError} ngramSize < 0 or == 1
 */
export function noRepeatNGram(ngramSize) {
  if (!(ngramSize >= 0) || ngramSize === 1) {
    throw new RangeError(`no_repeat_ngram_size must be 0 (off) or >= 2, got ${ngramSize}`);
  }
  const n = ngramSize;
  return (logProbs, sequences) => {
    for (let row = 0; row < sequences.length; row++) {
      const seq = sequences[row];
      const t = seq.length;
      if (n === 0 || t < n) return;
      for (let i = 0; i < t - n + 1; i++) {
        let match = true;
        for (let j = 0; j < n - 1 && match; j++) match = seq[i + j] === seq[t - n + 1 + j];
        if (match) logProbs[row][seq[i + n - 1]] = -Infinity;
      }
    }
  };
}

/**
 * Subtract `penalty` nats from the log-probabilities of `tokenIds` at every step (Python's
 * `PenalizeTokens`; Infinity: never emit them). The result is rounded to float32, as numpy's
 * in-place subtraction on a float32 array.
 * @throws {RangeError} a penalty not > 0, or a negative id
 */
export function penalizeTokens(tokenIds, penalty) {
  if (!(penalty > 0)) throw new RangeError(`penalty must be > 0, got ${penalty}`);
  const ids = [...new Set(tokenIds)].sort((a, b) => a - b);
  if (ids.length && ids[0] < 0) throw new RangeError(`token ids must be >= 0, got ${ids[0]}`);
  return (logProbs) => {
    for (const row of logProbs) for (const id of ids) row[id] = Math.fround(row[id] - penalty);
  };
}

/** Applies `processors` in order (null entries skipped). */
export function processorList(processors) {
  const list = processors.filter(Boolean);
  return (logProbs, sequences) => {
    for (const p of list) p(logProbs, sequences);
  };
}

/**
 * The captioning default, as `decoding_processors` in Python: never emit `<pad>`, `<start>` or
 * `<unk>`, nor an empty caption; optionally no repeated n-gram.
 * @param {import('./metadata.js').ModelMetadata} m
 */
export function captioningDefaults(m, noRepeatNGramSize = m.noRepeatNGramSize) {
  const list = [suppressTokens([m.padId, m.startId, m.unkId]), minLength(1, m.endId)];
  if (noRepeatNGramSize !== 0) list.push(noRepeatNGram(noRepeatNGramSize));
  return processorList(list);
}
