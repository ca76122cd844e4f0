// The run file (`--out run.json`): everything needed to recompute, redraw or compare a run later.
import { readFileSync } from 'node:fs';
import type { Aggregates } from './aggregate.ts';
import type { ClientOverhead } from './runner.ts';
import type { MetricsSeries } from './scraper.ts';
import type { LoadSpec, RequestRecord } from './types.ts';

export const RUN_FORMAT = 'blockserve-loadtest/1';

export interface PointResult {
  load: LoadSpec;
  records: RequestRecord[];
  aggregates: Aggregates;
  overhead: ClientOverhead;
  metrics: MetricsSeries | null;
}

export interface RunFile {
  format: typeof RUN_FORMAT;
  label: string;
  createdAt: string;
  /** The resolved command-line config (API key removed). */
  config: Record<string, unknown>;
  server: {
    url: string;
    model: string;
    /** The server's GET /v1/models answer, verbatim. */
    models: unknown;
    /** How prompt lengths were made: exact via /tokenize, or the approximation used. */
    promptLengths: string;
  };
  warmup: { requests: number; failed: number };
  points: PointResult[];
  /** Load points measured but not reported because the client could not generate them. */
  refused: Array<{ load: LoadSpec; reason: string; overhead: ClientOverhead }>;
  sweep: { kind: 'rate' | 'concurrency'; stoppedBecause: string } | null;
}

export function readRunFile(path: string): RunFile {
  const obj = JSON.parse(readFileSync(path, 'utf8')) as RunFile;
  if (obj?.format !== RUN_FORMAT || !Array.isArray(obj.points)) throw new Error(`${path}: not a ${RUN_FORMAT} run file`);
  return obj;
}

export function loadLabel(load: LoadSpec): string {
  if (load.kind === 'concurrency') return `concurrency ${load.concurrency}`;
  return `rate ${load.rate} req/s${load.burstiness !== 1 ? ` (burstiness ${load.burstiness})` : ''}`;
}

export function loadValue(load: LoadSpec): number {
  return load.kind === 'rate' ? load.rate : load.concurrency;
}
