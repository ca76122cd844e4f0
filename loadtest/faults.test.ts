// Malformed or failing servers: every kind of breakage is counted as an error of its own kind
// (429 and 503 apart), never a crash, and the good requests around them are still measured.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { aggregate } from './aggregate.ts';
import { StreamingClient } from './client.ts';
import { runLoadtest } from './main.ts';
import { runPhase } from './runner.ts';
import { createFakeServer, listen, type Fault } from './testing/fake-server.ts';

const FAULTS: Fault[] = ['ok', 'bad-json', 'no-done', 'http-500', 'http-429', 'http-503', 'drop', 'error-event'];
let server: http.Server;
let url: string;

before(async () => {
  server = createFakeServer({ ttftMs: 5, itlMs: 2, faults: FAULTS });
  url = await listen(server);
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function sink() {
  let text = '';
  const write = (s: string) => {
    text += s;
    return true;
  };
  return { stream: { write } as unknown as NodeJS.WritableStream, text: () => text };
}

test('each fault is one error of its kind; good requests are unaffected', async () => {
  await fetch(`${url}/_reset`, { method: 'POST' });
  const client = new StreamingClient({ baseUrl: url, endpoint: 'completions', model: 'fake-model', ignoreEos: true, timeoutMs: 10_000 });
  try {
    // Concurrency 1 keeps the server's request order equal to ours, so fault i hits request i.
    const phase = await runPhase(client, {
      load: { kind: 'concurrency', concurrency: 1 },
      numRequests: 3 * FAULTS.length,
      seed: 0,
      items: [{ prompt: 'hi there', maxTokens: 6 }],
    });
    const a = aggregate(phase.records, null);
    assert.equal(a.completed, 3);
    assert.deepEqual(a.errors, { 'bad-json': 3, 'no-done': 3, '500': 3, '429': 3, '503': 3, network: 3, 'stream-error': 3 });
    for (const r of phase.records) {
      const fault = FAULTS[r.index % FAULTS.length];
      if (fault === 'ok') {
        assert.equal(r.ok, true);
        assert.equal(r.outputTokens, 6);
      } else {
        assert.equal(r.ok, false, `${fault} must fail`);
        assert.ok(r.error && r.error.length > 0, `${fault} has a message`);
      }
      if (fault === 'http-429') assert.equal(r.error, 'queue full', 'the server error message is kept');
      if (fault === 'drop') {
        assert.match(r.error!, /mid-stream/);
        assert.equal(r.contentChunks, 2, 'the chunks before the drop were seen');
      }
    }
    // Good requests keep their timings; the failed ones count in no latency figure.
    assert.equal(a.ttftMs.count, 3);
  } finally {
    await client.close();
  }
});

test('a timeout ends a request as an error and the run goes on', async () => {
  const slow = createFakeServer({ ttftMs: 2000, itlMs: 1 });
  const slowUrl = await listen(slow);
  const client = new StreamingClient({ baseUrl: slowUrl, endpoint: 'chat', model: 'm', ignoreEos: true, timeoutMs: 150 });
  try {
    const phase = await runPhase(client, {
      load: { kind: 'rate', rate: 50, burstiness: 1 },
      numRequests: 3,
      seed: 0,
      items: [{ prompt: 'x', maxTokens: 2 }],
    });
    assert.deepEqual(aggregate(phase.records, null).errors, { timeout: 3 });
    for (const r of phase.records) assert.ok(r.e2eMs >= 140 && r.e2eMs < 1500, `timed out after ${r.e2eMs} ms`);
  } finally {
    await client.close();
    slow.closeAllConnections();
    await new Promise((r) => slow.close(r));
  }
});

test('the CLI reports a faulty server with errors by status and exits 0; an unreachable one exits 1', async () => {
  const out = sink();
  const err = sink();
  const code = await runLoadtest(
    [
      '--url',
      url,
      '--concurrency',
      '2',
      '--num-requests',
      '16',
      '--input-len',
      '4',
      '--output-len',
      '4',
      '--warmup',
      '0',
      '--no-metrics',
      '--quiet',
    ],
    { out: out.stream, err: err.stream },
  );
  assert.equal(code, 0, err.text());
  assert.match(out.text(), /errors\s+.*429: \d.*503: \d/);
  // A port with nothing listening.
  const dead = http.createServer();
  const deadUrl = await listen(dead);
  await new Promise((r) => dead.close(r));
  const err2 = sink();
  assert.equal(
    await runLoadtest(['--url', deadUrl, '--rate', '1', '--num-requests', '1', '--quiet'], { out: sink().stream, err: err2.stream }),
    1,
  );
  assert.match(err2.text(), /cannot reach/);
});
