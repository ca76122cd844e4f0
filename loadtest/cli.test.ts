// End to end through runLoadtest(argv): run files, sweeps to saturation, refusing a rate the client
// cannot generate, and compare mode.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { EXIT_REFUSED, runLoadtest } from './main.ts';
import { readRunFile } from './runfile.ts';
import { captureIo } from './testing/capture.ts';
import type { FakeScript } from './testing/fake-server.ts';
import { spawnFakeServer, type FakeHandle } from './testing/spawn-fake.ts';

const dir = mkdtempSync(join(tmpdir(), 'lt-cli-'));
const servers: FakeHandle[] = [];
let url: string;

// Fake servers in their own processes, so their timers do not share the load tester's event loop.
async function fake(script: FakeScript): Promise<string> {
  const s = await spawnFakeServer(script);
  servers.push(s);
  return s.url;
}

before(async () => {
  url = await fake({ ttftMs: 8, itlMs: 3 });
});
after(async () => {
  for (const s of servers) await s.close();
});

test('a run writes run.json with config, /v1/models, raw records, aggregates and scraped metrics', async () => {
  const io = captureIo();
  const out = join(dir, 'run.json');
  const code = await runLoadtest(
    [
      '--url',
      url,
      '--endpoint',
      'chat',
      '--rate',
      '40',
      '--num-requests',
      '30',
      '--input-len',
      '24',
      '--output-len',
      'uniform:4:8',
      '--shared-prefix',
      '32',
      '--slo',
      'ttft:1000,tpot:100',
      '--scrape-interval',
      '0.1',
      '--out',
      out,
      '--seed',
      '9',
      '--label',
      'fake A',
    ],
    io,
  );
  assert.equal(code, 0, io.errText());
  const run = readRunFile(out);
  assert.equal(run.label, 'fake A');
  assert.equal(run.server.model, 'fake-model');
  assert.deepEqual((run.server.models as { data: Array<{ id: string }> }).data[0].id, 'fake-model');
  assert.match(run.server.promptLengths, /exact/);
  assert.equal(run.config.rate, 40);
  assert.equal(run.points.length, 1);
  const p = run.points[0];
  assert.equal(p.records.length, 30);
  for (const r of p.records) {
    assert.equal(r.ok, true);
    assert.equal(r.promptTokens, 56, 'shared prefix 32 + input 24, exact in the server tokens');
    assert.ok(r.outputTokens! >= 4 && r.outputTokens! <= 8 && r.outputTokens === r.maxTokens, 'ignore_eos: max_tokens honoured');
    assert.ok(r.scheduledAtMs !== null && r.sentAtMs >= r.scheduledAtMs);
    assert.equal(r.itlMs.length, r.outputTokens! - 1);
  }
  assert.equal(p.aggregates.completed, 30);
  assert.equal(p.aggregates.goodput!.fraction, 1);
  assert.ok(p.metrics && p.metrics.scrapes >= 2, 'metrics scraped during the run');
  assert.ok(p.metrics.series['fake:num_requests_running{model="fake-model"}'].length >= 2);
  assert.equal(p.overhead.requestedRate, 40);
  assert.match(io.outText(), /throughput .* req\/s .* output tok\/s .* total tok\/s/);
  assert.match(io.outText(), /TTFT .*\n\s+ITL .*\n\s+TPOT .*\n\s+E2E/);
  assert.match(io.outText(), /goodput\s+[\d.]+ req\/s \(100\.0% of requests\)/);
  assert.match(io.outText(), /fake:generation_tokens_total\{model="fake-model"\} \+\d+/, 'counter increase over the run');
});

test('a concurrency sweep stops once latency and queueing keep rising (server with 2 slots)', async () => {
  const slotted = await fake({ ttftMs: 10, itlMs: 4, slots: 2 });
  const io = captureIo();
  const out = join(dir, 'sweep.json');
  const code = await runLoadtest(
    ['--url', slotted, '--sweep', 'concurrency', '--num-requests', '24', '--input-len', '4', '--output-len', '4', '--out', out, '--quiet'],
    io,
  );
  assert.equal(code, 0, io.errText());
  const run = readRunFile(out);
  const values = run.points.map((p) => (p.load.kind === 'concurrency' ? p.load.concurrency : NaN));
  assert.deepEqual(values.slice(0, 3), [1, 2, 4]);
  assert.ok(values.length >= 4 && values.length < 12, `stopped after ${values.join(',')}`);
  assert.match(run.sweep!.stoppedBecause, /saturated/);
  const last = run.points[run.points.length - 1].aggregates;
  assert.ok(last.ttftMs.p50 > 3 * run.points[1].aggregates.ttftMs.p50, 'queueing grew');
  assert.match(io.outText(), /== sweep\nconcurrency/);
});

test('a rate the client cannot generate is refused: exit 3, nothing reported', async () => {
  const io = captureIo();
  const out = join(dir, 'refused.json');
  const code = await runLoadtest(
    [
      '--url',
      url,
      '--rate',
      '1000000',
      '--num-requests',
      '600',
      '--timeout',
      '20',
      '--input-len',
      '2',
      '--output-len',
      '1',
      '--warmup',
      '0',
      '--no-metrics',
      '--no-tokenize',
      '--out',
      out,
      '--quiet',
    ],
    io,
  );
  assert.equal(code, EXIT_REFUSED);
  assert.match(io.errText(), /refusing to report rate 1000000 req\/s: the client sent [\d.]+ req\/s but the schedule asked for/);
  assert.doesNotMatch(io.outText(), /throughput/);
  assert.throws(() => readFileSync(out), /ENOENT/);
});

test('compare prints runs side by side; bad inputs are usage errors', async () => {
  const outB = join(dir, 'runB.json');
  const io = captureIo();
  assert.equal(
    await runLoadtest(
      [
        '--url',
        url,
        '--concurrency',
        '4',
        '--num-requests',
        '12',
        '--input-len',
        '8',
        '--output-len',
        '4',
        '--out',
        outB,
        '--label',
        'fake B',
        '--quiet',
      ],
      io,
    ),
    0,
    io.errText(),
  );
  const cmp = captureIo();
  assert.equal(await runLoadtest(['compare', join(dir, 'run.json'), outB], cmp), 0, cmp.errText());
  assert.match(cmp.outText(), /fake A\s+fake B/);
  assert.match(cmp.outText(), /output tok\/s\s+[\d.]+\s+[\d.]+/);
  const bad = captureIo();
  assert.equal(await runLoadtest(['compare', outB], bad), 1);
  assert.equal(await runLoadtest(['compare', outB, join(dir, 'missing.json')], bad), 1);
  assert.equal(await runLoadtest(['--url', url], bad), 1);
  assert.match(bad.errText(), /choose exactly one of --rate, --concurrency, --sweep/);
});
