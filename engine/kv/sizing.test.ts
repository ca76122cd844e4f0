// KV-cache sizing against the backend's binding limit: the arithmetic, and on a real WebGPU adapter
// (lavapipe in CI) a cache over the limit refused at start, one under it serving a request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { kvPagesFor } from './sizing.ts';
import { defaultSamplingParams } from '../sampler/sampler.ts';

const demo = { bytesPerEntry: 3 * 2 * 256 * 4, tensors: 6, pageSize: 16 }; // the demo model's block decoder
const MiB = 2 ** 20;

test('no binding limit: pages are the budget over the page size', () => {
  assert.equal(kvPagesFor(512, demo), Math.floor((512 * MiB) / (demo.bytesPerEntry * 16)));
  assert.throws(() => kvPagesFor(0.01, demo), /--kv-cache-mb 0.01 is too small/);
});

test('a cache whose K/V tensors exceed the binding limit is refused, naming the flag, the limit and what fits', () => {
  const limit = 128 * MiB;
  assert.equal(kvPagesFor(768, demo, limit), (768 * MiB) / (demo.bytesPerEntry * 16), '768 MiB = 6 tensors of exactly 128 MiB fits');
  let message = '';
  assert.throws(
    () => kvPagesFor(1024, demo, limit, 'webgpu'),
    (e: Error) => {
      message = e.message;
      return true;
    },
  );
  assert.match(message, /--kv-cache-mb 1024 does not fit the webgpu device/);
  assert.match(message, /134217728-byte storage binding limit \(maxStorageBufferBindingSize\)/);
  const suggested = Number(/Use --kv-cache-mb (\d+) or less/.exec(message)?.[1]);
  assert.equal(suggested, 768);
  assert.doesNotThrow(() => kvPagesFor(suggested, demo, limit));
  // One layer, as in the issue: 512 MiB is two tensors of 256 MiB.
  assert.throws(() => kvPagesFor(512, { bytesPerEntry: 2 * 2048 * 4, tensors: 2, pageSize: 16 }, limit), /Use --kv-cache-mb 256 or less/);
});

test('webgpu (lavapipe): --kv-cache-mb over the binding limit refuses to start; under it the engine serves', async (t) => {
  const { WebGpuBackend, webgpuUnavailableReason } = await import('../../kernels/webgpu/backend.ts');
  const probe = await WebGpuBackend.create();
  if (!probe) {
    const reason = webgpuUnavailableReason();
    if (process.env.CI === 'true') assert.fail(`no WebGPU adapter in CI: ${reason}`);
    t.skip(`no WebGPU adapter: ${reason}`);
    return;
  }
  const limit = probe.maxTensorBytes;
  probe.dispose();
  // Refused: `blockserve serve` in its own process (a second Dawn device in one process after a disposed
  // one can crash Dawn, so each start gets a fresh process, as in production). The demo model's cache
  // is 6 tensors: 6 x limit + 64 MiB is over.
  const overMb = Math.ceil((6 * limit) / MiB) + 64;
  const entry = fileURLToPath(new URL('../../server/testing/serve-child.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', entry, '--backend', 'webgpu', '--kv-cache-mb', String(overMb), '--port', '0', '--log-level', 'error'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const [code] = await once(child, 'exit');
  assert.notEqual(code, 0, out);
  assert.match(out, new RegExp(`--kv-cache-mb ${overMb} does not fit the webgpu device`));
  assert.match(out, new RegExp(`${limit}-byte storage binding limit`));
  assert.match(out, /Use --kv-cache-mb \d+ or less/);
  // Under the limit: starts and serves.
  const { createLocalEngine } = await import('../create.ts');
  const { engine } = await createLocalEngine({ backend: 'webgpu', kvCacheMb: 16, maxNumSeqs: 2, maxQueue: 2 });
  try {
    const events = [];
    for await (const e of engine.submit({
      id: 'w',
      promptIds: [1, 2, 3, 4, 5],
      sampling: { ...defaultSamplingParams(), maxTokens: 2, ignoreEos: true },
    }))
      events.push(e);
    assert.deepEqual(events.at(-1), { type: 'finished', reason: 'length', usage: { promptTokens: 5, completionTokens: 2 } });
  } finally {
    await engine.close();
  }
});
