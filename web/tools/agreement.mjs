#!/usr/bin/env node
// How often the page's caption of a JPEG (decoded by the browser) equals the Python runtime's
// (decoded by Pillow, which decodes a large JPEG at a reduced DCT scale first).
//
//   node web/tools/agreement.mjs --photos ../shared/data/flickr8k/Images \
//     --list ../shared/data/flickr8k/Flickr_8k.testImages.txt --limit 100 [--model NAME] [--threads N | --compat]
//
// Runs `edgecap caption --json` on the photos (the Python reference), serves them with
// `edgecap demo --photos`, captions each through the page, and prints the agreement: captions
// identical, and the log-probability difference of the others (docs/web.md reports it).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { launch, openDemo, repoRoot, startDemo } from './browser.js';

const { values: a } = parseArgs({
  options: { photos: { type: 'string' }, list: { type: 'string' }, limit: { type: 'string', default: '100' }, model: { type: 'string' }, threads: { type: 'string' }, compat: { type: 'boolean', default: false } },
});
if (!a.photos) throw new Error('--photos DIR is required');
let names = a.list ? fs.readFileSync(a.list, 'utf8').split(/\r?\n/).filter(Boolean) : fs.readdirSync(a.photos).filter((f) => /\.jpe?g$/i.test(f)).sort();
names = names.slice(0, Number(a.limit));
const files = names.map((n) => path.resolve(a.photos, n));
const python = process.env.EDGECAP_PYTHON ?? 'python';
const args = ['-m', 'edgecap.cli', 'caption', '--json', ...(a.model ? ['--model', a.model] : []), ...files];
const run = spawnSync(python, args, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 1 << 28 });
if (run.status !== 0) throw new Error(`edgecap caption failed (${run.status}): ${run.stderr}`);
const reference = new Map(run.stdout.trim().split('\n').map((l) => JSON.parse(l)).map((r) => [path.basename(r.image), r]));
// which photos Pillow decodes at a reduced DCT scale for the 224-pixel input (Image.draft), which a browser cannot
const draftProbe = `import sys, json
from PIL import Image
out = []
for p in sys.argv[1:]:
    im = Image.open(p); size = im.size
    if im.format == "JPEG": im.draft("RGB", (224, 224))
    out.append(im.size != size)
print(json.dumps(out))`;
const drafted = JSON.parse(spawnSync(python, ['-c', draftProbe, ...files], { encoding: 'utf8', maxBuffer: 1 << 26 }).stdout);
const reduced = new Set(names.filter((_, i) => drafted[i]));

const demo = await startDemo(['--photos', path.resolve(a.photos)]);
const browser = await launch();
try {
  const query = new URLSearchParams();
  if (a.threads) query.set('threads', String(Number(a.threads)));
  if (a.compat) query.set('wasm', 'compat'); // the build browsers without relaxed SIMD load
  const [page, ready] = await openDemo(browser, `${demo.url}?${query}`);
  if (!ready) throw new Error('the page did not load its model');
  if (a.model) await page.evaluate((m) => window.edgecapDemo.loadModel(m), a.model);
  let same = 0;
  const diffs = [], differ = [];
  for (const name of names) {
    const got = await page.evaluate((u) => window.edgecapDemo.captionUrl(u), `/examples/${encodeURIComponent(name)}`);
    const want = reference.get(name);
    if (got.caption.text === want.caption) {
      same++;
      diffs.push(Math.abs(got.caption.logProb - want.log_prob));
    } else {
      differ.push({ photo: name, pillow_reduced_scale: reduced.has(name), page: got.caption.text, python: want.caption, page_log_prob: got.caption.logProb, python_log_prob: want.log_prob });
    }
  }
  const exact = diffs.filter((d) => d === 0).length;
  const summary = {
    threads: await page.evaluate(() => window.edgecapDemo.threads),
    wasm_build: a.compat ? 'compat' : 'default',
    photos: names.length,
    captions_identical: same,
    decoded_at_full_scale_by_pillow: names.length - reduced.size,
    identical_of_those: names.filter((n) => !reduced.has(n) && !differ.some((d) => d.photo === n)).length,
    decoded_at_reduced_scale_by_pillow: reduced.size,
    identical_of_those_reduced: names.filter((n) => reduced.has(n) && !differ.some((d) => d.photo === n)).length,
    identical_log_prob_exact: exact,
    identical_log_prob_max_abs_diff: diffs.length ? Math.max(...diffs) : null,
    different: differ,
  };
  console.log(JSON.stringify(summary, null, 1));
} finally {
  await browser.close();
  demo.stop();
}
