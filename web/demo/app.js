// The demo page: pick, drop or photograph → the default pipeline's caption, its n-best with
// log-probabilities, the detector's tags with boxes, and each word's attention over the photo.
// Everything runs here (LiteRT.js, WebAssembly); the model and the WASM are cached by sw.js.
import { loadLiteRt } from '@litertjs/core';
import { simd } from 'wasm-feature-detect';

import { Captioner, pixelsFrom } from '../src/captioner.js';

const WASM_DIR = '/node_modules/@litertjs/core/wasm/';
const MANIFEST = '/models/manifest.json';
const $ = (id) => document.getElementById(id);

const state = { captioner: null, photo: null, result: null, manifest: null, stream: null, captioned: 0 };
// LiteRT.js's single-threaded WASM build by default; `?threads=N` (N > 1) asks for the threaded
// build with N threads (the page is served cross-origin isolated, which it needs). The threaded
// build is faster but does not start offline: Chromium 156 aborts its workers' script when the
// service worker serves it from its cache (docs/web.md#serving).
const params = new URLSearchParams(location.search);
const asked = Number(params.get('threads'));
const threads = asked >= 1 ? Math.floor(asked) : 1;
const compile = threads > 1 && crossOriginIsolated ? { cpuOptions: { numThreads: threads } } : {};

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
  $('status').hidden = true;
}

function status(message) {
  $('error').hidden = true;
  $('status').textContent = message;
  $('status').hidden = !message;
}

/** A photo file: shown, and its decoded pixels (the core's `pixelsFrom`: as Pillow decodes). */
async function decode(blob, name) {
  const file = blob instanceof File ? blob : new File([blob], name, { type: blob.type });
  const pixels = await pixelsFrom(file);
  await showPhoto(file);
  return pixels;
}

/** Shows a photo (an <img>, under the boxes and maps). */
async function showPhoto(blob) {
  const img = $('photo');
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  img.hidden = false;
  await img.decode();
  clearOverlay();
}

async function loadModel(name) {
  status('Loading the model…');
  $('model').disabled = true;
  try {
    const t0 = performance.now();
    const previous = state.captioner;
    state.captioner = await Captioner.fromManifest(MANIFEST, name, { compile });
    previous?.close(); // its WASM memory
    const entry = state.captioner.entry;
    status('');
    $('engine').textContent = `Model ${entry.name} (${(entry.bytes / 1e6).toFixed(1)} MB), loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s.`;
    if (state.photo) await caption(state.photo);
  } catch (e) {
    showError(e.message);
  } finally {
    $('model').disabled = false;
  }
}

async function caption(photo) {
  if (!state.captioner) return;
  state.photo = photo;
  status('Captioning…');
  const result = await state.captioner.caption(photo);
  state.result = result;
  render(result);
  status('');
  state.captioned += 1; // photos captioned and shown so far (tests wait on it)
  return result;
}

function render(result) {
  const m = state.captioner.metadata;
  const cap = $('caption');
  cap.replaceChildren(
    ...result.caption.words.flatMap((w, i) => {
      const span = document.createElement('span');
      span.className = 'word';
      span.textContent = w;
      span.tabIndex = 0;
      const show = () => drawAttention(result.caption.attention[i], span);
      span.addEventListener('mouseenter', show);
      span.addEventListener('focus', show);
      span.addEventListener('click', show);
      span.addEventListener('mouseleave', () => drawBoxes(result.tags));
      return i ? [document.createTextNode(' '), span] : [span];
    }),
  );
  cap.hidden = false;
  $('hint').hidden = !(m.attention?.overGrid && result.caption.attention.length);
  $('nbest').replaceChildren(
    ...result.captions.map((c) => {
      const li = document.createElement('li');
      li.textContent = c.text;
      const lp = document.createElement('span');
      lp.className = 'logp';
      lp.textContent = `log\u00a0P\u00a0${c.logProb.toFixed(3)}`;
      li.append(lp);
      return li;
    }),
  );
  $('tags').replaceChildren(
    ...(result.tags.length
      ? result.tags.map((t) => {
          const li = document.createElement('li');
          li.textContent = `${t.word} ${(t.score * 100).toFixed(0)}%`;
          return li;
        })
      : [Object.assign(document.createElement('li'), { textContent: 'none' })]),
  );
  $('constraints').textContent = result.constraints.length
    ? `The caption was made to say: ${result.constraints.join(', ')} (constrained beam search).`
    : '';
  const t = result.timings;
  $('timings').textContent = `encode ${t.encode.toFixed(0)} ms · search ${(t.search + t.constrained).toFixed(0)} ms · total ${t.total.toFixed(0)} ms`;
  $('details').hidden = false;
  drawBoxes(result.tags);
}

/** Remove what is drawn over the photo (boxes, an attention map). */
function clearOverlay() {
  $('overlay').replaceChildren();
  document.querySelectorAll('#caption .word.active').forEach((s) => s.classList.remove('active'));
}

/** The detector's boxes over the photo, as positioned elements (percentages of the photo). */
function drawBoxes(tags) {
  clearOverlay();
  for (const t of tags) {
    if (!t.box) continue;
    const [y0, x0, y1, x1] = t.box;
    const box = document.createElement('div');
    box.className = 'box';
    Object.assign(box.style, { left: `${x0 * 100}%`, top: `${y0 * 100}%`, width: `${(x1 - x0) * 100}%`, height: `${(y1 - y0) * 100}%` });
    const label = document.createElement('span');
    label.textContent = t.word;
    box.append(label);
    $('overlay').append(box);
  }
}

/** One word's attention map over the image grid: a grid of shaded cells (the model's 7×7
 * locations), darker where the word looked less, blurred into a smooth map. */
function drawAttention(alpha, span) {
  const m = state.captioner.metadata;
  if (!alpha || !m.attention?.overGrid) return;
  clearOverlay();
  span.classList.add('active');
  const side = Math.round(Math.sqrt(m.attention.size));
  const heat = document.createElement('div');
  heat.className = 'heat';
  heat.style.gridTemplateColumns = `repeat(${side}, 1fr)`;
  const max = Math.max(...alpha);
  for (let i = 0; i < side * side; i++) {
    const cell = document.createElement('div');
    cell.style.background = `rgba(0, 0, 0, ${(0.82 * (1 - (max > 0 ? alpha[i] / max : 0))).toFixed(3)})`;
    heat.append(cell);
  }
  $('overlay').append(heat);
}

async function fromFile(file) {
  try {
    await caption(await decode(file, file.name));
  } catch (e) {
    showError(e.message);
  }
}

/** Buttons for the photos the server offers at /examples/ (edgecap demo: the repository's examples). */
async function showExamples() {
  try {
    const response = await fetch('/examples/list.json');
    if (!response.ok) return;
    const names = await response.json();
    for (const name of names) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = name.replace(/\.[^.]+$/, '');
      b.addEventListener('click', async () => {
        try {
          const r = await fetch(`/examples/${encodeURIComponent(name)}`);
          await caption(await decode(await r.blob(), name));
        } catch (e) {
          showError(e.message);
        }
      });
      $('examples').append(b);
    }
    $('examples').hidden = names.length === 0;
  } catch {
    // no examples offered: nothing to show
  }
}

async function startCamera() {
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  } catch (e) {
    showError(`The camera is not available (${e.message}).`);
    return;
  }
  const video = $('camera');
  video.srcObject = state.stream;
  video.hidden = false;
  $('photo').hidden = true;
  $('snap').hidden = false;
  await video.play();
}

async function snap() {
  const video = $('camera');
  const photo = await pixelsFrom(video);
  const frame = new OffscreenCanvas(photo.width, photo.height);
  frame.getContext('2d').putImageData(new ImageData(photo.data, photo.width, photo.height), 0, 0);
  await showPhoto(await frame.convertToBlob({ type: 'image/jpeg', quality: 0.92 }));
  state.stream.getTracks().forEach((t) => t.stop());
  video.hidden = true;
  $('snap').hidden = true;
  try {
    await caption(photo);
  } catch (e) {
    showError(e.message);
  }
}

async function main() {
  if (!(await simd())) {
    showError('This browser has no WebAssembly SIMD, which LiteRT.js needs: use a current Chrome, Edge, Firefox or Safari (iOS 16.4 or later).');
    return false;
  }
  // the service worker caches the WASM and the models for offline use (a test browser opts in with ?sw=1)
  if ('serviceWorker' in navigator && (!navigator.webdriver || params.has('sw'))) {
    navigator.serviceWorker.register('sw.js').catch(() => {});
  }
  try {
    // `?wasm=compat` loads the build for browsers without relaxed SIMD (which LiteRT.js picks for
    // them), to time and check it anywhere; otherwise LiteRT.js picks by the browser's features
    if (params.get('wasm') === 'compat') await loadLiteRt(`${WASM_DIR}litert_wasm_compat_internal.js`);
    else await loadLiteRt(WASM_DIR, compile.cpuOptions ? { threads: true } : {});
    const response = await fetch(MANIFEST);
    if (!response.ok) throw new Error(`${MANIFEST}: HTTP ${response.status}: build the web files first (edgecap demo does)`);
    state.manifest = await response.json();
  } catch (e) {
    showError(e.message);
    return false;
  }
  const select = $('model');
  for (const e of state.manifest.models) {
    const option = new Option(`${e.name}${e.name === state.manifest.default ? ' (default)' : ''}`, e.name, false, e.name === state.manifest.default);
    select.append(option);
  }
  select.addEventListener('change', () => loadModel(select.value));
  $('file').addEventListener('change', (ev) => ev.target.files[0] && fromFile(ev.target.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    drop.classList.add('dragging');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('dragging');
    if (ev.dataTransfer.files[0]) fromFile(ev.dataTransfer.files[0]);
  });
  $('camera-button').hidden = !navigator.mediaDevices?.getUserMedia;
  showExamples();
  $('camera-button').addEventListener('click', startCamera);
  $('snap').addEventListener('click', snap);
  await loadModel(null);
  return !!state.captioner;
}

// For tests and scripts: the page's state, and captioning from given pixels (no decoding).
window.edgecapDemo = {
  ready: main(),
  state,
  threads: compile.cpuOptions ? threads : 1,
  loadModel,
  /** Caption pixels already at each model's input size: `{captioner: number[], coco_detector: number[]}`. */
  async captionPixels(pixels) {
    const p = Object.fromEntries(Object.entries(pixels).map(([k, v]) => [k, Uint8Array.from(v)]));
    return plain(await state.captioner.caption({ pixels: p }));
  },
  async captionUrl(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    const blob = await response.blob();
    return plain(await caption(await decode(blob, url)));
  },
  plain,
};

/** A result as JSON-able data (attention maps as plain arrays). */
function plain(result) {
  const cap = (c) => ({ ...c, attention: c.attention.map((a) => Array.from(a)) });
  return { ...result, caption: cap(result.caption), captions: result.captions.map(cap) };
}
