// WorkerEngine: the Engine interface on the main thread, with the real engine in a worker thread.
// The request rules (checkRequest, admit: engine/requests.ts) are applied here, synchronously, so a
// request is refused before the server writes any byte of a 200; the loop in the worker trusts this
// admission (EngineLoopOptions.admission = 'caller'). Everything else crosses a MessagePort.

import { Worker } from 'node:worker_threads';
import { EngineRequestError } from '../api.ts';
import type { Engine, EngineEvent, EngineInfo, EngineStats, GenerateRequest, TokenizerLike } from '../api.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import { EngineStream } from '../stream.ts';
import type { EngineOptions } from '../options.ts';
import { admit, checkRequest, type RequestLimits } from '../requests.ts';
import { loadTokenizer } from '../tokenizer/tokenizer.ts';

export class EngineStartError extends Error {}

/** How long close() waits for the worker to finish its requests before terminating it. */
const CLOSE_TIMEOUT_MS = 5000;

// Compiled (dist/), the worker is plain worker.js; run from the sources (tests, development), boot.js
// first registers tsx in the new thread, which does not inherit the loader.
const WORKER_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './boot.js' : './worker.js', import.meta.url);

export class WorkerEngine implements Engine {
  /** Requests submitted whose end the worker has not reported yet: the count admission uses. */
  private readonly streams = new Map<string, EngineStream<EngineEvent>>();
  private latestStats: EngineStats;
  private workerHeap = 0;
  private dead: string | null = null;
  private closed: Promise<void> | null = null;
  private readonly failureListeners: ((reason: string) => void)[] = [];

  private constructor(
    private readonly worker: Worker,
    readonly info: EngineInfo,
    readonly limits: RequestLimits,
    readonly tokenizer: TokenizerLike,
    stats: EngineStats,
  ) {
    this.latestStats = stats;
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.die(`engine worker crashed: ${e.message}`));
    worker.on('exit', (code) => {
      if (!this.closed) this.die(`engine worker exited with code ${code}`);
    });
  }

  static async start(opts: EngineOptions): Promise<WorkerEngine> {
    const { onProgress, ...data } = opts;
    const worker = new Worker(WORKER_ENTRY, { workerData: data });
    const ready = await new Promise<Extract<FromWorker, { type: 'ready' }>>((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type === 'progress') onProgress?.(m.done, m.total, m.what);
        else if (m.type === 'ready') {
          worker.off('message', onMessage);
          resolve(m);
        } else if (m.type === 'failed') {
          worker.off('message', onMessage);
          void worker.terminate();
          reject(new EngineStartError(m.message));
        }
      };
      worker.on('message', onMessage);
      worker.once('error', (e) => reject(new EngineStartError(`engine worker failed to start: ${e.message}`)));
      worker.once('exit', (code) => reject(new EngineStartError(`engine worker exited with code ${code} while starting`)));
    });
    const tokenizer = await loadTokenizer(ready.tokenizerPath);
    return new WorkerEngine(worker, ready.info, ready.limits, tokenizer, ready.stats);
  }

  get failure(): string | null {
    return this.dead;
  }

  onFailure(listener: (reason: string) => void): void {
    this.failureListeners.push(listener);
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'event') {
      const q = this.streams.get(m.id);
      if (!q) return;
      q.push(m.event);
      if (m.event.type === 'finished' || m.event.type === 'error') {
        q.end();
        this.streams.delete(m.id);
      }
    } else if (m.type === 'rejected') {
      const q = this.streams.get(m.id);
      q?.push({ type: 'error', code: m.code, message: m.message });
      q?.end();
      this.streams.delete(m.id);
    } else if (m.type === 'stats') {
      this.latestStats = m.stats;
      this.workerHeap = m.heapUsed;
    } else if (m.type === 'dead') {
      this.die(`engine failed: ${m.reason}`);
    }
  }

  /** Every stream in flight ends with an engine_dead error; later submits are refused; listeners hear it once. */
  private die(reason: string): void {
    if (this.dead) return;
    this.dead = reason;
    for (const q of this.streams.values()) {
      q.push({ type: 'error', code: 'engine_dead', message: reason });
      q.end();
    }
    this.streams.clear();
    for (const l of this.failureListeners) l(reason);
  }

  submit(req: GenerateRequest): AsyncIterable<EngineEvent> {
    if (this.dead) throw new EngineRequestError('engine_dead', this.dead);
    if (this.closed) throw new EngineRequestError('engine_dead', 'the engine is shutting down');
    if (this.streams.has(req.id)) throw new EngineRequestError('invalid_request', `request id ${req.id} is already in flight`, 'id');
    checkRequest(req, this.limits);
    admit(this.streams.size, 1, this.limits);
    const q = new EngineStream<EngineEvent>(() => this.abort(req.id));
    this.streams.set(req.id, q);
    this.post({ type: 'submit', req });
    return q;
  }

  abort(id: string): void {
    if (this.streams.has(id) && !this.dead) this.post({ type: 'abort', id });
  }

  stats(): EngineStats {
    return this.latestStats;
  }

  /** V8 heap in use by the engine's worker thread, as of its last stats message (bytes). */
  get workerHeapUsed(): number {
    return this.workerHeap;
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      if (this.dead) {
        void this.worker.terminate().then(() => resolve());
        return;
      }
      const timeout = setTimeout(() => {
        void this.worker.terminate().then(() => resolve());
      }, CLOSE_TIMEOUT_MS);
      this.worker.on('message', (m: FromWorker) => {
        if (m.type === 'closed') {
          clearTimeout(timeout);
          void this.worker.terminate().then(() => resolve());
        }
      });
      this.worker.once('exit', () => {
        clearTimeout(timeout);
        resolve();
      });
      this.post({ type: 'close' });
    });
    return this.closed;
  }
}
