// Faults injected on purpose (engine/faults.ts, reachable only through the test entry's
// BLOCKSERVE_TEST_FAULTS) into a real `blockserve serve` process with the random demo config: an exception
// inside a step, the engine's worker thread exiting, an out-of-memory allocation in the backend. Each
// time every in-flight stream ends with an error event and [DONE], a non-streamed request gets a 503
// with a message, /health and /ready turn 503, the death is logged once and counted in /metrics, and
// the process exits 1 within the grace period (the orchestrator restarts it: see server/main.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('./testing/serve-child.ts', import.meta.url));
const demoConfig = fileURLToPath(new URL('../models/demo/config.yaml', import.meta.url));
const GRACE_S = 5;

async function startChild(faults: Record<string, number>) {
  const { cpuBackendAvailable } = await import('../kernels/cpu/backend.ts');
  const backend = cpuBackendAvailable() ? 'cpu' : 'reference';
  // The random-weight b4_5 config, not the (much faster) trained default: its steps are slow enough that
  // all three requests below are admitted before the fault fires at step 12.
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      entry,
      '--config',
      demoConfig,
      '--backend',
      backend,
      '--kv-cache-mb',
      '32',
      '--max-num-seqs',
      '4',
      '--grace-s',
      String(GRACE_S),
      '--port',
      '0',
      '--log-level',
      'info',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BLOCKSERVE_TEST_FAULTS: JSON.stringify(faults) },
    },
  );
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      log += d;
      const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code}: ${log}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 3000 && (await fetch(`${base}/ready`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 20));
  return { child, base, log: () => log };
}

const post = (base: string, body: object) =>
  fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'The quick brown fox', max_tokens: 300, ignore_eos: true, ...body }),
  });

const FAULTS: { name: string; faults: Record<string, number>; reason: RegExp }[] = [
  { name: 'an exception inside a step', faults: { stepThrowsAt: 12 }, reason: /injected fault: step 12 threw/ },
  { name: 'the worker thread exiting', faults: { workerExitsAt: 12 }, reason: /engine worker exited with code 70/ },
  { name: 'an out-of-memory allocation in the backend', faults: { oomAt: 12 }, reason: /out of memory: injected allocation failure/ },
];

describe('injected engine faults (real server process, demo model)', () => {
  for (const f of FAULTS) {
    test(`${f.name}: streams end with an error and [DONE], non-streamed 503, /health 503, exit 1 within the grace period`, async () => {
      const { child, base, log } = await startChild(f.faults);
      const exited = once(child, 'exit');
      const health = await fetch(`${base}/health`);
      assert.equal(health.status, 200, 'alive before the fault');
      const [s1, s2, plain] = await Promise.all([post(base, { stream: true }), post(base, { stream: true }), post(base, {})]);
      const tFault = performance.now();
      for (const s of [s1, s2]) {
        assert.equal(s.status, 200);
        const text = await s.text();
        assert.match(text, /"code":"engine_dead"/, text.slice(-400));
        assert.match(text, f.reason);
        assert.ok(text.trimEnd().endsWith('data: [DONE]'), `stream ends with [DONE]: ${text.slice(-200)}`);
      }
      assert.equal(plain.status, 503);
      const err = (await plain.json()).error;
      assert.equal(err.code, 'engine_dead');
      assert.match(err.message, f.reason);
      // While the process lingers before exiting: health, readiness and new requests all say why.
      const [h, r, late, metrics] = await Promise.all([
        fetch(`${base}/health`),
        fetch(`${base}/ready`),
        post(base, {}),
        fetch(`${base}/metrics`),
      ]);
      assert.equal(h.status, 503);
      assert.equal((await h.json()).status, 'engine_dead');
      assert.equal(r.status, 503);
      assert.equal(late.status, 503);
      assert.equal((await late.json()).error.code, 'engine_dead');
      const m = await metrics.text();
      assert.match(m, /blockserve:engine_dead\{model="[^"]+"\} 1/);
      assert.match(m, /blockserve:engine_failures_total\{model="[^"]+"\} 1/);
      const [code] = await exited;
      assert.equal(code, 1, log());
      assert.ok(performance.now() - tFault < GRACE_S * 1000, 'exited within the grace period');
      assert.equal(log().match(/engine died/g)?.length, 1, 'the death is logged once');
      assert.match(log(), f.reason);
    });
  }

  test('no faults unless asked: the same server without the hook serves to the end', async () => {
    const { child, base } = await startChild({});
    const res = await post(base, { max_tokens: 20 });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).choices[0].finish_reason, 'length');
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    assert.equal((await exited)[0], 0);
  });
});
