// WorkerEngine: the Engine interface on the main thread, with the real engine in a worker thread.
// Checks that need no model (context length, queue bound, dead engine) answer synchronously here,
// as the Engine contract asks; everything else crosses a MessagePort.

import { Worker } from 'node:worker_threads';
import { EngineRequestError } from '../api.ts';
import type { Engine, EngineEvent, EngineInfo, EngineStats, GenerateRequest, TokenizerLike } from '../api.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import { EventQueue } from './queue.ts';
import type { EngineOptions } from '../options.ts';
import { loadTokenizer } from '../tokenizer/tokenizer.ts';

export class EngineStartError extends Error {}

// Compiled (dist/), the worker is plain worker.js; run from the sources (tests, development), boot.js
// first registers tsx in the new thread, which does not inherit the loader.
const WORKER_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './boot.js' : './worker.js', import.meta.url);

export class WorkerEngine implements Engine {
  private readonly streams = new Map<string, EventQueue<EngineEvent>>();
  private latestStats: EngineStats;
  private dead: string | null = null;
  private closed: Promise<void> | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly info: EngineInfo,
    readonly tokenizer: TokenizerLike,
    stats: EngineStats,
    private readonly maxInFlight: number,
  ) {
    this.latestStats = stats;
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.die(`engine worker crashed: ${e.message}`));
    worker.on('exit', (code) => { if (!this.closed) this.die(`engine worker exited with code ${code}`); });
  }

  static async start(opts: EngineOptions): Promise<WorkerEngine> {
    const { onProgress, ...data } = opts;
    const worker = new Worker(WORKER_ENTRY, { workerData: data });
    const ready = await new Promise<Extract<FromWorker, { type: 'ready' }>>((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type === 'progress') onProgress?.(m.done, m.total, m.what);
        else if (m.type === 'ready') { worker.off('message', onMessage); resolve(m); }
        else if (m.type === 'failed') { worker.off('message', onMessage); void worker.terminate(); reject(new EngineStartError(m.message)); }
      };
      worker.on('message', onMessage);
      worker.once('error', (e) => reject(new EngineStartError(`engine worker failed to start: ${e.message}`)));
    });
    const tokenizer = await loadTokenizer(ready.tokenizerPath);
    return new WorkerEngine(worker, ready.info, tokenizer, ready.stats, opts.maxNumSeqs + opts.maxQueue);
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'event') {
      const q = this.streams.get(m.id);
      if (!q) return;
      q.push(m.event);
      if (m.event.type === 'finished' || m.event.type === 'error') { q.end(); this.streams.delete(m.id); }
    } else if (m.type === 'rejected') {
      const q = this.streams.get(m.id);
      q?.push({ type: 'error', code: m.code, message: m.message });
      q?.end();
      this.streams.delete(m.id);
    } else if (m.type === 'stats') {
      this.latestStats = m.stats;
    }
  }

  private die(reason: string): void {
    if (this.dead) return;
    this.dead = reason;
    for (const q of this.streams.values()) { q.push({ type: 'error', code: 'engine_dead', message: reason }); q.end(); }
    this.streams.clear();
  }

  submit(req: GenerateRequest): AsyncIterable<EngineEvent> {
    if (this.dead) throw new EngineRequestError('engine_dead', this.dead);
    if (this.closed) throw new EngineRequestError('engine_dead', 'the engine is shutting down');
    if (this.streams.has(req.id)) throw new EngineRequestError('invalid_request', `request id ${req.id} is already in flight`);
    const total = req.promptIds.length + req.sampling.maxTokens;
    if (req.promptIds.length >= this.info.contextLength || total > this.info.contextLength) {
      throw new EngineRequestError('context_length_exceeded', `prompt (${req.promptIds.length} tokens) + max_tokens (${req.sampling.maxTokens}) exceeds the model's context length of ${this.info.contextLength} tokens`);
    }
    if (this.streams.size >= this.maxInFlight) throw new EngineRequestError('queue_full', `engine queue is full (${this.maxInFlight} requests in flight)`);
    const q = new EventQueue<EngineEvent>();
    this.streams.set(req.id, q);
    this.post({ type: 'submit', req });
    return q;
  }

  abort(id: string): void {
    if (this.streams.has(id)) this.post({ type: 'abort', id });
  }

  stats(): EngineStats {
    return this.latestStats;
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      const timeout = setTimeout(() => { void this.worker.terminate().then(() => resolve()); }, 5000);
      this.worker.on('message', (m: FromWorker) => {
        if (m.type === 'closed') { clearTimeout(timeout); void this.worker.terminate().then(() => resolve()); }
      });
      this.post({ type: 'close' });
    });
    return this.closed;
  }
}
