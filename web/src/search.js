/**
 * Greedy and beam search over a step function: a port of `edgecap/decoding/search.py` (line for
 * line with the Java core's `Search.java`), so that the same step outputs give the same token ids,
 * log-probabilities and captions in the browser as in the Python runtime.
 *
 * A step function is `async (tokens, state) => ({logProbs, state, attention})`: `tokens` is
 * `Int32Array (B)`, the previous words; `state[i][b]` is row b of the i-th state tensor of the
 * step contract (`Float32Array`); `logProbs` is `Float32Array[]` (B rows of V, owned by the
 * search, which edits them); `attention` is `Float32Array[]` (B rows of L) or null.
 *
 * Ties are broken by one portable rule: higher score, then the lower token id, then the lower
 * beam. Scores are float32 sums (`Math.fround`), as in Python; length normalisation is done in
 * double, as Python does with its floats.
 * @module search
 */

/**
 * One finished caption, as `edgecap.decoding.search.Hypothesis`.
 * @typedef {object} Hypothesis
 * @property {number[]} tokens word ids, without `<start>`/`<end>`
 * @property {number} logProb sum of the chosen words' log-probabilities, `<end>` included (nats, a float32 sum)
 * @property {number} score `logProb / length^lengthPenalty` (length counts `<end>`)
 * @property {Float32Array[]|null} attention per emitted word, the step's attention row
 * @property {boolean} constraintsMet false when a constrained search returned a caption that misses a constraint
 */

export const f32 = Math.fround;

export function checkSizes(maxLength, beamSize) {
  if (!(maxLength >= 1)) throw new RangeError(`max_length must be >= 1, got ${maxLength}`);
  if (!(beamSize >= 1)) throw new RangeError(`beam_size must be >= 1, got ${beamSize}`);
}

export function norm(logp, length, lengthPenalty) {
  return lengthPenalty !== 0 ? logp / Math.pow(length, lengthPenalty) : logp;
}

function argmax(row) {
  let best = 0;
  for (let v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
  return best;
}

/**
 * Pick the most probable word at each step for a batch of B images; ties go to the lowest id.
 * @param {Function} step the step function (module doc)
 * @param {Float32Array[][]} state initial state, B rows per tensor
 * @param {number} maxLength most words per caption (`<end>` not counted)
 * @param {Function|null} processors edits applied before each choice
 * @returns {Promise<Hypothesis[]>} one per row (score = logProb)
 * @throws {RangeError} maxLength < 1
 */
export async function greedy(step, state, startId, endId, maxLength, processors = null) {
  checkSizes(maxLength, 1);
  const batch = state[0].length;
  let tokens = new Int32Array(batch).fill(startId);
  const out = Array.from({ length: batch }, () => new Array(maxLength + 1).fill(endId));
  const total = new Array(batch).fill(0);
  const done = new Array(batch).fill(false);
  const attn = [];
  for (let t = 0; t <= maxLength; t++) {
    const r = await step(tokens, state);
    state = r.state;
    if (processors) processors(r.logProbs, out.map((row) => row.slice(0, t)));
    const next = new Int32Array(batch);
    for (let b = 0; b < batch; b++) next[b] = t === maxLength ? endId : argmax(r.logProbs[b]);
    tokens = next;
    let allDone = true;
    for (let b = 0; b < batch; b++) {
      const chosen = r.logProbs[b][tokens[b]];
      total[b] = f32(total[b] + (done[b] || !Number.isFinite(chosen) ? 0 : chosen));
      out[b][t] = done[b] ? endId : tokens[b];
      done[b] = done[b] || tokens[b] === endId;
      allDone = allDone && done[b];
    }
    if (r.attention) attn.push(r.attention);
    if (allDone) break;
  }
  return out.map((row, b) => {
    const n = row.indexOf(endId);
    const a = attn.length ? attn.slice(0, n).map((x) => Float32Array.from(x[b])) : null;
    return { tokens: row.slice(0, n), logProb: total[b], score: total[b], attention: a, constraintsMet: true };
  });
}

function better(s, token, row, s2, token2, row2) {
  if (s !== s2) return s > s2;
  if (token !== token2) return token < token2;
  return row < row2;
}

/**
 * The n best entries of `scores` (K rows of V), best first, as `{rows, tokens}`: higher score,
 * then lower token id, then lower row.
 * @throws {RangeError} n < 1
 */
export function topCandidates(scores, n) {
  if (!(n >= 1)) throw new RangeError(`n must be >= 1, got ${n}`);
  const vocab = scores[0].length;
  n = Math.min(n, scores.length * vocab);
  const rows = new Int32Array(n), tokens = new Int32Array(n), best = new Float64Array(n);
  let size = 0;
  for (let row = 0; row < scores.length; row++) {
    const r = scores[row];
    for (let token = 0; token < vocab; token++) {
      const s = r[token];
      if (size === n && !better(s, token, row, best[n - 1], tokens[n - 1], rows[n - 1])) continue;
      let i = size === n ? n - 1 : size++;
      while (i > 0 && better(s, token, row, best[i - 1], tokens[i - 1], rows[i - 1])) {
        best[i] = best[i - 1];
        tokens[i] = tokens[i - 1];
        rows[i] = rows[i - 1];
        i--;
      }
      best[i] = s;
      tokens[i] = token;
      rows[i] = row;
    }
  }
  return { rows: Array.from(rows), tokens: Array.from(tokens) };
}

/** `cand[row][v] = scores[row] + logProbs[row][v]`, in float32. */
export function candidates(scores, logProbs) {
  return logProbs.map((lp, row) => {
    const c = new Float32Array(lp.length);
    const s = scores[row];
    for (let v = 0; v < lp.length; v++) c[v] = s + lp[v];
    return c;
  });
}

export function byScore(a, b) {
  return b.score - a.score;
}

function finish(seq, attn, logp, lengthPenalty, met = true) {
  return {
    tokens: seq.slice(),
    logProb: logp,
    score: norm(logp, seq.length + 1, lengthPenalty),
    attention: attn.length ? attn.slice() : null,
    constraintsMet: met,
  };
}
export { finish as finishHypothesis };

/** `R` beams of one image at the start: every row the image's state, only row 0 alive (score 0). */
export function startBeams(state, R, startId) {
  const scores = new Float32Array(R).fill(-Infinity);
  scores[0] = 0;
  return {
    st: state.map((t) => Array.from({ length: R }, () => Float32Array.from(t[0]))),
    tokens: new Int32Array(R).fill(startId),
    scores,
    seqs: Array.from({ length: R }, () => []),
    attns: Array.from({ length: R }, () => []),
  };
}

/** The beams after a step: row r continues row `keepRows[r]` with `keepTokens[r]` (state from `st`, the step's). */
export function advanceBeams(b, st, keepRows, keepTokens, keepScores, alpha) {
  return {
    st: st.map((tensor) => Array.from(keepRows, (row) => Float32Array.from(tensor[row]))),
    tokens: keepTokens,
    scores: keepScores,
    seqs: Array.from(keepRows, (row, r) => [...b.seqs[row], keepTokens[r]]),
    attns: Array.from(keepRows, (row) => (alpha ? [...b.attns[row], Float32Array.from(alpha[row])] : b.attns[row].slice())),
  };
}

/** A live row's score once it ends here, out of room: `<end>`'s log-probability added (0 if -inf), float32. */
export function endScore(score, logProbs, endId) {
  const end = logProbs[endId];
  return f32(score + (Number.isFinite(end) ? end : 0));
}

/** Stable sort, as Java's `List.sort` and Python's `sorted`. */
export function sortByScore(list) {
  list.sort(byScore);
  return list;
}

/**
 * Beam search for one image, as `beam_search` in Python: keeps the `beamSize` best partial
 * captions; finished ones are ranked by `logProb / length^lengthPenalty` (length counts `<end>`).
 * The step always runs with `beamSize` rows.
 * @param {Float32Array[][]} state initial state of one image (each tensor with one row)
 * @param {number} numReturn n-best size, 1..beamSize
 * @returns {Promise<Hypothesis[]>} up to numReturn hypotheses, best first
 * @throws {RangeError} bad sizes, or a state not of one row
 */
export async function beam(step, state, startId, endId, beamSize, maxLength, lengthPenalty, numReturn, processors = null) {
  checkSizes(maxLength, beamSize);
  if (!(numReturn >= 1 && numReturn <= beamSize)) {
    throw new RangeError(`num_return must be in 1..beam_size (${beamSize}), got ${numReturn}`);
  }
  if (state[0].length !== 1) throw new RangeError(`beam search decodes one image: state batch must be 1, got ${state[0].length}`);
  const K = beamSize;
  let b = startBeams(state, K, startId);
  let finished = [];
  for (let t = 0; t <= maxLength; t++) {
    const r = await step(b.tokens, b.st);
    const logProbs = r.logProbs;
    const { seqs, attns, scores } = b;
    if (processors) processors(logProbs, seqs);
    if (t === maxLength) {
      for (let row = 0; row < K; row++) {
        if (Number.isFinite(scores[row])) finished.push(finish(seqs[row], attns[row], endScore(scores[row], logProbs[row], endId), lengthPenalty));
      }
      break;
    }
    const vocab = logProbs[0].length;
    const cand = candidates(scores, logProbs);
    const top = topCandidates(cand, Math.min(2 * K, K * vocab));
    const keepRows = new Int32Array(K), keepTokens = new Int32Array(K), keepScores = new Float32Array(K);
    let kept = 0;
    for (let i = 0; i < top.rows.length && kept < K; i++) {
      const row = top.rows[i], token = top.tokens[i];
      const score = cand[row][token];
      if (!Number.isFinite(score)) break;
      if (token === endId) {
        finished.push(finish(seqs[row], attns[row], score, lengthPenalty));
      } else {
        keepRows[kept] = row;
        keepTokens[kept] = token;
        keepScores[kept++] = score;
      }
    }
    if (kept === 0) break;
    sortByScore(finished);
    finished = finished.slice(0, K);
    const bestAlive = norm(keepScores[0], t + 2, lengthPenalty);
    if (finished.length >= K) {
      const worst = finished[finished.length - 1].score;
      if ((lengthPenalty <= 0 && keepScores[0] <= worst) || (lengthPenalty > 0 && bestAlive < worst)) break;
    }
    for (let i = kept; i < K; i++) {
      keepRows[i] = keepRows[0];
      keepTokens[i] = keepTokens[0];
      keepScores[i] = -Infinity;
    }
    b = advanceBeams(b, r.state, keepRows, keepTokens, keepScores, r.attention);
  }
  sortByScore(finished);
  return finished.slice(0, numReturn);
}
