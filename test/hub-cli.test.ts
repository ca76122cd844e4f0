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
import yazl from 'yazl';
import { pullAuthorsModel } from '../engine/hub/authors-pull.ts';
import { FakeArchiveHosts } from '../engine/hub/testing/fake-archive-hosts.ts';
import { presetSpec } from '../engine/config/presets.ts';
import { randomWeights } from '../engine/model/random.ts';
import { writeSafetensors } from '../engine/weights/safetensors.ts';

const ROOT = join(import.meta.dirname, '..');
const FIX = join(ROOT, 'test', 'fixtures');
const BIN = join(ROOT, 'bin', 'blockserve.js');

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: env.HOME ?? tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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

    const gen = await cli(
      ['generate', '--model', 'org/tiny', '--prompt-ids', '5,6,7', '--max-tokens', '3', '--backend', 'reference', '--json'],
      { ...env, HF_HUB_OFFLINE: '1' },
    );
    assert.equal(gen.code, 0, gen.stderr);
    assert.equal(JSON.parse(gen.stdout).output_ids.length, 3);

    const missing = await cli(['pull', 'nobody/nothing'], env);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
    assert.match(
      missing.stderr,
      /^blockserve: model repository nobody\/nothing not found on http:\/\/127\.0\.0\.1:\d+ \(if it is private, set HF_TOKEN\); no local path 'nobody\/nothing' exists either\n$/,
    );

    const offline = await cli(['pull', 'block_main_b4_85'], { ...env, HF_HUB_OFFLINE: '1' });
    assert.equal(offline.code, 1);
    assert.match(
      offline.stderr,
      /^blockserve: HF_HUB_OFFLINE=1 and block_main_b4_85 is not in the cache .*bs\/authors\/block_main_b4_85: run `blockserve pull block_main_b4_85` while online\n$/,
    );

    const badRev = await cli(['pull', 'block_main_b4_85', '--revision', 'v1'], env);
    assert.match(badRev.stderr, /--revision applies to Hugging Face Hub ids \(ORG\/NAME\) only/);
  } finally {
    await hub.close();
  }
});

/** `blockserve serve ...` as a child process; resolves once /ready says yes. */
async function startServe(args: string[], env: Record<string, string>) {
  const child = spawn(
    process.execPath,
    [BIN, 'serve', ...args, '--port', '0', '--backend', 'reference', '--kv-cache-mb', '8', '--max-num-seqs', '2'],
    {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  };
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
    for (let i = 0; i < 1200 && (await fetch(`${base}/ready`)).status !== 200; i++) {
      if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { base, log: () => log, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function completeTwoTokens(base: string, model: string): Promise<void> {
  const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] };
  assert.deepEqual(
    models.data.map((m) => m.id),
    [model],
  );
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt: 'hi', max_tokens: 2, temperature: 0, ignore_eos: true }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens, 2);
}

test('serve --model ORG/NAME downloads, then serves under the Hub id', async () => {
  const { hub, env } = await setup();
  const server = await startServe(['--model', 'org/tiny'], env);
  try {
    await completeTwoTokens(server.base, 'org/tiny');
    assert.ok(
      hub.log.some((r) => r.host === 'cdn'),
      'the weights came from the fake Hub',
    );
    assert.match(server.log(), /org\/tiny@main: commit [0-9a-f]{40}/);
  } finally {
    await server.stop();
    await hub.close();
  }
});

test('serve --model block_main_b4_5: the released name, pulled from a Dropbox-like host with the real release table, served from BLOCKSERVE_CACHE offline', async () => {
  const hosts = await new FakeArchiveHosts().start();
  const root = mkdtempSync(join(tmpdir(), 'bs-hubcli-'));
  try {
    // Random bf16 weights in the released architecture stand in for the authors' file (same names and shapes).
    const weights = join(root, 'model.safetensors');
    writeSafetensors(weights, [...randomWeights(presetSpec('block_main_b4_5'), { dtype: 'bf16' }).values()]);
    const zip = new yazl.ZipFile();
    zip.addFile(weights, 'results/block_main_b4_5/checkpoint-10000/model.safetensors', { compress: false });
    zip.end();
    const chunks: Buffer[] = [];
    for await (const c of zip.outputStream) chunks.push(c as Buffer);
    hosts.files.set('folder', Buffer.concat(chunks));
    const settings = { endpoint: 'http://127.0.0.1:9', hubCache: join(root, 'hub'), offline: false, blockserveCache: join(root, 'bs') };
    const pulled = await pullAuthorsModel('block_main_b4_5', settings, {
      links: [hosts.dropboxLink('folder', 1)],
      allNames: ['block_main_b4_5'],
    });
    assert.equal(pulled.dir, join(root, 'bs', 'authors', 'block_main_b4_5'));
    const server = await startServe(['--model', 'block_main_b4_5'], {
      BLOCKSERVE_CACHE: join(root, 'bs'),
      HF_HUB_OFFLINE: '1',
      HOME: root,
    });
    try {
      await completeTwoTokens(server.base, 'block_main_b4_5');
    } finally {
      await server.stop();
    }
  } finally {
    await hosts.close();
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
