// The load tester's figures against the truth: the fake server (own process) writes chunks on a
// scripted schedule and records when it really wrote each one; the tool's TTFT, ITL, TPOT, E2E and
// throughput must agree within 2% or 2 ms, at modest load and at 1,000 requests/s. Medians, not
// means: on a shared 2-core machine a descheduled process adds outliers to both sides.
import assert from 'node:assert/strict';
import { cpus, loadavg } from 'node:os';
import { after, before, test } from 'node:test';
import { aggregate } from './aggregate.ts';
import { StreamingClient } from './client.ts';
import { runPhase } from './runner.ts';
import { distribution } from './stats.ts';
import { spawnFakeServer, type FakeHandle } from './testing/spawn-fake.ts';
import type { TruthRecord } from './testing/fake-server.ts';
import type { Endpoint, RequestRecord } from './types.ts';

const TTFT_MS = 50;
const ITL_MS = 10;
let fake: FakeHandle;

before(async () => {
  fake = await spawnFakeServer({ ttftMs: TTFT_MS, itlMs: ITL_MS });
});
after(async () => {
  await fake.close();
});

function near(actual: number, truth: number, what: string): void {
  const tol = Math.max(2, 0.02 * Math.abs(truth));
  assert.ok(
    Math.abs(actual - truth) <= tol,
    `${what}: tool ${actual.toFixed(3)} vs truth ${truth.toFixed(3)} (tolerance ${tol.toFixed(2)})`,
  );
}
function nearPct(actual: number, truth: number, what: string): void {
  assert.ok(Math.abs(actual - truth) <= 0.02 * Math.abs(truth), `${what}: tool ${actual.toFixed(3)} vs truth ${truth.toFixed(3)} (2%)`);
}

/** The server's view as the same aggregates: TTFT/gaps/E2E from its write times, span first arrival to last end. */
function truthFigures(truth: TruthRecord[]) {
  const start = Math.min(...truth.map((t) => t.arrivalMs));
  const end = Math.max(...truth.map((t) => t.endMs));
  const spanS = (end - start) / 1000;
  const tokens = truth.reduce((s, t) => s + t.outputTokens, 0);
  return {
    ttft: distribution(truth.map((t) => t.ttftMs)),
    gaps: distribution(truth.flatMap((t) => t.gapsMs)),
    tpot: distribution(truth.map((t) => (t.endMs - t.arrivalMs - t.ttftMs) / (t.outputTokens - 1))),
    e2e: distribution(truth.map((t) => t.e2eMs)),
    requestRate: truth.length / spanS,
    tokenRate: tokens / spanS,
  };
}

async function measure(
  endpoint: Endpoint,
  load: Parameters<typeof runPhase>[1]['load'],
  numRequests: number | undefined,
  durationS: number | undefined,
  maxTokens: number,
) {
  const client = new StreamingClient({ baseUrl: fake.url, endpoint, model: 'fake-model', ignoreEos: true, timeoutMs: 20_000 });
  try {
    const items = [
      { prompt: 'one two three four', maxTokens },
      { prompt: 'five six', maxTokens },
    ];
    // Warm-up, as the tool does before measuring: opens the connections and warms the code paths.
    await runPhase(client, { load: { kind: 'concurrency', concurrency: 16 }, numRequests: 32, seed: 1, items });
    await fake.reset();
    const phase = await runPhase(client, { load, numRequests, durationS, seed: 3, items });
    return { phase, truth: await fake.truth() };
  } finally {
    await client.close();
  }
}

function checkRecordsMatchServer(records: RequestRecord[], truth: TruthRecord[], maxTokens: number): void {
  const byId = new Map(truth.map((t) => [t.id, t]));
  assert.equal(truth.length, records.length);
  for (const r of records) {
    assert.ok(r.ok, `request ${r.index} failed: ${r.errorKind} ${r.error}`);
    const t = byId.get(r.responseId!);
    assert.ok(t, `no server record for ${r.responseId}`);
    assert.equal(r.outputTokens, maxTokens);
    assert.equal(r.tokensFromUsage, true);
    assert.equal(r.promptTokens, t.promptTokens);
    assert.equal(r.itlMs.length, maxTokens - 1, 'one gap per content chunk after the first');
    assert.equal(r.finishReason, 'length');
  }
}

test('closed loop (chat): TTFT, ITL, TPOT, E2E and throughput within 2% or 2 ms of the server truth', async () => {
  const maxTokens = 16;
  const { phase, truth } = await measure('chat', { kind: 'concurrency', concurrency: 8 }, 96, undefined, maxTokens);
  checkRecordsMatchServer(phase.records, truth, maxTokens);
  const a = aggregate(phase.records, null);
  const t = truthFigures(truth);
  near(a.ttftMs.p50, t.ttft.p50, 'TTFT p50');
  near(a.itlMs.p50, t.gaps.p50, 'ITL p50');
  nearPct(a.tpotMs.p50, t.tpot.p50, 'TPOT p50');
  near(a.e2eMs.p50, t.e2e.p50, 'E2E p50');
  nearPct(a.requestRate, t.requestRate, 'req/s');
  nearPct(a.outputTokenRate, t.tokenRate, 'output tok/s');
  // And against the script itself: the gaps the fake was told to leave.
  near(a.itlMs.p50, ITL_MS, 'ITL p50 vs script');
  nearPct(a.tpotMs.p50, ITL_MS, 'TPOT p50 vs script');
  near(a.ttftMs.p50, TTFT_MS, 'TTFT p50 vs script');
});

test('open loop at 1,000 requests/s for 2 s: generated on time, figures within 2% or 2 ms of the truth', async (ctx) => {
  const maxTokens = 4;
  // A 2-core machine can deschedule the client for tens of ms at any moment; the tool then refuses the
  // run (its honesty check). Up to three attempts; every accuracy check below applies to the one kept.
  let attempt = await measure('completions', { kind: 'rate', rate: 1000, burstiness: 1 }, undefined, 2, maxTokens);
  for (let tries = 1; attempt.phase.refused && tries < 3; tries++) {
    console.log(`# 1000 req/s attempt ${tries} refused by the tool (${attempt.phase.refused}); retrying`);
    attempt = await measure('completions', { kind: 'rate', rate: 1000, burstiness: 1 }, undefined, 2, maxTokens);
  }
  const { phase, truth } = attempt;
  // On a machine oversubscribed by other work the client is descheduled for tens of ms and rightly
  // refuses the run. That is the tool working, not failing; outside CI it is reported as a skip.
  const load = loadavg()[0];
  if (phase.refused && process.env.CI !== 'true' && load > cpus().length) {
    ctx.skip(`machine oversubscribed (load average ${load.toFixed(1)} on ${cpus().length} cores); the tool refused: ${phase.refused}`);
    return;
  }
  assert.equal(phase.refused, null, `client could not keep up: ${phase.refused}`);
  assert.ok(phase.records.length > 1700, `only ${phase.records.length} requests in 2 s`);
  const o = phase.overhead;
  assert.ok(o.achievedRate >= 0.95 * o.scheduledRate!, `sent ${o.achievedRate} of ${o.scheduledRate} req/s`);
  assert.ok(Math.abs(o.scheduledRate! - 1000) < 100, `the seeded Poisson schedule has rate ${o.scheduledRate}`);
  checkRecordsMatchServer(phase.records, truth, maxTokens);
  const a = aggregate(phase.records, null);
  const t = truthFigures(truth);
  console.log(
    `# 1000 req/s: sent ${o.achievedRate.toFixed(1)} req/s, send lag p99 ${o.sendLagMs!.p99.toFixed(2)} ms, loop lag p99 ${o.eventLoopLagMs.p99} ms, CPU ${o.clientCpuPercent.toFixed(0)}%; TTFT p50 tool ${a.ttftMs.p50.toFixed(2)} truth ${t.ttft.p50.toFixed(2)}; ITL mean tool ${a.itlMs.mean.toFixed(3)} truth ${t.gaps.mean.toFixed(3)}`,
  );
  near(a.ttftMs.p50, t.ttft.p50, 'TTFT p50');
  near(a.itlMs.p50, t.gaps.p50, 'ITL p50');
  nearPct(a.tpotMs.p50, t.tpot.p50, 'TPOT p50');
  near(a.e2eMs.p50, t.e2e.p50, 'E2E p50');
  nearPct(a.requestRate, t.requestRate, 'req/s');
  nearPct(a.outputTokenRate, t.tokenRate, 'output tok/s');
});
