// Messages between the main thread's WorkerEngine and the engine worker (engine/worker/worker.ts).

import type { EngineEvent, EngineInfo, EngineStats, GenerateRequest } from '../api.ts';

export type ToWorker =
  | { type: 'submit'; req: GenerateRequest }
  | { type: 'abort'; id: string }
  | { type: 'close' };

export type FromWorker =
  | { type: 'progress'; done: number; total: number; what: string }
  | { type: 'ready'; info: EngineInfo; tokenizerPath: string; stats: EngineStats }
  | { type: 'failed'; message: string; errorName: string }
  | { type: 'event'; id: string; event: EngineEvent }
  /** submit() threw synchronously in the worker (queue full, prompt too long, engine dead). */
  | { type: 'rejected'; id: string; code: string; message: string }
  | { type: 'stats'; stats: EngineStats }
  | { type: 'closed' };
