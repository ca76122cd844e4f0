import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregate, parseSlo, tpotOf } from './aggregate.ts';
import { parseLoadtestArgs, parseSweep } from './args.ts';
import { sweepVerdict } from './sweep.ts';
import type { RequestRecord } from './types.ts';

function rec(over: Partial<RequestRecord>): RequestRecord {
  return {
    index: 0,
    scheduledAtMs: null,
    sentAtMs: 0,
    endAtMs: 0,
    ttftMs: null,
    itlMs: [],
    e2eMs: 0,
    promptTokens: null,
    outputTokens: null,
    tokensFromUsage: true,
    contentChunks: 0,
    finishReason: null,
    status: 200,
    ok: true,
    errorKind: null,
    error: null,
    maxTokens: 8,
    responseId: null,
    ...over,
  };
}

test('aggregates: throughput over the phase span, TPOT, goodput, errors by kind with 429 and 503 apart', () => {
  const records = [
    // 5 output tokens: TTFT 100, gaps 10 each -> E2E 140, TPOT (140-100)/4 = 10
    rec({
      sentAtMs: 0,
      endAtMs: 140,
      ttftMs: 100,
      itlMs: [10, 10, 10, 10],
      e2eMs: 140,
      promptTokens: 20,
      outputTokens: 5,
      contentChunks: 5,
    }),
    // TTFT 300: misses a 200 ms TTFT SLO
    rec({
      sentAtMs: 500,
      endAtMs: 1000,
      ttftMs: 300,
      itlMs: [50, 50, 50, 50],
      e2eMs: 500,
      promptTokens: 20,
      outputTokens: 5,
      contentChunks: 5,
    }),
    rec({ sentAtMs: 600, endAtMs: 601, ok: false, status: 429, errorKind: '429', e2eMs: 1 }),
    rec({ sentAtMs: 700, endAtMs: 702, ok: false, status: 503, errorKind: '503', e2eMs: 2 }),
    rec({ sentAtMs: 800, endAtMs: 2000, ok: false, errorKind: 'no-done', e2eMs: 1200, ttftMs: 5, outputTokens: null }),
  ];
  const a = aggregate(records, parseSlo('ttft:200,tpot:20'));
  assert.equal(a.durationS, 2);
  assert.equal(a.completed, 2);
  assert.equal(a.failed, 3);
  assert.equal(a.requestRate, 1);
  assert.equal(a.outputTokenRate, 5);
  assert.equal(a.totalTokenRate, 25);
  assert.deepEqual(a.errors, { '429': 1, '503': 1, 'no-done': 1 });
  assert.equal(a.ttftMs.p50, 200);
  assert.equal(a.ttftMs.max, 300);
  assert.equal(a.itlMs.count, 8);
  assert.equal(a.itlMs.p50, 30);
  assert.deepEqual([a.tpotMs.min, a.tpotMs.max], [10, 50]);
  assert.equal(a.e2eMs.max, 500);
  assert.deepEqual(a.goodput, { slo: { ttftMs: 200, tpotMs: 20 }, requestRate: 0.5, fraction: 0.2 });
  assert.equal(tpotOf(rec({ ttftMs: 10, e2eMs: 20, outputTokens: 1 })), null);
});

test('--slo, --sweep and option conflicts are validated with clear messages', () => {
  assert.deepEqual(parseSlo('ttft:500,tpot:50'), { ttftMs: 500, tpotMs: 50 });
  assert.throws(() => parseSlo('ttft:abc'), /bad --slo/);
  assert.throws(() => parseSlo('itl:5'), /bad --slo key/);
  assert.deepEqual(parseSweep('rate=1,2.5,4').values, [1, 2.5, 4]);
  assert.equal(parseSweep('concurrency').values, null);
  assert.throws(() => parseSweep('concurrency=1.5'), /bad --sweep values/);
  assert.throws(() => parseSweep('qps=1'), /bad --sweep/);
  const base = ['--url', 'http://127.0.0.1:1/v1/'];
  const cfg = parseLoadtestArgs([...base, '--rate', '5', '--duration', '3', '--slo', 'ttft:100']);
  assert.equal(cfg.url, 'http://127.0.0.1:1');
  assert.equal(cfg.rate, 5);
  assert.equal(cfg.durationS, 3);
  assert.equal(cfg.numRequests, undefined);
  assert.equal(cfg.ignoreEos, true);
  assert.equal(cfg.metricsUrl, 'http://127.0.0.1:1/metrics');
  assert.equal(parseLoadtestArgs([...base, '--concurrency', '2', '--no-ignore-eos', '--no-metrics']).ignoreEos, false);
  assert.throws(() => parseLoadtestArgs([...base, '--rate', '5', '--concurrency', '2']), /exactly one/);
  assert.throws(() => parseLoadtestArgs([...base]), /exactly one/);
  assert.throws(() => parseLoadtestArgs([...base, '--rate', '5', '--duration', '1', '--num-requests', '3']), /one of --duration/);
  assert.throws(() => parseLoadtestArgs([...base, '--rate', '0']), /bad --rate/);
  assert.throws(() => parseLoadtestArgs(['--rate', '1']), /--url is required/);
  assert.throws(() => parseLoadtestArgs([...base, '--rate', '1', '--bogus']), /Unknown option/);
});

test('sweep stops when median E2E and TTFT both rose at each of the last two steps and throughput did not', () => {
  // 10 requests of 4 tokens each over a span of `span` ms (default: the E2E).
  const point = (e2e: number, ttft: number, failed = 0, span = 1000) =>
    aggregate(
      Array.from({ length: 10 }, (_, i) =>
        rec({
          sentAtMs: i === 9 ? span - e2e : 0,
          endAtMs: (i === 9 ? span - e2e : 0) + e2e,
          e2eMs: e2e,
          ttftMs: ttft,
          outputTokens: 4,
          contentChunks: 4,
          ok: i >= failed,
          errorKind: i < failed ? '429' : null,
        }),
      ),
      null,
    );
  assert.equal(sweepVerdict([point(100, 10), point(150, 30), point(300, 90, 0, 500)], 0.1).stop, false, 'throughput still doubling');
  assert.equal(sweepVerdict([point(100, 10), point(101, 10)], 0.1).stop, false);
  assert.equal(sweepVerdict([point(100, 10), point(101, 10), point(150, 30)], 0.1).stop, false, 'one rise is not a trend');
  assert.equal(sweepVerdict([point(100, 10), point(150, 30), point(160, 31)], 0.1).stop, false, 'the second step barely rose');
  assert.equal(sweepVerdict([point(100, 10), point(200, 10), point(400, 10)], 0.1).stop, false, 'latency alone, no queueing');
  const v = sweepVerdict([point(100, 10), point(150, 30), point(300, 90)], 0.1);
  assert.equal(v.stop, true);
  assert.match(v.reason, /saturated/);
  assert.match(sweepVerdict([point(100, 10), point(100, 10, 8)], 0.1).reason, /overloaded/);
});
