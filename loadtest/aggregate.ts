// From raw per-request records to the figures serving engineers compare: request and token
// throughput, TTFT / ITL / TPOT / E2E distributions, goodput under an SLO, and errors by kind.
// Definitions follow vLLM's benchmark_serving: TPOT = (E2E - TTFT) / (output tokens - 1); ITL is
// every gap between content chunks; throughput divides by the phase's span (first send to last end).
import { distribution, type Distribution } from './stats.ts';
import type { RequestRecord } from './types.ts';

export interface Slo {
  ttftMs?: number;
  tpotMs?: number;
  e2eMs?: number;
}

export interface Aggregates {
  durationS: number;
  requests: number;
  completed: number;
  failed: number;
  requestRate: number;
  outputTokenRate: number;
  totalTokenRate: number;
  inputTokens: number;
  outputTokens: number;
  /** Requests whose token counts came from the server's usage chunk (the rest count chunks). */
  tokensFromUsage: number;
  ttftMs: Distribution;
  itlMs: Distribution;
  tpotMs: Distribution;
  e2eMs: Distribution;
  goodput: { slo: Slo; requestRate: number; fraction: number } | null;
  /** Failures by kind: HTTP status ("429", "503", "500") or bad-json, no-done, stream-error, network, timeout. */
  errors: Record<string, number>;
}

export function tpotOf(r: RequestRecord): number | null {
  if (!r.ok || r.ttftMs === null || r.outputTokens === null || r.outputTokens < 2) return null;
  return (r.e2eMs - r.ttftMs) / (r.outputTokens - 1);
}

export function meetsSlo(r: RequestRecord, slo: Slo): boolean {
  if (!r.ok) return false;
  if (slo.ttftMs !== undefined && (r.ttftMs === null || r.ttftMs > slo.ttftMs)) return false;
  const tpot = tpotOf(r);
  if (slo.tpotMs !== undefined && tpot !== null && tpot > slo.tpotMs) return false;
  if (slo.e2eMs !== undefined && r.e2eMs > slo.e2eMs) return false;
  return true;
}

/** "ttft:500,tpot:50" (milliseconds; e2e also accepted). */
export function parseSlo(text: string): Slo {
  const slo: Slo = {};
  for (const part of text.split(',')) {
    const [key, value] = part.split(':');
    const ms = Number(value);
    if (!Number.isFinite(ms) || ms <= 0) throw new Error(`bad --slo part "${part}": use ttft:MS,tpot:MS`);
    if (key === 'ttft') slo.ttftMs = ms;
    else if (key === 'tpot') slo.tpotMs = ms;
    else if (key === 'e2e') slo.e2eMs = ms;
    else throw new Error(`bad --slo key "${key}": ttft, tpot or e2e`);
  }
  return slo;
}

export function aggregate(records: RequestRecord[], slo: Slo | null): Aggregates {
  const ok = records.filter((r) => r.ok);
  let startMs = Infinity;
  let endMs = -Infinity;
  for (const r of records) {
    if (r.sentAtMs < startMs) startMs = r.sentAtMs;
    if (r.endAtMs > endMs) endMs = r.endAtMs;
  }
  if (!records.length) startMs = endMs = 0;
  const durationS = Math.max(1e-9, (endMs - startMs) / 1000);
  let inputTokens = 0;
  let outputTokens = 0;
  let tokensFromUsage = 0;
  const itl: number[] = [];
  for (const r of ok) {
    inputTokens += r.promptTokens ?? 0;
    outputTokens += r.outputTokens ?? 0;
    if (r.tokensFromUsage) tokensFromUsage++;
    for (const g of r.itlMs) itl.push(g);
  }
  const errors: Record<string, number> = {};
  for (const r of records) if (!r.ok) errors[r.errorKind ?? 'unknown'] = (errors[r.errorKind ?? 'unknown'] ?? 0) + 1;
  let goodput: Aggregates['goodput'] = null;
  if (slo) {
    const good = records.filter((r) => meetsSlo(r, slo)).length;
    goodput = { slo, requestRate: good / durationS, fraction: records.length ? good / records.length : 0 };
  }
  return {
    durationS,
    requests: records.length,
    completed: ok.length,
    failed: records.length - ok.length,
    requestRate: ok.length / durationS,
    outputTokenRate: outputTokens / durationS,
    totalTokenRate: (inputTokens + outputTokens) / durationS,
    inputTokens,
    outputTokens,
    tokensFromUsage,
    ttftMs: distribution(ok.filter((r) => r.ttftMs !== null).map((r) => r.ttftMs!)),
    itlMs: distribution(itl),
    tpotMs: distribution(ok.map(tpotOf).filter((v): v is number => v !== null)),
    e2eMs: distribution(ok.map((r) => r.e2eMs)),
    goodput,
    errors,
  };
}
