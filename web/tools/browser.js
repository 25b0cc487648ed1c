// Shared by the page's tests and the browser tools: `edgecap demo` on a free port, and Debian's
// Chromium driven by puppeteer-core (nothing downloads a browser).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

export const webRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(webRoot, '..');

/** Chromium's path: $CHROMIUM, else Debian's. */
export function chromiumPath() {
  const p = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(p)) throw new Error(`${p}: no Chromium here: apt-get install chromium (or set CHROMIUM)`);
  return p;
}

/**
 * Start `edgecap demo` (it builds the web files first) and resolve when it serves.
 * @param {string[]} extra more arguments (e.g. `['--photos', dir]`)
 * @returns {Promise<{url: string, stop: () => void}>} url: the page, e.g. http://127.0.0.1:PORT/demo/
 */
export function startDemo(extra = []) {
  const python = process.env.EDGECAP_PYTHON ?? 'python';
  const child = spawn(python, ['-m', 'edgecap.cli', 'demo', '--port', '0', ...extra], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`edgecap demo exited with ${code}: ${stderr.trim()}`)));
    child.stdout.once('data', (d) => resolve({ url: String(d).trim().split('\n')[0], stop: () => child.kill() }));
  });
}

/** Headless Chromium with the flags a closed network needs. */
export function launch(args = []) {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', ...args],
  });
}

/** A new page on `url`, once the demo has loaded its default model; returns `[page, ready]`. */
export async function openDemo(browser, url, before = null) {
  const page = await browser.newPage();
  if (before) await before(page);
  await page.goto(url);
  const ready = await page.evaluate(() => window.edgecapDemo.ready);
  return [page, ready];
}
