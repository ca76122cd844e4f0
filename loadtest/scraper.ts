// Scrapes the server's Prometheus /metrics every few seconds during a run and keeps every series,
// so the report can draw server-side state (queue, running, KV usage) next to client timings.
import { performance } from 'node:perf_hooks';
import { request, type Agent } from 'undici';
import { parsePrometheusText, seriesKey } from './prometheus.ts';

export interface MetricsSeries {
  url: string;
  intervalMs: number;
  /** seriesKey -> [msSincePhaseStart, value][] */
  series: Record<string, Array<[number, number]>>;
  types: Record<string, string>;
  scrapes: number;
  failures: number;
  lastError: string | null;
}

export class MetricsScraper {
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  readonly result: MetricsSeries;

  constructor(
    url: string,
    intervalMs: number,
    private readonly agent: Agent,
    private readonly headers: Record<string, string>,
    private readonly phaseStart: number,
  ) {
    this.result = { url, intervalMs, series: {}, types: {}, scrapes: 0, failures: 0, lastError: null };
  }

  start(): void {
    this.scrapeOnce();
    this.timer = setInterval(() => this.scrapeOnce(), this.result.intervalMs);
  }

  /** Stops the timer and takes a final scrape so counters cover the whole run. */
  async stop(): Promise<MetricsSeries> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
    this.scrapeOnce();
    await this.inFlight;
    return this.result;
  }

  private scrapeOnce(): void {
    if (this.inFlight) return; // a slow server gets fewer scrapes, not a pile-up
    this.inFlight = this.scrape().finally(() => {
      this.inFlight = null;
    });
  }

  private async scrape(): Promise<void> {
    const t = performance.now() - this.phaseStart;
    try {
      const res = await request(this.result.url, { headers: this.headers, dispatcher: this.agent, signal: AbortSignal.timeout(10_000) });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
      const parsed = parsePrometheusText(text);
      Object.assign(this.result.types, parsed.types);
      const tRounded = Math.round(t);
      for (const s of parsed.samples) {
        const key = seriesKey(s);
        (this.result.series[key] ??= []).push([tRounded, s.value]);
      }
      this.result.scrapes++;
    } catch (err) {
      this.result.failures++;
      this.result.lastError = (err as Error).message;
    }
  }
}

/** Base metric name of a series key (labels dropped). */
export function metricName(key: string): string {
  const brace = key.indexOf('{');
  return brace < 0 ? key : key.slice(0, brace);
}

/**
 * Gauges a person wants to see during a load test (queue, running, cache use), matched by name so
 * it works for vLLM, blockserve, TGI and llama.cpp style names.
 */
export function interestingGauges(m: MetricsSeries): string[] {
  return Object.keys(m.series)
    .filter((k) => {
      const name = metricName(k);
      const type = m.types[name];
      return (
        (type === 'gauge' || type === undefined) &&
        /running|waiting|queue|cache_usage|kv_cache|processing|deferred/i.test(name) &&
        !/_bucket$|_sum$|_count$|_created$/.test(name)
      );
    })
    .slice(0, 8);
}

/**
 * Counters that say what the server did during the run (tokens, finished requests, preemptions),
 * with their increase from the first scrape to the last.
 */
export function counterIncreases(m: MetricsSeries, limit = 6): Array<{ key: string; increase: number }> {
  return Object.keys(m.series)
    .filter((k) => {
      const name = metricName(k);
      return (
        (m.types[name] === 'counter' || name.endsWith('_total')) &&
        /token|success|preempt|request|abort/i.test(name) &&
        !/_created$/.test(name)
      );
    })
    .map((key) => {
      const pts = m.series[key];
      return { key, increase: pts[pts.length - 1][1] - pts[0][1] };
    })
    .filter((c) => c.increase > 0)
    .slice(0, limit);
}
