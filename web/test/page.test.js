// End to end in headless Chromium: `edgecap demo` serves the page, which captions the example
// photos with every built-in captioner exactly as the Python runtime does (same pixels), and
// says clearly when a file is not an image or the browser lacks WebAssembly SIMD. The reference
// comes from `python scripts/web_reference.py --out web/build/reference`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch, openDemo, startDemo, webRoot } from '../tools/browser.js';

const refDir = path.resolve(webRoot, '..', process.env.EDGECAP_WEB_REFERENCE ?? 'web/build/reference');
if (!fs.existsSync(path.join(refDir, 'reference.json'))) {
  throw new Error(`${refDir}/reference.json is missing: make it first with \`python scripts/web_reference.py --out ${path.relative(path.resolve(webRoot, '..'), refDir)}\``);
}
const reference = JSON.parse(fs.readFileSync(path.join(refDir, 'reference.json'), 'utf8'));
const b64 = (s) => Array.from(Buffer.from(s, 'base64'));

let demo, browser, page;
before(async () => {
  demo = await startDemo();
  browser = await launch();
  let ready;
  [page, ready] = await openDemo(browser, demo.url);
  assert.equal(ready, true, 'the page loaded its default model');
});
after(async () => {
  await browser?.close();
  demo?.stop();
});

function sameResult(got, want, where) {
  assert.deepEqual(got.captions.map((c) => c.text), want.captions.map((c) => c.text), `${where}: captions`);
  got.captions.forEach((c, i) => {
    assert.deepEqual(c.tokens, want.captions[i].tokens, `${where}: tokens of caption ${i}`);
    assert.ok(Math.abs(c.logProb - want.captions[i].log_prob) <= 1e-9, `${where}: log P of caption ${i}: ${c.logProb} vs ${want.captions[i].log_prob}`);
  });
  assert.deepEqual(got.tags.map((t) => [t.word, t.score, t.label]), want.tags.map((t) => [t.word, t.score, t.label]), `${where}: tags`);
  got.tags.forEach((t, i) => t.box.forEach((v, k) => assert.ok(Math.abs(v - want.tags[i].box[k]) <= 1e-6, `${where}: box of tag ${i}`)));
  assert.deepEqual(got.constraints, want.constraints, `${where}: constraints`);
  assert.equal(got.constraintsMet, want.constraints_met, `${where}: constraints met`);
}

const models = [...new Set(reference.map((r) => r.model))];

for (const model of models) {
  test(`${model}: the page's pipeline equals the Python runtime's, given the same pixels`, async () => {
    await page.evaluate((name) => window.edgecapDemo.loadModel(name), model);
    for (const r of reference.filter((x) => x.model === model)) {
      const pixels = Object.fromEntries(Object.entries(r.pixels).map(([k, v]) => [k, b64(v)]));
      const got = await page.evaluate((p) => window.edgecapDemo.captionPixels(p), pixels);
      sameResult(got, r.jpeg, `${model} ${r.photo}`);
    }
  });
}

test('the page captions photos given through its file input as Python captions the same files', async () => {
  const model = models.includes('show_attend_tell_flickr8k') ? 'show_attend_tell_flickr8k' : models[0]; // the default
  await page.evaluate((name) => window.edgecapDemo.loadModel(name), model);
  const input = await page.$('#file');
  for (const r of reference.filter((x) => x.model === model)) {
    await page.mouse.move(0, 0); // off the caption: a word under the pointer would show its map instead of the boxes
    const before = await page.evaluate(() => window.edgecapDemo.state.captioned);
    await input.uploadFile(path.join(refDir, r.png));
    await page.waitForFunction((n) => window.edgecapDemo.state.captioned > n, {}, before);
    const shown = await page.$eval('#caption', (e) => e.textContent);
    assert.equal(shown, r.png_result.captions[0].text, `${r.png}: the caption shown`);
    const got = await page.evaluate(() => window.edgecapDemo.plain(window.edgecapDemo.state.result));
    sameResult(got, r.png_result, `${model} ${r.png} (file input)`);
    const nbest = await page.$$eval('#nbest li', (lis) => lis.length);
    assert.equal(nbest, r.png_result.captions.length, 'the n-best list');
    assert.equal(await page.$$eval('#overlay .box', (b) => b.length), r.png_result.tags.length, 'a box per tag');
    await (await page.$('#caption .word')).hover();
    assert.equal(await page.$$eval('#overlay .heat > div', (h) => h.length), 49, 'hovering a word shades the photo by its attention (7x7)');
    await page.$eval('#file', (e) => { e.value = ''; });
  }
});

test('a file that is not an image gets a clear message naming it', async () => {
  const bad = path.join(refDir, 'notes.jpg');
  fs.writeFileSync(bad, 'these are not pixels\n');
  await (await page.$('#file')).uploadFile(bad);
  await page.waitForFunction(() => !document.querySelector('#error').hidden);
  const message = await page.$eval('#error', (e) => e.textContent);
  assert.match(message, /notes\.jpg: not an image this browser can decode/);
});

test('a browser without WebAssembly SIMD is told so, not left waiting', async () => {
  const [noSimd, ready] = await openDemo(browser, demo.url, (p) => p.evaluateOnNewDocument(() => {
    WebAssembly.validate = () => false; // what a browser without SIMD answers for a SIMD module
  }));
  assert.equal(ready, false);
  const message = await noSimd.$eval('#error', (e) => (e.hidden ? '' : e.textContent));
  assert.match(message, /no WebAssembly SIMD/);
  await noSimd.close();
});

test('after one visit the page captions with its server gone (the service worker caches the WASM and the models)', async () => {
  const own = await startDemo(); // a server of its own, stopped below
  const [page, ready] = await openDemo(browser, `${own.url}?sw=1`);
  assert.equal(ready, true);
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.reload(); // now controlled by the worker: every file of the visit goes through its cache
  assert.equal(await page.evaluate(() => window.edgecapDemo.ready), true);
  const first = await page.evaluate(() => window.edgecapDemo.captionUrl('/examples/chelsea.jpg'));
  own.stop();
  await page.setOfflineMode(true);
  await page.reload();
  assert.equal(await page.evaluate(() => window.edgecapDemo.ready), true, 'the page loaded its model offline');
  const again = await page.evaluate(() => window.edgecapDemo.captionUrl('/examples/chelsea.jpg'));
  assert.equal(again.caption.text, first.caption.text);
  await page.close();
});

test('the build for browsers without relaxed SIMD loads and captions (its captions may differ: docs/web.md)', async () => {
  const [compat, ready] = await openDemo(browser, `${demo.url}?wasm=compat`);
  assert.equal(ready, true);
  const r = reference.find((x) => x.model === 'show_attend_tell_flickr8k') ?? reference[0];
  const pixels = Object.fromEntries(Object.entries(r.pixels).map(([k, v]) => [k, b64(v)]));
  const got = await compat.evaluate((p) => window.edgecapDemo.captionPixels(p), pixels);
  assert.ok(got.caption.words.length >= 1 && got.caption.logProb < 0, JSON.stringify(got.caption));
  assert.deepEqual(got.tags.map((t) => t.word), r.jpeg.tags.map((t) => t.word), 'the detector is integer arithmetic: the same tags');
  await compat.close();
});

test('Captioner.caption takes a File or an <img> as it is', async () => {
  await page.evaluate((name) => window.edgecapDemo.loadModel(name), 'show_attend_tell_flickr8k');
  const want = reference.find((x) => x.model === 'show_attend_tell_flickr8k' && x.png === 'chelsea.png').png_result.captions[0].text;
  const got = await page.evaluate(async () => {
    const c = window.edgecapDemo.state.captioner;
    const blob = await (await fetch('/build/reference/chelsea.png')).blob();
    const fromFile = await c.caption(new File([blob], 'chelsea.png'));
    const img = new Image();
    img.src = URL.createObjectURL(blob);
    await img.decode();
    const fromImg = await c.caption(img);
    let refused = '';
    try {
      await c.caption(new File(['not pixels'], 'notes.jpg'));
    } catch (e) {
      refused = e.message;
    }
    return [fromFile.caption.text, fromImg.caption.text, refused];
  });
  assert.deepEqual(got.slice(0, 2), [want, want]);
  assert.match(got[2], /notes\.jpg: not an image this browser can decode/);
});
