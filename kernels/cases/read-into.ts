// The read-into contract every backend keeps (engine/model/head.ts reads each step's logits this way):
// values land in the caller's buffer, the result is a view of that buffer, and a buffer too small is an
// error rather than a partial copy.
import assert from 'node:assert/strict';
import type { Backend } from '../backend.ts';

export async function checkReadInto(b: Backend): Promise<void> {
  const data = Float32Array.from({ length: 300 }, (_, i) => i * 0.5 - 7);
  const t = b.upload(data, [3, 100], 'f32');
  const into = new Float32Array(400).fill(99);
  const got = await b.read(t, 250, into);
  assert.equal(got.length, 250);
  assert.equal(got.buffer, into.buffer, 'the result is a view of the destination');
  assert.deepEqual(Array.from(got), Array.from(data.subarray(0, 250)));
  assert.equal(into[250], 99, 'nothing past count is written');
  const whole = await b.read(t, undefined, into);
  assert.deepEqual(Array.from(whole), Array.from(data));
  await assert.rejects(b.read(t, undefined, new Float32Array(299)), /destination/);
  b.free(t);
}
