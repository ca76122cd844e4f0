// `blockserve pull`, `generate --model ORG/NAME` and `serve --model ORG/NAME` as a user runs them (child
// processes of bin/blockserve.js), against the local fake Hub: the environment variables are honoured
// (HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE), errors are one clear line, and the served model is named
// after its Hub id. No test touches the internet.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { FakeHub } from '../engine/hub/testing/fake-hub.ts';
import { progressPrinter } from '../cli/pull.ts';

const ROOT = join(import.meta.dirname, '..');
const FIX = join(ROOT, 'test', 'fixtures');
const BIN = join(ROOT, 'bin', 'blockserve.js');

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: env.HOME ?? tmpdir(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

async function setup() {
  const hub = await new FakeHub().start();
  hub.addRepo('org/tiny', {
    'config.json': readFileSync(join(FIX, 'vanilla_tiny', 'config.json')),
    'tokenizer.json': readFileSync(join(FIX, 'byte-tokenizer', 'tokenizer.json')),
    'model.safetensors': readFileSync(join(FIX, 'vanilla_tiny', 'model.safetensors')),
  });
  const root = mkdtempSync(join(tmpdir(), 'bs-hubcli-'));
  const env = { HF_ENDPOINT: hub.hubUrl, HF_HUB_CACHE: join(root, 'hub'), BLOCKSERVE_CACHE: join(root, 'bs'), HOME: root };
  return { hub, env, root };
}

test('pull, then generate offline from the cache; errors are one line', async () => {
  const { hub, env } = await setup();
  try {
    const pulled = await cli(['pull', 'org/tiny'], env);
    assert.equal(pulled.code, 0, pulled.stderr);
    const dir = pulled.stdout.trim();
    assert.match(dir, /models--org--tiny\/snapshots\/[0-9a-f]{40}$/);
    assert.match(pulled.stderr, /model\.safetensors: 100% 0\.6 MiB \/ 0\.6 MiB/, 'log lines, not a bar, when stderr is not a terminal');
    assert.match(pulled.stderr, /serve it with: blockserve serve --model org\/tiny/);

    const gen = await cli(['generate', '--model', 'org/tiny', '--prompt-ids', '5,6,7', '--max-tokens', '3', '--backend', 'reference', '--json'], { ...env, HF_HUB_OFFLINE: '1' });
    assert.equal(gen.code, 0, gen.stderr);
    assert.equal(JSON.parse(gen.stdout).output_ids.length, 3);

    const missing = await cli(['pull', 'nobody/nothing'], env);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
    assert.match(missing.stderr, /^blockserve: model repository nobody\/nothing not found on http:\/\/127\.0\.0\.1:\d+ \(if it is private, set HF_TOKEN\); no local path 'nobody\/nothing' exists either\n$/);

    const offline = await cli(['pull', 'block_main_b4_85'], { ...env, HF_HUB_OFFLINE: '1' });
    assert.equal(offline.code, 1);
    assert.match(offline.stderr, /^blockserve: HF_HUB_OFFLINE=1 and block_main_b4_85 is not in the cache .*bs\/authors\/block_main_b4_85: run `blockserve pull block_main_b4_85` while online\n$/);

    const badRev = await cli(['pull', 'block_main_b4_85', '--revision', 'v1'], env);
    assert.match(badRev.stderr, /--revision applies to Hugging Face Hub ids \(ORG\/NAME\) only/);
  } finally {
    await hub.close();
  }
});

test('serve --model ORG/NAME downloads, then serves under the Hub id', async () => {
  const { hub, env } = await setup();
  const child = spawn(process.execPath, [BIN, 'serve', '--model', 'org/tiny', '--port', '0', '--backend', 'reference', '--kv-cache-mb', '8', '--max-num-seqs', '2'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        log += d;
        const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${log}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 600 && (await fetch(`${base}/ready`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
    const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(models.data.map((m) => m.id), ['org/tiny']);
    const res = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'org/tiny', prompt: 'hi', max_tokens: 2, temperature: 0, ignore_eos: true }) });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens, 2);
    assert.ok(hub.log.some((r) => r.host === 'cdn'), 'the weights came from the fake Hub');
    assert.match(log, /org\/tiny@main: commit [0-9a-f]{40}/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await hub.close();
  }
});

function fakeStream(tty: boolean) {
  const chunks: string[] = [];
  return { stream: { isTTY: tty, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream, chunks };
}

test('progressPrinter: a redrawn bar on a terminal, a line per 10% otherwise', () => {
  const t = fakeStream(true);
  const bar = progressPrinter(t.stream);
  for (let d = 0; d <= 100; d += 5) bar({ label: 'model.safetensors', done: d * 2 ** 20, total: 100 * 2 ** 20 });
  bar.end();
  assert.ok(t.chunks.slice(0, -1).every((c) => c.startsWith('\r')));
  assert.match(t.chunks.at(-2)!, /\[#{30}\] 100\.0 MiB \/ 100\.0 MiB/);
  assert.equal(t.chunks.at(-1), '\n');
  const l = fakeStream(false);
  const lines = progressPrinter(l.stream);
  for (let d = 0; d <= 100; d += 1) lines({ label: 'model.safetensors', done: d, total: 100 });
  assert.equal(l.chunks.length, 11);
  assert.ok(l.chunks.every((c) => c.endsWith('\n') && !c.includes('\r')));
  assert.match(l.chunks[5]!, /^model\.safetensors: 50% /);
});
