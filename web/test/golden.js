// Where the recorded Python runs are (scripts/record_golden.py) and the hostile corpus
// (scripts/make_hostile_models.py): EDGECAP_GOLDEN / EDGECAP_HOSTILE, default under web/build/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const webRoot = path.resolve(here, '..');
export const repoRoot = path.resolve(webRoot, '..');

function dirOf(env, dflt, how) {
  const dir = path.resolve(repoRoot, process.env[env] ?? dflt);
  if (!fs.existsSync(dir)) {
    throw new Error(`${dir} is missing: make it first with \`${how} --out ${path.relative(repoRoot, dir)}\` (from the repository root)`);
  }
  return dir;
}

export const goldenDir = () => dirOf('EDGECAP_GOLDEN', 'web/build/golden', 'python scripts/record_golden.py');
export const hostileDir = () => dirOf('EDGECAP_HOSTILE', 'web/build/hostile', 'python scripts/make_hostile_models.py');

/** The golden files whose names match `re`, sorted. */
export function goldenFiles(re) {
  const dir = goldenDir();
  const files = fs.readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => path.join(dir, f));
  if (!files.length) throw new Error(`no files matching ${re} in ${dir}`);
  return files;
}

export const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));

/** Base64 little-endian float32 → `rows` Float32Array rows of `cols`. */
export function floats(b64, rows, cols) {
  const bytes = Buffer.from(b64, 'base64');
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  return Array.from({ length: rows }, (_, r) => all.slice(r * cols, (r + 1) * cols));
}
