// Messages between the main thread's WorkerEngine and the engine worker (engine/worker/worker.ts).

import type { EngineEvent, EngineInfo, EngineStats, GenerateRequest } from '../api.ts';
import type { RequestLimits } from '../requests.ts';

export type ToWorker = { type: 'submit'; req: GenerateRequest } | { type: 'abort'; id: string } | { type: 'close' };

export type FromWorker =
  | { type: 'progress'; done: number; total: number; what: string }
  | { type: 'ready'; info: EngineInfo; limits: RequestLimits; tokenizerPath: string; stats: EngineStats }
  | { type: 'failed'; message: string; errorName: string }
  | { type: 'event'; id: string; event: EngineEvent }
  /**
   * submit() threw in the worker although the client's checkRequest() passed it: only a race with the
   * engine's death (engine_dead) or a bug; the client ends that stream with an error event.
   */
  | { type: 'rejected'; id: string; code: string; message: string }
  /** The engine died (a step failed); the worker stays up only to say so. */
  | { type: 'dead'; reason: string }
  /** Engine stats and the worker thread's own V8 heap (the main thread cannot see it; the soak prints it). */
  | { type: 'stats'; stats: EngineStats; heapUsed: number }
  | { type: 'closed' };
