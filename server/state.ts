// What the HTTP layer knows about the serving process: the engine (null while it loads), readiness,
// draining, and admission control. Admission bounds the engine requests in flight to
// max-num-seqs + max-queue: beyond that a request gets 429 at once instead of waiting in an unbounded
// queue (serving.md). Every engine request in flight is registered here so a drain can abort them.
import type { Engine } from '../engine/api.ts';
import type { ServerConfig } from './config.ts';
import { ApiError } from './errors.ts';

export interface LoadProgress {
  done: number;
  total: number;
  what: string;
}

export class ServerState {
  engine: Engine | null = null;
  loadProgress: LoadProgress | null = null;
  draining = false;
  /** Set when the engine reported itself dead: /health fails and requests get 503. */
  engineDead = false;
  /** Engine request ids in flight -> their engine, so drain can abort them. */
  readonly inFlight = new Map<string, Engine>();
  private readonly idleWaiters: (() => void)[] = [];
  /** HTTP responses started and not yet finished or closed (WebSocket upgrades excluded). */
  openResponses = 0;
  private readonly responseWaiters: (() => void)[] = [];

  constructor(readonly config: ServerConfig) {}

  get capacity(): number {
    return this.config.engine.maxNumSeqs + this.config.engine.maxQueue;
  }

  get ready(): boolean {
    return this.engine !== null && !this.draining && !this.engineDead;
  }

  get servedModelName(): string {
    return this.config.servedModelName ?? this.engine?.info.modelName ?? 'loading';
  }

  /** The engine, or the 503 that explains why there is none to use right now. */
  requireEngine(): Engine {
    if (this.draining) throw new ApiError('server_shutting_down', 'The server is shutting down; retry on another instance.');
    if (this.engineDead) throw new ApiError('engine_dead', 'The engine has failed; this instance cannot serve requests.');
    if (!this.engine) throw new ApiError('model_loading', 'The model is still loading; retry when /ready says true.');
    return this.engine;
  }

  /** Reserves room for `count` engine requests or throws 429. */
  admit(count: number): void {
    if (count > this.capacity) {
      // Retrying could never help: a 400, not a 429.
      throw new ApiError('invalid_request', `This request needs ${count} sequences (prompts x n), more than this server admits at once (${this.capacity}).`, 'n');
    }
    if (this.inFlight.size + count > this.capacity) {
      throw new ApiError(
        'rate_limit_exceeded',
        `Server is at capacity (${this.inFlight.size} requests in flight, limit ${this.capacity}); retry later.`,
      );
    }
  }

  track(id: string, engine: Engine): void {
    this.inFlight.set(id, engine);
  }

  untrack(id: string): void {
    this.inFlight.delete(id);
    if (this.inFlight.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when no engine request is in flight. */
  idle(): Promise<void> {
    if (this.inFlight.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  responseOpened(): void {
    this.openResponses++;
  }

  responseClosed(): void {
    this.openResponses--;
    if (this.openResponses === 0) for (const w of this.responseWaiters.splice(0)) w();
  }

  /** Resolves when every HTTP response has been fully written (so closing connections cuts nothing). */
  responsesDone(): Promise<void> {
    if (this.openResponses === 0) return Promise.resolve();
    return new Promise((r) => this.responseWaiters.push(r));
  }

  abortAll(): void {
    for (const [id, engine] of this.inFlight) engine.abort(id);
  }
}
