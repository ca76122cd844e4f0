// The terminal summary: one block per load point, a saturation table for sweeps, a side-by-side
// table for compare mode.
import type { Aggregates } from './aggregate.ts';
import { loadLabel, type PointResult, type RunFile } from './runfile.ts';
import { counterIncreases, interestingGauges } from './scraper.ts';
import type { Distribution } from './stats.ts';

const f = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '-');
const pad = (s: string, n: number) => s.padStart(n);
const LAG_WARN_MS = 20;

function distRow(name: string, d: Distribution): string {
  return `  ${name.padEnd(6)}${[d.mean, d.p50, d.p90, d.p99, d.max].map((v) => pad(f(v, 2), 10)).join('')}   n=${d.count}`;
}

export function formatErrors(errors: Record<string, number>): string {
  const keys = Object.keys(errors).sort();
  return keys.length ? keys.map((k) => `${k}: ${errors[k]}`).join('  ') : 'none';
}

export function formatPoint(p: PointResult): string {
  const a = p.aggregates;
  const o = p.overhead;
  const lines = [
    `== ${loadLabel(p.load)}: ${a.requests} requests in ${f(a.durationS, 2)} s`,
    `requests     ${a.completed} ok, ${a.failed} failed   (tokens from usage chunks: ${a.tokensFromUsage}/${a.completed})`,
    `throughput   ${f(a.requestRate, 2)} req/s   ${f(a.outputTokenRate, 1)} output tok/s   ${f(a.totalTokenRate, 1)} total tok/s`,
  ];
  if (a.goodput) {
    const slo = a.goodput.slo;
    const parts = [
      slo.ttftMs !== undefined && `TTFT <= ${slo.ttftMs} ms`,
      slo.tpotMs !== undefined && `TPOT <= ${slo.tpotMs} ms`,
      slo.e2eMs !== undefined && `E2E <= ${slo.e2eMs} ms`,
    ].filter(Boolean);
    lines.push(
      `goodput      ${f(a.goodput.requestRate, 2)} req/s (${f(a.goodput.fraction * 100, 1)}% of requests) under ${parts.join(', ')}`,
    );
  }
  lines.push(`latency (ms)${['mean', 'p50', 'p90', 'p99', 'max'].map((h) => pad(h, 10)).join('')}`);
  lines.push(distRow('TTFT', a.ttftMs), distRow('ITL', a.itlMs), distRow('TPOT', a.tpotMs), distRow('E2E', a.e2eMs));
  lines.push(`errors       ${formatErrors(a.errors)}`);
  const rate =
    o.requestedRate !== null
      ? `sent ${f(o.achievedRate, 2)} req/s for ${f(o.requestedRate, 2)} requested (seeded schedule ${f(o.scheduledRate ?? NaN, 2)}); send lag p50 ${f(o.sendLagMs?.p50 ?? NaN, 2)} p99 ${f(o.sendLagMs?.p99 ?? NaN, 2)} ms`
      : `sent ${f(o.achievedRate, 2)} req/s`;
  lines.push(
    `client       ${rate}; event-loop lag p99 ${f(o.eventLoopLagMs.p99, 1)} max ${f(o.eventLoopLagMs.max, 1)} ms; CPU ${f(o.clientCpuPercent, 0)}% of a core`,
  );
  // Chunk timestamps are taken on the event loop: a lagging loop inflates TTFT and ITL by about that much.
  if (o.eventLoopLagMs.p99 > LAG_WARN_MS)
    lines.push(
      `warning      the client's event loop lagged (p99 ${f(o.eventLoopLagMs.p99, 1)} ms): timings below ~${f(o.eventLoopLagMs.p99, 0)} ms are not trustworthy; is the machine busy?`,
    );
  if (p.metrics) {
    const m = p.metrics;
    const gauges = interestingGauges(m)
      .slice(0, 4)
      .map((k) => {
        const vs = m.series[k].map((x) => x[1]);
        return `${k} mean ${f(vs.reduce((s, v) => s + v, 0) / vs.length, 2)} max ${f(Math.max(...vs), 2)}`;
      });
    lines.push(
      `server       /metrics: ${m.scrapes} scrapes, ${Object.keys(m.series).length} series${m.failures ? `, ${m.failures} failed (${m.lastError})` : ''}`,
    );
    for (const g of gauges) lines.push(`             ${g}`);
    for (const c of counterIncreases(m)) lines.push(`             ${c.key} +${f(c.increase, 0)}`);
  }
  return lines.join('\n');
}

export function formatSweep(run: RunFile): string {
  const head = `${run.sweep!.kind.padEnd(12)}${['req/s', 'out tok/s', 'TTFT p50', 'TTFT p99', 'TPOT p50', 'E2E p50', 'E2E p99', 'errors'].map((h) => pad(h, 11)).join('')}`;
  const rows = run.points.map((p) => {
    const a: Aggregates = p.aggregates;
    const v = p.load.kind === 'rate' ? p.load.rate : p.load.concurrency;
    return `${String(v).padEnd(12)}${[a.requestRate, a.outputTokenRate, a.ttftMs.p50, a.ttftMs.p99, a.tpotMs.p50, a.e2eMs.p50, a.e2eMs.p99].map((x) => pad(f(x, 1), 11)).join('')}${pad(String(a.failed), 11)}`;
  });
  return ['== sweep', head, ...rows, `stopped: ${run.sweep!.stoppedBecause}`].join('\n');
}

export function formatCompare(runs: RunFile[]): string {
  const cols = runs.map((r) => r.label.slice(0, 22));
  const width = Math.max(14, ...cols.map((c) => c.length + 2));
  const rows: Array<[string, (a: Aggregates) => number, number]> = [
    ['req/s', (a) => a.requestRate, 2],
    ['output tok/s', (a) => a.outputTokenRate, 1],
    ['total tok/s', (a) => a.totalTokenRate, 1],
    ['TTFT p50 ms', (a) => a.ttftMs.p50, 1],
    ['TTFT p99 ms', (a) => a.ttftMs.p99, 1],
    ['ITL p50 ms', (a) => a.itlMs.p50, 2],
    ['TPOT p50 ms', (a) => a.tpotMs.p50, 2],
    ['E2E p50 ms', (a) => a.e2eMs.p50, 1],
    ['E2E p99 ms', (a) => a.e2eMs.p99, 1],
    ['failed', (a) => a.failed, 0],
  ];
  const out = [`${''.padEnd(16)}${cols.map((c) => pad(c, width)).join('')}`];
  // Compare the last point of each run (a single run has one; a sweep's last is its heaviest load).
  const last = runs.map((r) => r.points[r.points.length - 1]);
  out.push(`${'load'.padEnd(16)}${last.map((p) => pad(p ? loadLabel(p.load) : '-', width)).join('')}`);
  for (const [name, get, digits] of rows)
    out.push(`${name.padEnd(16)}${last.map((p) => pad(p ? f(get(p.aggregates), digits) : '-', width)).join('')}`);
  return out.join('\n');
}
