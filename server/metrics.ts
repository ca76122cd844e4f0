// Prometheus metrics in the style of vLLM (`vllm:` -> `blockserve:`), every one labelled with `model`.
// Gauges of engine state are read at scrape time from engine.stats(); per-request counters and
// histograms are fed by RequestTimer as each request's events pass through the server.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FinishReason } from '../engine/api.ts';
import type { ServerState } from './state.ts';

const LATENCY_BUCKETS = [0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly promptTokens: Counter<'model'>;
  readonly generationTokens: Counter<'model'>;
  readonly requestSuccess: Counter<'model' | 'finished_reason'>;
  readonly requestErrors: Counter<'model'>;
  readonly ttft: Histogram<'model'>;
  readonly itl: Histogram<'model'>;
  readonly e2e: Histogram<'model'>;
  readonly queueTime: Histogram<'model'>;
  private lastPreempted = 0;

  constructor(private readonly state: ServerState) {
    const registers = [this.registry];
    const model = () => state.servedModelName;
    const stats = () => (state.engine ? state.engine.stats() : null);
    const self = this;
    new Gauge({
      name: 'blockserve:num_requests_running',
      help: 'Requests in the running batch.',
      labelNames: ['model'],
      registers,
      collect() {
        this.set({ model: model() }, stats()?.running ?? 0);
      },
    });
    new Gauge({
      name: 'blockserve:num_requests_waiting',
      help: 'Requests queued in the engine.',
      labelNames: ['model'],
      registers,
      collect() {
        this.set({ model: model() }, stats()?.waiting ?? 0);
      },
    });
    new Gauge({
      name: 'blockserve:kv_cache_usage_perc',
      help: 'KV-cache usage, 0-1 (pages in use / pages).',
      labelNames: ['model'],
      registers,
      collect() {
        const s = stats();
        this.set({ model: model() }, s && s.kvPagesTotal > 0 ? s.kvPagesUsed / s.kvPagesTotal : 0);
      },
    });
    new Counter({
      name: 'blockserve:num_preemptions_total',
      help: 'Sequences preempted by the scheduler.',
      labelNames: ['model'],
      registers,
      collect() {
        // The engine keeps the running total; a Counter only goes up, so add the difference.
        const now = stats()?.preemptedTotal ?? self.lastPreempted;
        this.inc({ model: model() }, Math.max(0, now - self.lastPreempted)); // inc(0) still exports the series
        self.lastPreempted = now;
      },
    });
    new Gauge({
      name: 'blockserve:server_requests_in_flight',
      help: 'Engine requests admitted by the HTTP layer and not finished.',
      labelNames: ['model'],
      registers,
      collect() {
        this.set({ model: model() }, state.inFlight.size);
      },
    });
    new Gauge({
      name: 'blockserve:engine_dead',
      help: '1 once the engine has failed (the process is about to exit), else 0.',
      labelNames: ['model'],
      registers,
      collect() {
        this.set({ model: model() }, state.engineDead ? 1 : 0);
      },
    });
    let failures = 0;
    let failuresExported = 0;
    state.onEngineFailure(() => failures++);
    new Counter({
      name: 'blockserve:engine_failures_total',
      help: 'Engine deaths (a failed step, the engine worker exiting).',
      labelNames: ['model'],
      registers,
      collect() {
        this.inc({ model: model() }, failures - failuresExported); // inc(0) still exports the series
        failuresExported = failures;
      },
    });
    this.promptTokens = new Counter({
      name: 'blockserve:prompt_tokens_total',
      help: 'Prompt tokens processed.',
      labelNames: ['model'],
      registers,
    });
    this.generationTokens = new Counter({
      name: 'blockserve:generation_tokens_total',
      help: 'Tokens generated.',
      labelNames: ['model'],
      registers,
    });
    this.requestSuccess = new Counter({
      name: 'blockserve:request_success_total',
      help: 'Finished requests by finish reason.',
      labelNames: ['model', 'finished_reason'],
      registers,
    });
    this.requestErrors = new Counter({
      name: 'blockserve:request_errors_total',
      help: 'Requests that ended with an engine error.',
      labelNames: ['model'],
      registers,
    });
    this.ttft = new Histogram({
      name: 'blockserve:time_to_first_token_seconds',
      help: 'Arrival to first token.',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.itl = new Histogram({
      name: 'blockserve:inter_token_latency_seconds',
      help: 'Gap between consecutive token events of a request.',
      labelNames: ['model'],
      buckets: ITL_BUCKETS,
      registers,
    });
    this.e2e = new Histogram({
      name: 'blockserve:e2e_request_latency_seconds',
      help: 'Arrival to finish.',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueTime = new Histogram({
      name: 'blockserve:request_queue_time_seconds',
      help: 'Arrival to leaving the engine queue.',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'blockserve_' });
  }

  timer(arrivalMs: number): RequestTimer {
    return new RequestTimer(this, this.state.servedModelName, arrivalMs);
  }
}

/** Timings of one engine request, observed into the histograms as its events arrive. */
export class RequestTimer {
  startedMs: number | null = null;
  firstTokenMs: number | null = null;
  private lastTokenMs: number | null = null;
  tokensOut = 0;

  constructor(
    private readonly m: ServerMetrics,
    private readonly model: string,
    readonly arrivalMs: number,
  ) {}

  started(now = performance.now()): void {
    if (this.startedMs !== null) return;
    this.startedMs = now;
    this.m.queueTime.observe({ model: this.model }, (now - this.arrivalMs) / 1000);
  }

  tokens(count: number, now = performance.now()): void {
    if (this.startedMs === null) this.started(now);
    if (this.firstTokenMs === null) {
      this.firstTokenMs = now;
      this.m.ttft.observe({ model: this.model }, (now - this.arrivalMs) / 1000);
    } else if (this.lastTokenMs !== null) {
      this.m.itl.observe({ model: this.model }, (now - this.lastTokenMs) / 1000);
    }
    this.lastTokenMs = now;
    this.tokensOut += count;
  }

  finished(reason: FinishReason, promptTokens: number, completionTokens: number, now = performance.now()): void {
    this.m.e2e.observe({ model: this.model }, (now - this.arrivalMs) / 1000);
    this.m.requestSuccess.inc({ model: this.model, finished_reason: reason });
    this.m.promptTokens.inc({ model: this.model }, promptTokens);
    this.m.generationTokens.inc({ model: this.model }, completionTokens);
  }

  failed(): void {
    this.m.requestErrors.inc({ model: this.model });
  }
}
