// What the parity suites (parity, authors-parity, bf16-agreement) share: reading a fixture's raw f32
// tensor, the max-abs difference they bound, and a backend that skips where it cannot run (except in CI).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBackend, type BackendName } from '../engine/backends.ts';
import type { Backend } from '../kernels/backend.ts';

/** A fixture file of little-endian f32 values, copied out of the file's buffer. */
export function f32(dir: string, file: string): Float32Array {
  const buf = readFileSync(join(dir, file));
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** max |a_i - b_i|; the lengths must agree (`what` names the values in that message). */
export function maxAbsDiff(a: Float32Array, b: Float32Array, what = 'logit'): number {
  assert.equal(a.length, b.length, `${what} counts differ`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Backends that must run here: in CI (CI=true) a missing backend fails instead of skipping. */
export async function backendOrSkip(name: BackendName, t: { skip: (m: string) => void }): Promise<Backend | null> {
  try {
    return await makeBackend(name);
  } catch (e) {
    if (process.env.CI === 'true') throw e;
    t.skip(`backend ${name} unavailable: ${(e as Error).message}`);
    return null;
  }
}
