// SIGTERM drain on a real process: readiness turns false, new requests get 503, in-flight streams
// finish within --grace-s or are aborted with a finish reason, and the process exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const entry = fileURLToPath(new URL('./testing/serve-child.ts', import.meta.url));

async function startChild(fake: object, extra: string[]) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', entry, '--fake-engine', JSON.stringify(fake), '--port', '0', '--log-level', 'info', ...extra],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  // The listen line carries the ephemeral port.
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      log += d;
      const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code}: ${log}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if ((await fetch(`${base}/ready`)).status === 200) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, base, log: () => log };
}

async function runStreams(client: OpenAI, count: number, maxTokens: number) {
  const started: Promise<void>[] = [];
  const results = Array.from({ length: count }, (_, i) => {
    let markStarted!: () => void;
    started.push(new Promise((r) => (markStarted = r)));
    return (async () => {
      // ignore_eos is a vLLM extension the SDK passes through untyped.
      const params = {
        model: 'fake-model',
        messages: [{ role: 'user' as const, content: `stream ${i}` }],
        max_tokens: maxTokens,
        ignore_eos: true,
        stream: true as const,
      };
      const stream = await client.chat.completions.create(params);
      let finish: string | null = null;
      let text = '';
      for await (const chunk of stream) {
        const c = chunk.choices[0];
        if (c?.delta.content) {
          text += c.delta.content;
          markStarted();
        }
        if (c?.finish_reason) finish = c.finish_reason;
      }
      return { finish, text };
    })();
  });
  await Promise.all(started);
  return results;
}

test('SIGTERM with 20 streams in flight: all finish or abort with a finish reason; exit 0', async () => {
  // Streams of 20 tokens at 20 ms end in ~0.4 s, inside the 1.5 s grace; streams of 2,000 tokens
  // would take 40 s and must be aborted when the grace period ends.
  const { child, base, log } = await startChild({ tokenIntervalMs: 20, contextLength: 4096 }, ['--grace-s', '1.5']);
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', maxRetries: 0 });
  const short = await runStreams(client, 10, 20);
  const long = await runStreams(client, 10, 2000);
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  // Draining: not ready, and new work is refused with 503 while the old work continues.
  await new Promise((r) => setTimeout(r, 100));
  const ready = await fetch(`${base}/ready`);
  assert.equal(ready.status, 503);
  assert.equal((await ready.json()).status, 'draining');
  const refused = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'x' }),
  });
  assert.equal(refused.status, 503);
  assert.equal((await refused.json()).error.code, 'server_shutting_down');

  const shortResults = await Promise.all(short);
  const longResults = await Promise.all(long);
  for (const r of shortResults) assert.equal(r.finish, 'length', 'short streams finished normally within the grace period');
  for (const r of longResults) {
    assert.equal(r.finish, 'abort', 'long streams were aborted with a recorded finish reason');
    assert.ok(r.text.length > 0 && r.text.length < 2000);
  }
  const [code, signal] = await exited;
  assert.equal(signal, null);
  assert.equal(code, 0, log());
  assert.match(log(), /grace period over: aborting the rest/);
});
