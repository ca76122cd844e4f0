// The self-contained HTML report (one run, or several compared): inline CSS and SVG, no scripts,
// so it opens from a file, an e-mail attachment or a CI artifact with nothing else.
import type { Aggregates } from '../aggregate.ts';
import { loadLabel, loadValue, type PointResult, type RunFile } from '../runfile.ts';
import { interestingGauges } from '../scraper.ts';
import { formatErrors } from '../summary.ts';
import { cdf, latencyValues, timeline, ttftScatter, type LatencyMetric } from './series.ts';
import { chart, escapeXml as esc, groupedBars, type Series } from './svg.ts';

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1340px;color:#111;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555}.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(640px,1fr));gap:12px}
figure.chart{margin:0;border:1px solid #e5e7eb;border-radius:6px;padding:4px;background:#fff}
svg text{font-size:11px;fill:#333}svg .title{font-size:13px;font-weight:600}svg .label{fill:#555}svg .small{font-size:10px}
svg .grid line{stroke:#eee}svg .axis line{stroke:#999}svg .empty{fill:#999}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f6f6f6}
td:first-child,th:first-child{text-align:left}.warn{color:#b91c1c}code{background:#f3f4f6;padding:1px 4px}`;

const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const fig = (name: string, svg: string) => `<figure class="chart" data-chart="${esc(name)}">${svg}</figure>`;
const METRICS: Array<[LatencyMetric, string]> = [
  ['ttft', 'TTFT'],
  ['itl', 'ITL'],
  ['tpot', 'TPOT'],
  ['e2e', 'E2E'],
];

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}</style></head><body>${body}</body></html>\n`;
}

function aggregatesTable(rows: Array<{ name: string; a: Aggregates }>): string {
  const head = [
    '',
    'req/s',
    'output tok/s',
    'total tok/s',
    'goodput req/s',
    'ok',
    'failed',
    'TTFT p50',
    'TTFT p90',
    'TTFT p99',
    'TTFT max',
    'ITL p50',
    'ITL p99',
    'TPOT p50',
    'TPOT p99',
    'E2E p50',
    'E2E p99',
    'E2E max',
    'errors',
  ];
  const body = rows.map(
    ({ name, a }) =>
      `<tr><td>${esc(name)}</td>${[
        f(a.requestRate, 2),
        f(a.outputTokenRate),
        f(a.totalTokenRate),
        a.goodput ? f(a.goodput.requestRate, 2) : '-',
        String(a.completed),
        String(a.failed),
        f(a.ttftMs.p50),
        f(a.ttftMs.p90),
        f(a.ttftMs.p99),
        f(a.ttftMs.max),
        f(a.itlMs.p50, 2),
        f(a.itlMs.p99, 2),
        f(a.tpotMs.p50, 2),
        f(a.tpotMs.p99, 2),
        f(a.e2eMs.p50),
        f(a.e2eMs.p99),
        f(a.e2eMs.max),
      ]
        .map((c) => `<td>${c}</td>`)
        .join('')}<td>${esc(formatErrors(a.errors))}</td></tr>`,
  );
  return `<table><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr>${body.join('')}</table><p class="meta">Latencies in ms. TPOT = (E2E - TTFT) / (output tokens - 1); ITL = every gap between content chunks.</p>`;
}

function overheadTable(points: PointResult[]): string {
  const rows = points.map((p) => {
    const o = p.overhead;
    return `<tr><td>${esc(loadLabel(p.load))}</td><td>${o.requestedRate === null ? '-' : f(o.requestedRate, 2)}</td><td>${o.scheduledRate === null ? '-' : f(o.scheduledRate, 2)}</td><td>${f(o.achievedRate, 2)}</td><td>${o.sendLagMs ? f(o.sendLagMs.p50, 2) : '-'}</td><td>${o.sendLagMs ? f(o.sendLagMs.p99, 2) : '-'}</td><td>${f(o.eventLoopLagMs.p99, 1)}</td><td>${f(o.eventLoopLagMs.max, 1)}</td><td>${f(o.clientCpuPercent, 0)}%</td></tr>`;
  });
  return `<table><tr><th>load</th><th>requested req/s</th><th>schedule req/s</th><th>sent req/s</th><th>send lag p50 ms</th><th>send lag p99 ms</th><th>loop lag p99 ms</th><th>loop lag max ms</th><th>client CPU</th></tr>${rows.join('')}</table>`;
}

function latencyCharts(entries: Array<{ name: string; point: PointResult }>): string {
  return METRICS.map(([metric, title]) =>
    fig(
      `cdf-${metric}`,
      chart(
        entries.map(({ name, point }): Series => ({ name, style: 'step', points: cdf(latencyValues(point.records, metric)) })),
        {
          title: `${title} distribution (CDF)`,
          xLabel: `${title} (ms)`,
          yLabel: 'fraction of requests',
          yMin: 0,
          yMax: 1,
        },
      ),
    ),
  ).join('');
}

function timelineCharts(entries: Array<{ name: string; point: PointResult }>): string {
  const tls = entries.map((e) => ({ name: e.name, tl: timeline(e.point) }));
  return [
    fig(
      'output-tokens-over-time',
      chart(
        tls.map(({ name, tl }) => ({ name, points: tl.outputTokensPerS })),
        { title: 'Output tokens/s over time', xLabel: 'time since start (s)', yLabel: 'tokens/s' },
      ),
    ),
    fig(
      'requests-over-time',
      chart(
        tls.flatMap(({ name, tl }, i) => [
          { name: `${name} in flight`, points: tl.inFlight, color: i },
          { name: `${name} completed/s`, points: tl.completedPerS, dashed: true, color: i },
        ]),
        { title: 'Requests in flight and completed per second', xLabel: 'time since start (s)', yLabel: 'requests' },
      ),
    ),
  ].join('');
}

const prefix = (name: string) => (name ? `${name} ` : '');

/** Sweeps drawn as curves; a run's own report passes an empty name so legends say just the figure. */
function saturationCharts(runs: Array<{ name: string; run: RunFile }>): string {
  const sweeps = runs.map((r, color) => ({ ...r, color })).filter((r) => r.run.sweep && r.run.points.length > 0);
  const single = sweeps.length === 1; // one sweep: colour by figure; several: colour by run
  if (!sweeps.length) return '';
  const kind = sweeps[0].run.sweep!.kind;
  const xName = kind === 'rate' ? 'offered rate (req/s)' : 'concurrency';
  const pts = (run: RunFile, get: (a: Aggregates) => number) =>
    run.points.map((p): [number, number] => [loadValue(p.load), get(p.aggregates)]);
  const curve = (run: RunFile, get: (a: Aggregates) => number) =>
    run.points.map((p): [number, number] => [p.aggregates.outputTokenRate, get(p.aggregates)]);
  return `<h2>Saturation</h2><div class="charts">${[
    fig(
      'saturation-throughput',
      chart(
        sweeps.map(({ name, run, color }) => ({ name: `${prefix(name)}output tok/s`, points: pts(run, (a) => a.outputTokenRate), color })),
        { title: `Throughput vs ${xName}`, xLabel: xName, yLabel: 'output tokens/s', xLog: true },
      ),
    ),
    fig(
      'saturation-latency',
      chart(
        sweeps.flatMap(({ name, run, color }) => [
          { name: `${prefix(name)}E2E p50`, points: curve(run, (a) => a.e2eMs.p50), color: single ? 0 : color },
          { name: `${prefix(name)}E2E p99`, points: curve(run, (a) => a.e2eMs.p99), dashed: true, color: single ? 1 : color },
        ]),
        { title: 'Latency vs throughput (the saturation curve)', xLabel: 'output tokens/s', yLabel: 'E2E latency (ms)' },
      ),
    ),
    fig(
      'saturation-ttft',
      chart(
        sweeps.flatMap(({ name, run, color }) => [
          { name: `${prefix(name)}TTFT p50`, points: pts(run, (a) => a.ttftMs.p50), color: single ? 0 : color },
          { name: `${prefix(name)}TTFT p99`, points: pts(run, (a) => a.ttftMs.p99), dashed: true, color: single ? 1 : color },
          // TPOT only for a single sweep: with several runs the colours belong to runs, and it would clash.
          ...(single ? [{ name: `${prefix(name)}TPOT p50`, points: pts(run, (a) => a.tpotMs.p50), color: 2 }] : []),
        ]),
        { title: `Queueing: TTFT and TPOT vs ${xName}`, xLabel: xName, yLabel: 'ms', xLog: true },
      ),
    ),
  ].join('')}</div>`;
}

function metricsCharts(point: PointResult): string {
  const m = point.metrics;
  if (!m) return '<p class="meta">No server metrics (no /metrics, or --no-metrics).</p>';
  const keys = interestingGauges(m);
  const note = `<p class="meta">${m.scrapes} scrapes of <code>${esc(m.url)}</code> every ${m.intervalMs / 1000} s, ${Object.keys(m.series).length} series kept in the run file${m.failures ? `; ${m.failures} scrapes failed (${esc(m.lastError ?? '')})` : ''}.</p>`;
  if (!keys.length) return note;
  return (
    note +
    `<div class="charts">${keys.map((k) => fig(`metric-${k}`, chart([{ name: k, points: m.series[k].map(([t, v]) => [t / 1000, v]) }], { title: k.length > 70 ? k.slice(0, 70) + '…' : k, xLabel: 'time since start (s)', yLabel: 'value' }))).join('')}</div>`
  );
}

export function renderRunReport(run: RunFile): string {
  const last = run.points[run.points.length - 1];
  const cfg = run.config;
  const entries = run.points.map((p) => ({ name: loadLabel(p.load), point: p }));
  const refused = run.refused.map((r) => `<p class="warn">Not reported: ${esc(loadLabel(r.load))}: ${esc(r.reason)}.</p>`).join('');
  const body = [
    `<h1>Load test: ${esc(run.label)}</h1>`,
    `<p class="meta">${esc(run.createdAt)} · model <code>${esc(run.server.model)}</code> at <code>${esc(run.server.url)}</code> · endpoint ${esc(String(cfg.endpoint))} · ignore_eos ${cfg.ignoreEos} · seed ${cfg.seed} · warm-up ${run.warmup.requests} (${run.warmup.failed} failed)<br>prompt lengths: ${esc(run.server.promptLengths)}</p>`,
    refused,
    run.sweep ? `<p>Sweep over ${run.sweep.kind}: ${esc(run.sweep.stoppedBecause)}.</p>` : '',
    `<h2>Summary</h2>`,
    aggregatesTable(entries.map((e) => ({ name: e.name, a: e.point.aggregates }))),
    saturationCharts([{ name: '', run }]),
    last ? `<h2>Latency distributions</h2><div class="charts">${latencyCharts(entries)}</div>` : '',
    last
      ? `<h2>Over time${run.points.length > 1 ? ` (${esc(loadLabel(last.load))})` : ''}</h2><div class="charts">${timelineCharts([{ name: loadLabel(last.load), point: last }])}${fig('ttft-scatter', chart([{ name: 'TTFT of each request', style: 'scatter', points: ttftScatter(last.records) }], { title: 'TTFT by send time (queueing shows as a rise)', xLabel: 'send time (s)', yLabel: 'TTFT (ms)' }))}</div>`
      : '',
    last ? `<h2>Server metrics${run.points.length > 1 ? ` (${esc(loadLabel(last.load))})` : ''}</h2>${metricsCharts(last)}` : '',
    `<h2>Client overhead</h2>${overheadTable(run.points)}`,
    `<h2>Server</h2><pre>${esc(JSON.stringify(run.server.models, null, 2).slice(0, 4000))}</pre>`,
  ];
  return page(`Load test: ${run.label}`, body.join('\n'));
}

export function renderCompareReport(runs: RunFile[]): string {
  const names = runs.map((r, i) => `${i + 1}. ${r.label}`);
  // Each run is represented by its last point: a single run has one, a sweep's last is its heaviest.
  const entries = runs.flatMap((r, i) => (r.points.length ? [{ name: names[i], point: r.points[r.points.length - 1] }] : []));
  const bars = groupedBars(
    [
      { label: 'req/s', values: entries.map((e) => e.point.aggregates.requestRate) },
      { label: 'output tok/s', values: entries.map((e) => e.point.aggregates.outputTokenRate) },
      { label: 'TTFT p50 ms', values: entries.map((e) => e.point.aggregates.ttftMs.p50) },
      { label: 'TPOT p50 ms', values: entries.map((e) => e.point.aggregates.tpotMs.p50) },
      { label: 'E2E p99 ms', values: entries.map((e) => e.point.aggregates.e2eMs.p99) },
    ],
    entries.map((e) => e.name),
    { title: 'Key figures (each group scaled to its largest)', width: 640 },
  );
  const body = [
    `<h1>Load test comparison</h1>`,
    `<ul>${runs.map((r, i) => `<li>${esc(names[i])}: <code>${esc(r.server.model)}</code> at <code>${esc(r.server.url)}</code>, ${esc(r.createdAt)}, ${r.points.length ? esc(loadLabel(r.points[r.points.length - 1].load)) : 'no reported points'}</li>`).join('')}</ul>`,
    `<h2>Summary</h2>`,
    aggregatesTable(entries.map((e) => ({ name: e.name, a: e.point.aggregates }))),
    `<div class="charts">${fig('compare-bars', bars)}</div>`,
    saturationCharts(runs.map((run, i) => ({ name: names[i], run }))),
    `<h2>Latency distributions</h2><div class="charts">${latencyCharts(entries)}</div>`,
    `<h2>Over time</h2><div class="charts">${timelineCharts(entries)}</div>`,
    `<h2>Client overhead</h2>${overheadTable(entries.map((e) => e.point))}`,
  ];
  return page('Load test comparison', body.join('\n'));
}
