// The JavaScript core against the Python runtime: the same golden files as the Java core's
// (android_demo/core GoldenTest, TagInputsTest, PreprocessingTest, HostileFilesTest).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PNG } from 'pngjs';

import { constrainedBeam } from '../src/constrained.js';
import { ModelFileError, readMetadata } from '../src/metadata.js';
import { resize } from '../src/preprocessing.js';
import { captioningDefaults } from '../src/processors.js';
import { beam, greedy } from '../src/search.js';
import { tagInputRows } from '../src/tags.js';
import { floats, goldenDir, goldenFiles, hostileDir, readJson } from './golden.js';

const metadataCache = new Map();
async function metadataOf(model) {
  if (!metadataCache.has(model)) metadataCache.set(model, await readMetadata(fs.readFileSync(model), model));
  return metadataCache.get(model);
}

/** Replays the recorded calls in order, checking each call's tokens. */
function replay(calls, name) {
  let next = 0;
  const step = async (tokens, state) => {
    assert.ok(next < calls.length, `${name}: more steps than Python ran (${calls.length})`);
    const call = calls[next];
    assert.deepEqual(Array.from(tokens), call.tokens, `${name}: tokens into step ${next}`);
    next++;
    return { logProbs: floats(call.log_probs, call.shape[0], call.shape[1]), state, attention: null };
  };
  return { step, steps: () => next };
}

const decodings = goldenFiles(/\.(beam|constrained)\d+\.json$/);

for (const file of decodings) {
  const name = path.basename(file);
  test(`the JS search reproduces the Python runtime: ${name}`, async () => {
    const g = readJson(file);
    const m = await metadataOf(g.model);
    const k = g.beam_size;
    const state = m.stateTensors().map((t) => [new Float32Array(t.size)]);
    const { step, steps } = replay(g.calls, name);
    const processors = captioningDefaults(m);
    const c = g.constraints ?? [];
    const hyps = c.length
      ? await constrainedBeam(step, state, m.startId, m.endId, c, m.vocabulary.length, k, m.maxLength, m.lengthPenalty, k, processors)
      : k === 1
        ? await greedy(step, state, m.startId, m.endId, m.maxLength, processors)
        : await beam(step, state, m.startId, m.endId, k, m.maxLength, m.lengthPenalty, k, processors);
    assert.equal(steps(), g.calls.length, 'steps run');
    assert.equal(hyps.length, g.hypotheses.length, 'hypotheses');
    g.hypotheses.forEach((e, i) => {
      const h = hyps[i];
      assert.deepEqual(h.tokens, e.tokens, `tokens of hypothesis ${i}`);
      assert.ok(Math.abs(h.logProb - e.log_prob) <= 1e-9, `log-probability of hypothesis ${i}: ${h.logProb} vs ${e.log_prob}`);
      assert.ok(Math.abs(h.score - e.score) <= 1e-9, `score of hypothesis ${i}: ${h.score} vs ${e.score}`);
      assert.equal(m.detokenize(h.tokens), e.text, `text of hypothesis ${i}`);
      assert.equal(h.constraintsMet, e.constraints_met ?? true, `constraints met by hypothesis ${i}`);
    });
  });
}

test('every built-in captioner has greedy, beam 3 and constrained golden runs', async () => {
  const models = new Set(decodings.map((f) => readJson(f).model));
  for (const model of models) {
    const stem = path.basename(model).replace(/_int8\.tflite$/, '');
    for (const kind of ['beam1', 'beam3', 'constrained1', 'constrained3']) {
      assert.ok(decodings.some((f) => path.basename(f).startsWith(`${stem}.`) && f.includes(`.${kind}.`)), `${stem} ${kind}`);
    }
  }
  assert.ok(models.size >= 4, `captioners recorded: ${[...models]}`);
});

for (const file of goldenFiles(/\.tags\.json$/)) {
  test(`tag inputs as Python fills them: ${path.basename(file)}`, async () => {
    const g = readJson(file);
    const m = await metadataOf(g.model);
    const rows = tagInputRows(g.tags, m);
    assert.deepEqual(Array.from(rows.ids), g.ids);
    assert.deepEqual(Array.from(rows.scores), g.scores.map(Math.fround));
  });
}

test('a model without tag inputs refuses tags', async () => {
  const g = readJson(goldenFiles(/^multimodal_rnn.*\.beam1\.json$/)[0]);
  const m = await metadataOf(g.model);
  assert.throws(() => tagInputRows([], m), RangeError);
});

for (const file of goldenFiles(/\.resize224\.json$/)) {
  test(`the resize is Pillow's, byte for byte: ${path.basename(file)}`, () => {
    const g = readJson(file);
    const png = PNG.sync.read(fs.readFileSync(path.join(goldenDir(), g.png)));
    const got = resize(png.data, png.width, png.height, g.size, 4);
    assert.deepEqual(Buffer.from(got), Buffer.from(g.rgb, 'base64'));
  });
}

test('resize refuses sizes that do not match the pixels', () => {
  assert.throws(() => resize(new Uint8Array(10), 2, 2, 4), /expected 16 values/);
  assert.throws(() => resize(new Uint8Array(0), 0, 0, 4), /sizes must be >= 1/);
});

/** What this core's message says for each class of reason (as the Java core's HostileFilesTest). */
const PATTERNS = {
  archive: /damaged edgecap metadata \(.*(declares|archive entries|inflates past)/,
  json: /malformed edgecap.json/,
  digest: /digest/,
  fields: /metadata fields? .*must/,
  contract: /tensor h: shape .* must have dimensions in/,
  unverified: /verification/,
};

test('every hostile model file is refused with its class of reason', async () => {
  const dir = hostileDir();
  const manifest = readJson(path.join(dir, 'manifest.json'));
  const kinds = new Set();
  for (const [name, kind] of Object.entries(manifest)) {
    kinds.add(kind);
    const p = path.join(dir, name);
    await assert.rejects(readMetadata(fs.readFileSync(p), p), (e) => {
      assert.ok(e instanceof ModelFileError, `${name}: ${e}`);
      assert.ok(e.message.startsWith(p), e.message);
      assert.match(e.message, PATTERNS[kind], `${name} (${kind})`);
      return true;
    });
  }
  assert.deepEqual([...kinds].sort(), Object.keys(PATTERNS).sort());
});

test('a non-model and a flipped weight byte are refused, naming the file', async () => {
  const model = readJson(goldenFiles(/\.beam1\.json$/)[0]).model;
  await assert.rejects(readMetadata(new TextEncoder().encode('not a model at all'), 'x.tflite'), /x.tflite: not a TFLite model file/);
  const data = new Uint8Array(fs.readFileSync(model));
  data[1000] ^= 1;
  await assert.rejects(readMetadata(data, 'flipped.tflite'), /flipped.tflite: the weights do not match the SHA-256 digest/);
});
