// Turns raw records into the few hundred points a chart needs: empirical CDFs, throughput and
// in-flight counts over time, and a thinned scatter of TTFT against send time.
import { tpotOf } from '../aggregate.ts';
import type { PointResult } from '../runfile.ts';
import type { RequestRecord } from '../types.ts';

/** Empirical CDF as (value, fraction <= value), thinned to at most maxPoints steps. */
export function cdf(values: number[], maxPoints = 300): Array<[number, number]> {
  const sorted = Float64Array.from(values.filter(Number.isFinite)).sort();
  const n = sorted.length;
  if (n === 0) return [];
  const stride = Math.max(1, Math.floor(n / maxPoints));
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i += stride) out.push([sorted[i], (i + 1) / n]);
  if (out[out.length - 1][1] !== 1) out.push([sorted[n - 1], 1]);
  return out;
}

export type LatencyMetric = 'ttft' | 'itl' | 'tpot' | 'e2e';

export function latencyValues(records: RequestRecord[], metric: LatencyMetric): number[] {
  const ok = records.filter((r) => r.ok);
  if (metric === 'ttft') return ok.flatMap((r) => (r.ttftMs === null ? [] : [r.ttftMs]));
  if (metric === 'itl') return ok.flatMap((r) => r.itlMs);
  if (metric === 'tpot')
    return ok.flatMap((r) => {
      const t = tpotOf(r);
      return t === null ? [] : [t];
    });
  return ok.map((r) => r.e2eMs);
}

export interface Timeline {
  binS: number;
  /** [bin start in s, value] */
  outputTokensPerS: Array<[number, number]>;
  completedPerS: Array<[number, number]>;
  inFlight: Array<[number, number]>;
  errorsPerS: Array<[number, number]>;
}

/** Bins the phase into about 50 intervals. Tokens are counted when their content chunk arrived. */
export function timeline(point: PointResult, bins = 50): Timeline {
  const recs = point.records;
  let end = 0;
  for (const r of recs) if (r.endAtMs > end) end = r.endAtMs;
  const binMs = Math.max(50, end / bins);
  const n = Math.max(1, Math.ceil(end / binMs));
  const tokens = new Float64Array(n);
  const done = new Float64Array(n);
  const errs = new Float64Array(n);
  const delta = new Float64Array(n + 1); // in-flight via +1 at send, -1 at end, sampled per bin
  const bin = (t: number) => Math.min(n - 1, Math.max(0, Math.floor(t / binMs)));
  for (const r of recs) {
    delta[bin(r.sentAtMs)] += 1;
    delta[bin(r.endAtMs) + 1] -= 1;
    if (!r.ok) {
      errs[bin(r.endAtMs)]++;
      continue;
    }
    done[bin(r.endAtMs)]++;
    if (r.ttftMs === null || r.contentChunks === 0) continue;
    const perChunk = (r.outputTokens ?? r.contentChunks) / r.contentChunks;
    let t = r.sentAtMs + r.ttftMs;
    tokens[bin(t)] += perChunk;
    for (const g of r.itlMs) {
      t += g;
      tokens[bin(t)] += perChunk;
    }
  }
  const s = binMs / 1000;
  const series = (arr: Float64Array, scale: number) => Array.from(arr, (v, i): [number, number] => [Number((i * s).toFixed(3)), v * scale]);
  let running = 0;
  const inflight = Array.from({ length: n }, (_, i): [number, number] => {
    running += delta[i];
    return [Number((i * s).toFixed(3)), running];
  });
  return {
    binS: s,
    outputTokensPerS: series(tokens, 1 / s),
    completedPerS: series(done, 1 / s),
    inFlight: inflight,
    errorsPerS: series(errs, 1 / s),
  };
}

/** TTFT against send time, thinned evenly to at most maxPoints dots. */
export function ttftScatter(records: RequestRecord[], maxPoints = 2500): Array<[number, number]> {
  const ok = records.filter((r) => r.ok && r.ttftMs !== null);
  const stride = Math.max(1, Math.ceil(ok.length / maxPoints));
  const out: Array<[number, number]> = [];
  for (let i = 0; i < ok.length; i += stride) out.push([ok[i].sentAtMs / 1000, ok[i].ttftMs!]);
  return out;
}
