// What the HTTP layer knows about the serving process: the engine (null while it loads), readiness,
// draining, and a dead engine. Admission is the engine's rule (engine/requests.ts admit(), applied by
// Engine.submit): this file counts nothing against it. Every engine request in flight is registered
// here so a drain can abort them.
import type { Engine } from '../engine/api.ts';
import type { ServerConfig } from './config.ts';
import { ApiError } from './errors.ts';

export interface LoadProgress {
  done: number;
  total: number;
  what: string;
}

export class ServerState {
  private current: Engine | null = null;
  private readonly failureHandlers: ((reason: string) => void)[] = [];
  loadProgress: LoadProgress | null = null;
  draining = false;
  /** Why the engine died (null while alive): /health and /ready fail and requests get 503. */
  get engineFailure(): string | null {
    return this.engine?.failure ?? null;
  }

  get engineDead(): boolean {
    return this.engineFailure !== null;
  }
  /** Engine request ids in flight -> their engine, so drain can abort them. */
  readonly inFlight = new Map<string, Engine>();
  private readonly idleWaiters: (() => void)[] = [];
  /** HTTP responses started and not yet finished or closed (WebSocket upgrades excluded). */
  openResponses = 0;
  private readonly responseWaiters: (() => void)[] = [];

  constructor(readonly config: ServerConfig) {}

  get engine(): Engine | null {
    return this.current;
  }

  /** Setting the engine subscribes to its death: handlers (metrics, main.ts's log and exit) run once. */
  set engine(engine: Engine | null) {
    this.current = engine;
    engine?.onFailure((reason) => {
      if (this.current !== engine) return;
      for (const h of this.failureHandlers) h(reason);
    });
  }

  /** Runs `handler` once when the engine in use dies. */
  onEngineFailure(handler: (reason: string) => void): void {
    this.failureHandlers.push(handler);
  }

  get ready(): boolean {
    return this.engine !== null && !this.draining && !this.engineDead;
  }

  get servedModelName(): string {
    return this.config.servedModelName ?? this.engine?.info.modelName ?? 'loading';
  }

  /** The engine, or the 503 that explains why there is none to use right now. */
  requireEngine(): Engine {
    if (this.engineDead)
      throw new ApiError('engine_dead', `The engine has failed (${this.engineFailure}); this instance cannot serve requests.`);
    if (this.draining) throw new ApiError('server_shutting_down', 'The server is shutting down; retry on another instance.');
    if (!this.engine) throw new ApiError('model_loading', 'The model is still loading; retry when /ready says true.');
    return this.engine;
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
