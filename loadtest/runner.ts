// Drives one measured phase: open loop (arrivals on a seeded Poisson/gamma schedule, sent whether or
// not earlier requests finished) or closed loop (C workers, each sending its next request when the
// last one ends). It also measures the client itself: how late each send was against its schedule,
// event-loop lag and CPU, because a load tester that falls behind reports its own limits, not the
// server's.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { StreamingClient } from './client.ts';
import { nextGapSeconds, Rng } from './rng.ts';
import { distribution, percentileSorted, type Distribution } from './stats.ts';
import type { LoadSpec, RequestRecord, WorkItem } from './types.ts';

export interface PhaseConfig {
  load: LoadSpec;
  numRequests?: number;
  durationS?: number;
  seed: number;
  items: WorkItem[];
  /**
   * Open loop: refuse the phase when p95 send lateness exceeds this (default 25 ms): more than 1 in
   * 20 requests sent that late means the arrival process was not the one asked for. (p95, not p99:
   * one stall of a shared machine in a short run should show in the overhead, not void the run.)
   */
  maxSendLagMs?: number;
  /** Open loop: refuse when achieved / scheduled send rate is below this (default 0.95). */
  minRateRatio?: number;
}

export interface ClientOverhead {
  /** Open loop: the rate asked for, and the rate of the seeded schedule actually drawn. */
  requestedRate: number | null;
  scheduledRate: number | null;
  /** Sends per second the client achieved (first to last send). */
  achievedRate: number;
  /** Open loop: actual send time minus scheduled send time. */
  sendLagMs: Distribution | null;
  eventLoopLagMs: { mean: number; p50: number; p99: number; max: number };
  /** Client CPU time / wall time, in percent of one core. */
  clientCpuPercent: number;
  wallS: number;
}

export interface PhaseResult {
  records: RequestRecord[];
  overhead: ClientOverhead;
  /** Why the phase's numbers must not be reported (the client could not generate the load), or null. */
  refused: string | null;
}

export interface ProgressSink {
  sent(): void;
  finished(rec: RequestRecord): void;
}

function percentile95(records: RequestRecord[]): number {
  return percentileSorted(Float64Array.from(records, (r) => r.sentAtMs - r.scheduledAtMs!).sort(), 95);
}

// The delay histogram records whole timer intervals; the resolution is subtracted to leave the lag.
const LAG_RESOLUTION_MS = 2;

const noProgress: ProgressSink = { sent() {}, finished() {} };

export async function runPhase(client: StreamingClient, cfg: PhaseConfig, progress: ProgressSink = noProgress): Promise<PhaseResult> {
  if (cfg.numRequests === undefined && cfg.durationS === undefined) throw new Error('runPhase needs numRequests or durationS');
  if (cfg.items.length === 0) throw new Error('runPhase needs at least one work item');
  const maxRequests = cfg.numRequests ?? Number.MAX_SAFE_INTEGER;
  const durationMs = cfg.durationS !== undefined ? cfg.durationS * 1000 : Infinity;
  const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  lag.enable();
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const records: RequestRecord[] = [];
  const pending: Promise<void>[] = [];

  const launch = (index: number, scheduledAtMs: number | null): Promise<void> => {
    progress.sent();
    const item = cfg.items[index % cfg.items.length];
    return client.send(index, item, start, scheduledAtMs).then((rec) => {
      records.push(rec);
      progress.finished(rec);
    });
  };

  if (cfg.load.kind === 'rate') {
    const { rate, burstiness } = cfg.load;
    const rng = new Rng(cfg.seed ^ 0x5eed);
    await new Promise<void>((resolve) => {
      let index = 0;
      let nextAtMs = 0;
      const pump = () => {
        const now = performance.now() - start;
        // Send everything that is due; a late tick sends a burst and the lag is recorded per request.
        while (index < maxRequests && nextAtMs <= now) {
          pending.push(launch(index, Math.round(nextAtMs * 1000) / 1000));
          index++;
          nextAtMs += nextGapSeconds(rng, rate, burstiness) * 1000;
          if (nextAtMs >= durationMs) index = maxRequests; // the schedule ends with the duration
        }
        if (index >= maxRequests) return resolve();
        setTimeout(pump, Math.max(0, nextAtMs - (performance.now() - start)));
      };
      pump();
    });
  } else {
    let index = 0;
    const worker = async () => {
      while (index < maxRequests && performance.now() - start < durationMs) {
        await launch(index++, null);
      }
    };
    for (let w = 0; w < cfg.load.concurrency; w++) pending.push(worker());
  }
  await Promise.all(pending);
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  lag.disable();
  records.sort((a, b) => a.index - b.index);

  const sends = records.map((r) => r.sentAtMs).sort((a, b) => a - b);
  const span = (xs: number[]) => (xs.length > 1 ? (xs[xs.length - 1] - xs[0]) / 1000 : NaN);
  const achievedRate = (sends.length - 1) / span(sends);
  let scheduledRate: number | null = null;
  let sendLagMs: Distribution | null = null;
  let refused: string | null = null;
  if (cfg.load.kind === 'rate') {
    const sched = records.map((r) => r.scheduledAtMs!).sort((a, b) => a - b);
    scheduledRate = (sched.length - 1) / span(sched);
    sendLagMs = distribution(records.map((r) => r.sentAtMs - r.scheduledAtMs!));
    const maxLag = cfg.maxSendLagMs ?? 25;
    const minRatio = cfg.minRateRatio ?? 0.95;
    if (records.length > 1 && achievedRate < minRatio * scheduledRate) {
      refused = `the client sent ${achievedRate.toFixed(1)} req/s but the schedule asked for ${scheduledRate.toFixed(1)} req/s (below ${(minRatio * 100).toFixed(0)}%)`;
    } else if (percentile95(records) > maxLag) {
      refused = `the client sent requests late: p95 send lag ${percentile95(records).toFixed(1)} ms > ${maxLag} ms`;
    }
  }
  const ns = (v: number) => Math.max(0, Math.round((v / 1e6 - LAG_RESOLUTION_MS) * 1000) / 1000);
  return {
    records,
    refused,
    overhead: {
      requestedRate: cfg.load.kind === 'rate' ? cfg.load.rate : null,
      scheduledRate,
      achievedRate,
      sendLagMs,
      eventLoopLagMs: { mean: ns(lag.mean), p50: ns(lag.percentile(50)), p99: ns(lag.percentile(99)), max: ns(lag.max) },
      clientCpuPercent: (100 * (cpu.user + cpu.system)) / 1000 / wallMs,
      wallS: wallMs / 1000,
    },
  };
}
