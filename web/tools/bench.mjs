#!/usr/bin/env node
// The browser's speed (LiteRT.js, WASM, headless Chromium on this machine): the model's load,
// `encode`, one `decode_step` call of K rows, the detector, and whole captions of the example
// photos with the default pipeline; medians of --runs.
//
//   node web/tools/bench.mjs [--model NAME] [--runs 20] [--threads N | --compat]
//
// --threads N opens the page as `?threads=N`: N > 1 runs LiteRT.js's threaded WASM build (the
// page is served cross-origin isolated); without it, the page's default, the single-threaded
// build. --compat loads the build for browsers without relaxed SIMD (which LiteRT.js picks for
// them). Prints one JSON object (docs/web.md).
import { parseArgs } from 'node:util';

import { launch, openDemo, startDemo } from './browser.js';

const { values: a } = parseArgs({ options: { model: { type: 'string' }, runs: { type: 'string', default: '20' }, threads: { type: 'string' }, compat: { type: 'boolean', default: false } } });
const runs = Number(a.runs);
const demo = await startDemo();
const browser = await launch();
try {
  const query = new URLSearchParams();
if (a.threads) query.set('threads', String(Number(a.threads)));
if (a.compat) query.set('wasm', 'compat');
const [page, ready] = await openDemo(browser, `${demo.url}?${query}`);
  if (!ready) throw new Error('the page did not load its model');
  const t0 = Date.now();
  await page.evaluate((m) => window.edgecapDemo.loadModel(m), a.model ?? null);
  const load = Date.now() - t0;
  const out = await page.evaluate(async (runs) => {
    const median = (xs) => xs.slice().sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const c = window.edgecapDemo.state.captioner;
    const m = c.metadata;
    const pixels = new Uint8Array(m.imageSize * m.imageSize * 3).map((_, i) => (i * 7) % 256);
    const time = async (f) => {
      const ts = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        await f();
        ts.push(performance.now() - t);
      }
      return median(ts);
    };
    const enc = await c.encode(pixels);
    if (m.tags) {
      const { Tensor } = await import('@litertjs/core');
      enc.memory[m.tags.ids] = new Tensor(new Int32Array(m.tags.size), [1, m.tags.size]);
      enc.memory[m.tags.scores] = new Tensor(new Float32Array(m.tags.size), [1, m.tags.size]);
    }
    const encode = await time(async () => {
      const e = await c.encode(pixels);
      Object.values(e.memory).forEach((t) => t.delete());
    });
    const K = c.batch;
    const state = enc.state.map((rows) => Array.from({ length: K }, () => rows[0]));
    const tokens = new Int32Array(K).fill(m.startId);
    const stepFn = c.stepFunction(enc.memory);
    const step = await time(() => stepFn(tokens, state));
    const tagger = c.taggers[0];
    const tagPixels = new Uint8Array(tagger.imageSize * tagger.imageSize * 3).fill(120);
    const detector = await time(() => tagger.tag(tagPixels));
    Object.values(enc.memory).forEach((t) => t.delete());
    const captions = [];
    for (const name of ['astronaut.jpg', 'chelsea.jpg', 'coffee.jpg']) {
      const blob = await (await fetch(`/examples/${name}`)).blob();
      const bitmap = await createImageBitmap(blob);
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const ctx = canvas.getContext('2d');
      ctx.drawImage(bitmap, 0, 0);
      const photo = { data: ctx.getImageData(0, 0, bitmap.width, bitmap.height).data, width: bitmap.width, height: bitmap.height, channels: 4 };
      const totals = [], searches = [];
      let text = '';
      for (let i = 0; i < runs; i++) {
        const r = await c.caption(photo);
        totals.push(r.timings.total);
        searches.push(r.timings.search + r.timings.constrained);
        text = r.caption.text;
      }
      captions.push({ photo: name, caption: text, total_ms: median(totals), search_ms: median(searches) });
    }
    return {
      model: m.name, step_batch: K, crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, userAgent: navigator.userAgent,
      encode_ms: encode, decode_step_ms: step, detector_ms: detector, captions,
    };
  }, runs);
  console.log(JSON.stringify({ ...out, threads_asked: a.threads ? Number(a.threads) : 'default', wasm_build: a.compat ? 'compat (SIMD, no relaxed SIMD)' : a.threads > 1 ? 'threaded' : 'default (relaxed SIMD if the browser has it)', model_load_ms: load, runs }, null, 1));
} finally {
  await browser.close();
  demo.stop();
}
