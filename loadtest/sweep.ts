// When a sweep has found saturation: past that point more offered load only buys queueing. The rule
// is the one a person applies to the curve: latency and queueing both kept rising, i.e. the last two
// steps each raised median E2E (latency) and median TTFT (queueing shows up there first) by more
// than `riseFraction`, while throughput stopped paying for it (the last point is not `riseFraction`
// above the best before it; a batching server's latency also rises while it still gains throughput).
// A mostly failing point (e.g. a server answering 429) also ends the sweep.
import type { Aggregates } from './aggregate.ts';

export interface SweepVerdict {
  stop: boolean;
  reason: string;
}

export function sweepValues(explicit: number[] | null, maxPoints: number): number[] {
  if (explicit) return explicit;
  return Array.from({ length: maxPoints }, (_, i) => 2 ** i);
}

export function sweepVerdict(history: Aggregates[], riseFraction: number): SweepVerdict {
  const last = history[history.length - 1];
  if (last && last.requests > 0 && last.failed / last.requests > 0.5) {
    return { stop: true, reason: `overloaded: ${last.failed} of ${last.requests} requests failed at the last point` };
  }
  if (history.length < 3) return { stop: false, reason: '' };
  const rises = (a: number, b: number) => Number.isFinite(a) && Number.isFinite(b) && b > a * (1 + riseFraction);
  const [a, b, c] = history.slice(-3);
  const latencyRising = rises(a.e2eMs.p50, b.e2eMs.p50) && rises(b.e2eMs.p50, c.e2eMs.p50);
  const queueRising = rises(a.ttftMs.p50, b.ttftMs.p50) && rises(b.ttftMs.p50, c.ttftMs.p50);
  const bestBefore = Math.max(...history.slice(0, -1).map((h) => h.outputTokenRate));
  const throughputFlat = !(c.outputTokenRate > bestBefore * (1 + riseFraction));
  if (latencyRising && queueRising && throughputFlat) {
    const pct = Math.round(riseFraction * 100);
    return {
      stop: true,
      reason: `saturated: median E2E and TTFT rose by more than ${pct}% at each of the last two steps while output tokens/s gained less than ${pct}%`,
    };
  }
  return { stop: false, reason: '' };
}
