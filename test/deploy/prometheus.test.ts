// The metrics path of the autoscaler, end to end minus Kubernetes: the real server under a load that
// queues requests, a real Prometheus scraping it with the `namespace` and `pod` labels a PodMonitor adds,
// and the prometheus-adapter rules' own queries (seriesQuery, and metricsQuery rendered the way the
// adapter renders it) answering with the per-pod values the HPA would read. Also `promtool check config`
// on the compose Prometheus config. Needs Debian's prometheus binaries (.ci/setup.d/50-deploy.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { KUBERNETES_DIR, REPO_ROOT } from './deploy-files.ts';

const PROM_DIRS = ['/opt/blockserve-deploy/prometheus/usr/bin', ...(process.env.PATH ?? '').split(':')];
const findTool = (name: string) => PROM_DIRS.map((d) => join(d, name)).find((p) => existsSync(p));
const prometheusBin = findTool('prometheus');
const promtoolBin = findTool('promtool');
const skip = !prometheusBin || !promtoolBin ? 'prometheus/promtool not found (see .ci/setup.d/50-deploy.sh)' : false;

type AdapterRule = { seriesQuery: string; metricsQuery: string; name: { as: string } };
const rules = (parse(readFileSync(join(KUBERNETES_DIR, 'prometheus-adapter/values.yaml'), 'utf8')) as { rules: { custom: AdapterRule[] } })
  .rules.custom;

/** prometheus-adapter's metricsQuery template for one namespace's pods, grouped by pod. */
export function renderMetricsQuery(template: string, series: string, namespace: string, pods: string[]): string {
  const out = template
    .replaceAll('<<.Series>>', series)
    .replaceAll('<<.LabelMatchers>>', `namespace="${namespace}",pod=~"${pods.join('|')}"`)
    .replaceAll('<<.GroupBy>>', 'pod');
  if (out.includes('<<')) throw new Error(`adapter template field not rendered: ${out}`);
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function poll<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${deadlineMs} ms${last ? ` (${(last as Error).message})` : ''}`);
}

type Sample = { metric: Record<string, string>; value: [number, string] };
async function promQuery(base: string, query: string): Promise<Sample[]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as { status: string; error?: string; data: { result: Sample[] } };
  if (body.status !== 'success') throw new Error(`${query}: ${body.error}`);
  return body.data.result;
}

test('promtool accepts the compose Prometheus config', { skip }, () => {
  const r = spawnSync(promtoolBin!, ['check', 'config', join(REPO_ROOT, 'deploy/prometheus.yml')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('adapter rules return per-pod queue depth from a real Prometheus scraping a loaded server', { skip, timeout: 180_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'blockserve-prom-'));
  const children: ChildProcess[] = [];
  let serverLog = '';
  try {
    const port = await freePort();
    // One sequence at a time, so concurrent requests queue: the state the HPA's metric is about. The
    // random b4_5 config, not the much faster trained default, so the queue lasts past a scrape.
    const server = spawn(process.execPath, ['bin/blockserve.js', 'serve', '--config', 'models/demo/config.yaml'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BLOCKSERVE_PORT: String(port), BLOCKSERVE_MAX_NUM_SEQS: '1', BLOCKSERVE_LOG_LEVEL: 'warn' },
    });
    children.push(server);
    server.stdout!.on('data', (d: Buffer) => {
      serverLog += d;
    });
    server.stderr!.on('data', (d: Buffer) => {
      serverLog += d;
    });
    const base = `http://127.0.0.1:${port}`;
    await poll('server ready', 120_000, async () => (await fetch(`${base}/ready`)).status === 200 || undefined);

    // Labels a PodMonitor / kubernetes-pods job attaches; the adapter maps them to Kubernetes objects.
    const namespace = 'blockserve',
      pod = 'blockserve-test-0';
    const promPort = await freePort();
    writeFileSync(
      join(work, 'prometheus.yml'),
      [
        'global: {scrape_interval: 1s, evaluation_interval: 1s}',
        'scrape_configs:',
        '  - job_name: blockserve',
        '    metrics_path: /metrics',
        '    static_configs:',
        `      - targets: ["127.0.0.1:${port}"]`,
        `        labels: {namespace: "${namespace}", pod: "${pod}"}`,
        '',
      ].join('\n'),
    );
    const prometheus = spawn(
      prometheusBin!,
      [
        `--config.file=${join(work, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(work, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: 'ignore' },
    );
    children.push(prometheus);
    const prom = `http://127.0.0.1:${promPort}`;
    await poll('prometheus scraping the server', 60_000, async () => {
      const up = await promQuery(prom, 'up{job="blockserve"}');
      return up[0]?.value[1] === '1' || undefined;
    });

    // Load: waves of 6 requests of 200 tokens on one batch slot (up to 5 waiting), until Prometheus has
    // scraped both a queue and a running request. One wave drains in 1.2-1.6 s here, so with a 1 s
    // scrape interval a single wave could be missed (it once was: running read 0 after the load).
    const started = Date.now();
    const peakOf = async (series: string) => Number((await promQuery(prom, `max_over_time(${series}[1m])`))[0]?.value[1] ?? 0);
    let waves = 0;
    do {
      const responses = await Promise.all(
        Array.from({ length: 6 }, () =>
          fetch(`${base}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ prompt: 'Hello', max_tokens: 200, ignore_eos: true }),
          }),
        ),
      );
      for (const r of responses) assert.equal(r.status, 200);
      waves++;
    } while (
      Date.now() - started < 40_000 &&
      ((await peakOf('blockserve:num_requests_running')) <= 0 || (await peakOf('blockserve:num_requests_waiting')) < 2)
    );
    t.diagnostic(`load ran ${((Date.now() - started) / 1000).toFixed(1)} s in ${waves} wave(s)`);
    await new Promise((r) => setTimeout(r, 2500)); // one more scrape after the load

    const peak = await peakOf('blockserve:num_requests_waiting');
    t.diagnostic(`peak waiting seen by Prometheus: ${peak}`);
    assert.ok(peak >= 2, 'Prometheus saw a queue');

    for (const rule of rules) {
      const series = (await fetch(`${prom}/api/v1/series?match[]=${encodeURIComponent(rule.seriesQuery)}`).then((r) => r.json())) as {
        data: Record<string, string>[];
      };
      assert.ok(series.data.length >= 1, `seriesQuery ${rule.seriesQuery} finds the server's series`);
      const name = series.data[0]!.__name__!;
      for (const s of series.data) assert.ok(s.namespace === namespace && s.pod === pod, 'the series carry namespace and pod');
      const query = renderMetricsQuery(rule.metricsQuery, name, namespace, [pod]);
      const result = await promQuery(prom, query);
      t.diagnostic(`${rule.name.as}: ${query} -> ${result.map((r) => `${r.metric.pod}=${r.value[1]}`).join(', ')}`);
      assert.equal(result.length, 1, 'one value per pod');
      assert.equal(result[0]!.metric.pod, pod);
      assert.ok(Number(result[0]!.value[1]) > 0, `${rule.name.as} is above 0 after the load`);
    }
  } catch (err) {
    if (serverLog) t.diagnostic(`server log tail: ${serverLog.slice(-2000)}`);
    throw err;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    rmSync(work, { recursive: true, force: true });
  }
});
