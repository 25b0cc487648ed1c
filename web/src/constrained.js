/**
 * Constrained beam search (Anderson, Fernando, Johnson & Gould, EMNLP 2017): a port of
 * `edgecap/decoding/constraints.py` (line for line with the Java core's `ConstrainedSearch.java`).
 *
 * Each constraint is a set of word ids, any one of which meets it. The finite-state machine's
 * states are the subsets of constraints met (bit i = constraint i); each state keeps `beamSize`
 * beams, so the step runs with `2^m · beamSize` rows, row = state · beamSize + beam. Ties: higher
 * score, then lower token id, then lower row, as in `search.js`.
 * @module constrained
 */
import { advanceBeams, candidates, endScore, finishHypothesis, norm, sortByScore, startBeams, topCandidates } from './search.js';

/** At most this many constraints (2^4 = 16 states). */
export const MAX_CONSTRAINTS = 4;

/** The bits of the constraints each word id meets (`Int32Array (V)`). */
export function tokenMask(constraints, vocabSize) {
  if (constraints.length > MAX_CONSTRAINTS) {
    throw new RangeError(`at most ${MAX_CONSTRAINTS} constraints, got ${constraints.length}`);
  }
  const mask = new Int32Array(vocabSize);
  constraints.forEach((ids, i) => {
    if (!ids.length) throw new RangeError(`constraint ${i} has no word ids`);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new RangeError(`constraint ${i}: word ids must be in 0..${vocabSize - 1}, got ${id}`);
      }
      mask[id] |= 1 << i;
    }
  });
  return mask;
}

/** `{rows, tokens}` of the n best candidates landing in state `target`, best first (Python: `_state_candidates`). */
export function stateCandidates(mask, constraintTokens, cand, K, target, n) {
  const vocab = cand[0].length;
  const found = [];
  const same = [];
  for (let k = 0; k < K; k++) {
    const row = Float32Array.from(cand[target * K + k]);
    for (let v = 0; v < vocab; v++) if ((mask[v] & ~target) !== 0) row[v] = -Infinity;
    same.push(row);
  }
  const top = topCandidates(same, Math.min(n, K * vocab));
  for (let i = 0; i < top.rows.length; i++) found.push([top.rows[i] + target * K, top.tokens[i]]);
  for (let s = 0; s < target; s++) {
    if ((s & ~target) !== 0) continue;
    for (let k = 0; k < K; k++) {
      for (const token of constraintTokens) {
        if ((s | mask[token]) !== target) continue;
        found.push([s * K + k, token]);
      }
    }
  }
  const finite = found.filter(([r, t]) => Number.isFinite(cand[r][t]));
  finite.sort((a, b) => {
    const sa = cand[a[0]][a[1]], sb = cand[b[0]][b[1]];
    if (sa !== sb) return sa > sb ? -1 : 1;
    if (a[1] !== b[1]) return a[1] - b[1];
    return a[0] - b[0];
  });
  const m = Math.min(n, finite.length);
  return { rows: finite.slice(0, m).map((f) => f[0]), tokens: finite.slice(0, m).map((f) => f[1]) };
}

function finishInto(finished, s, accepting, K, seq, attn, logp, lengthPenalty) {
  const f = finished[s];
  f.push(finishHypothesis(seq, attn, logp, lengthPenalty, s === accepting));
  sortByScore(f);
  f.length = Math.min(f.length, K);
}

/**
 * Beam search whose captions contain one word of each constraint, as Python's
 * `constrained_beam_search`. If no caption meets them all within `maxLength` words, the best
 * finished captions of any state come back with `constraintsMet` false.
 * @param {Float32Array[][]} state initial state of one image (each tensor with one row)
 * @param {number[][]} constraints m (<= 4) sets of word ids
 * @param {number} vocabSize V, the width of the step's log-probabilities
 * @param {number} numReturn n-best size, 1..beamSize
 * @returns {Promise<import('./search.js').Hypothesis[]>} up to numReturn hypotheses, best first
 * @throws {RangeError} bad sizes or constraints, `endId` a constraint word
 */
export async function constrainedBeam(step, state, startId, endId, constraints, vocabSize, beamSize, maxLength, lengthPenalty, numReturn, processors = null) {
  if (!(maxLength >= 1)) throw new RangeError(`max_length must be >= 1, got ${maxLength}`);
  if (!(beamSize >= 1)) throw new RangeError(`beam_size must be >= 1, got ${beamSize}`);
  if (!(numReturn >= 1 && numReturn <= beamSize)) {
    throw new RangeError(`num_return must be in 1..beam_size (${beamSize}), got ${numReturn}`);
  }
  if (state[0].length !== 1) {
    throw new RangeError(`constrained search decodes one image: state batch must be 1, got ${state[0].length}`);
  }
  const mask = tokenMask(constraints, vocabSize);
  if (mask[endId] !== 0) throw new RangeError(`end_id ${endId} cannot be a constraint word`);
  const constraintTokens = [];
  for (let v = 0; v < vocabSize; v++) if (mask[v] !== 0) constraintTokens.push(v);
  const K = beamSize, S = 1 << constraints.length, R = S * K, accepting = S - 1;
  let b = startBeams(state, R, startId);
  const finished = Array.from({ length: S }, () => []);
  for (let t = 0; t <= maxLength; t++) {
    const res = await step(b.tokens, b.st);
    const logProbs = res.logProbs;
    const { seqs, attns, scores } = b;
    if (processors) processors(logProbs, seqs);
    if (t === maxLength) {
      for (let row = 0; row < R; row++) {
        if (!Number.isFinite(scores[row])) continue;
        finishInto(finished, Math.floor(row / K), accepting, K, seqs[row], attns[row], endScore(scores[row], logProbs[row], endId), lengthPenalty);
      }
      break;
    }
    const cand = candidates(scores, logProbs);
    const keepRows = new Int32Array(R), keepTokens = new Int32Array(R).fill(endId);
    const keepScores = new Float32Array(R).fill(-Infinity);
    for (let target = 0; target < S; target++) {
      const top = stateCandidates(mask, constraintTokens, cand, K, target, 2 * K);
      let n = 0;
      for (let i = 0; i < top.rows.length; i++) {
        const row = top.rows[i], token = top.tokens[i];
        const score = cand[row][token];
        if (token === endId) {
          finishInto(finished, Math.floor(row / K), accepting, K, seqs[row], attns[row], score, lengthPenalty);
          continue;
        }
        keepRows[target * K + n] = row;
        keepTokens[target * K + n] = token;
        keepScores[target * K + n] = score;
        if (++n === K) break;
      }
      for (let i = n; n > 0 && i < K; i++) {
        keepRows[target * K + i] = keepRows[target * K];
        keepTokens[target * K + i] = keepTokens[target * K];
      }
    }
    let bestAlive = -Infinity;
    for (const s of keepScores) bestAlive = Math.max(bestAlive, s);
    if (!Number.isFinite(bestAlive)) break;
    const acc = finished[accepting];
    if (acc.length >= K) {
      const worst = acc[acc.length - 1].score;
      if ((lengthPenalty <= 0 && bestAlive <= worst) || (lengthPenalty > 0 && norm(bestAlive, t + 2, lengthPenalty) < worst)) break;
    }
    b = advanceBeams(b, res.state, keepRows, keepTokens, keepScores, res.attention);
  }
  const acc = finished[accepting];
  if (acc.length) return acc.slice(0, numReturn);
  return sortByScore(finished.flat()).slice(0, numReturn);
}
