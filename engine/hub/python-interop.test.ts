// The cache is shared with Python's huggingface_hub, both ways: what Python downloads (from the same
// fake Hub, via HF_ENDPOINT) we reuse without a download, and what we download Python finds offline.
// Needs a Python with huggingface_hub: BLOCKSERVE_TEST_PYTHON, else CI's /opt/blockserve-hub-venv
// (.ci/setup.d/60-hub.sh), else the dev venv /work/venv-ref; skips with the reason otherwise.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModel } from '../resolve.ts';
import { pullHubModel } from './hub-pull.ts';
import { FakeHub, sha256 } from './testing/fake-hub.ts';

const PYTHON =
  process.env.BLOCKSERVE_TEST_PYTHON ??
  ['/opt/blockserve-hub-venv/bin/python', '/work/venv-ref/bin/python'].find((p) => existsSync(p)) ??
  'python3';
const probe = spawnSync(PYTHON, ['-c', 'import huggingface_hub; print(huggingface_hub.__version__)'], { encoding: 'utf8' });
const skip =
  probe.status === 0 ? false : `needs ${PYTHON} with huggingface_hub (${(probe.stderr || String(probe.error)).trim().split('\n').at(-1)})`;
if (skip) console.log(`# skipped: ${skip}`);

const FIX = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
const FILES = {
  'config.json': readFileSync(join(FIX, 'vanilla_tiny', 'config.json')),
  'tokenizer.json': readFileSync(join(FIX, 'byte-tokenizer', 'tokenizer.json')),
  'model.safetensors': readFileSync(join(FIX, 'vanilla_tiny', 'model.safetensors')),
};

/** Runs Python asynchronously (the fake Hub lives in this process and must keep answering). */
function python(code: string, env: Record<string, string>): Promise<string> {
  const child = spawn(PYTHON, ['-c', code], {
    env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`python failed (${code}): ${err}`)))),
  );
}

test('python fills the cache, blockserve reuses it (no download); blockserve fills it, python reads it offline', { skip }, async () => {
  const hub = await new FakeHub().start();
  try {
    hub.addRepo('org/shared', FILES);
    const cacheA = join(mkdtempSync(join(tmpdir(), 'bs-py-')), 'hub');
    const pyDir = await python(
      "from huggingface_hub import snapshot_download; print(snapshot_download('org/shared', allow_patterns=['config.json','tokenizer.json','model.safetensors']))",
      { HF_ENDPOINT: hub.hubUrl, HF_HUB_CACHE: cacheA, HF_HUB_DISABLE_TELEMETRY: '1', HF_HUB_DISABLE_XET: '1' },
    );
    const settingsA = { endpoint: hub.hubUrl, hubCache: cacheA, offline: false, blockserveCache: join(cacheA, '..', 'bs') };
    const offline = await pullHubModel('org/shared', { ...settingsA, offline: true });
    assert.equal(realpathSync(offline.dir), realpathSync(pyDir));
    hub.log.length = 0;
    await pullHubModel('org/shared', settingsA, { retryDelayMs: 0 });
    assert.ok(!hub.log.some((r) => r.host === 'cdn' || (r.method === 'GET' && r.path.includes('/resolve/'))), 'nothing downloaded again');
    await resolveModel({ model: offline.dir });

    const cacheB = join(mkdtempSync(join(tmpdir(), 'bs-py-')), 'hub');
    const ours = await pullHubModel('org/shared', { ...settingsA, hubCache: cacheB }, { retryDelayMs: 0 });
    const found = await python(
      'from huggingface_hub import hf_hub_download, snapshot_download\n' +
        "print(snapshot_download('org/shared', local_files_only=True))\n" +
        "print(hf_hub_download('org/shared', 'model.safetensors', local_files_only=True))",
      { HF_HUB_CACHE: cacheB, HF_HUB_OFFLINE: '1' },
    );
    const [snap, weights] = found.split('\n');
    assert.equal(snap, ours.dir);
    assert.equal(sha256(readFileSync(weights!)), sha256(FILES['model.safetensors']));
  } finally {
    await hub.close();
  }
});
