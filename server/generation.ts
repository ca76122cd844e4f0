// One API request as engine requests: prompts x n choices, each its own engine request, their event
// streams merged into one stream of (choice index, event). Submission (the engine's checkRequest and
// admission rules decide, synchronously: a refusal is an ApiError before any response byte), drain
// tracking, metrics and the per-request log summary all hang here so that SSE, WebSocket and plain
// JSON share them.
import { EngineRequestError, type Engine, type EngineEvent, type FinishReason } from '../engine/api.ts';
import type { ServerMetrics, RequestTimer } from './metrics.ts';
import { ApiError } from './errors.ts';
import { engineRefusal, type PreparedRequest } from './prepare.ts';
import type { ServerState } from './state.ts';

export interface ChoiceEvent {
  choice: number;
  event: EngineEvent;
}

export interface GenerationSummary {
  id: string;
  model: string;
  promptTokens: number;
  completionTokens: number;
  ttftMs: number | null;
  e2eMs: number;
  finishReasons: (FinishReason | 'error')[];
}

const SEED_SPACE = 2 ** 53;

export class Generation {
  readonly engineIds: string[];
  private readonly timers: RequestTimer[];
  private readonly finished: boolean[];
  private readonly reasons: (FinishReason | 'error')[];
  private readonly usage: { prompt: number; completion: number }[];
  private streams: AsyncIterable<EngineEvent>[] = [];
  private readonly arrivalMs = performance.now();

  constructor(
    readonly id: string,
    readonly req: PreparedRequest,
    private readonly engine: Engine,
    private readonly state: ServerState,
    metrics: ServerMetrics,
  ) {
    const count = req.prompts.length * req.n;
    this.engineIds = Array.from({ length: count }, (_, i) => `${id}-${i}`);
    this.timers = this.engineIds.map(() => metrics.timer(this.arrivalMs));
    this.finished = this.engineIds.map(() => false);
    this.reasons = this.engineIds.map(() => 'abort' as const);
    this.usage = this.engineIds.map(() => ({ prompt: 0, completion: 0 }));
  }

  get choiceCount(): number {
    return this.engineIds.length;
  }

  promptOf(choice: number): number {
    return Math.floor(choice / this.req.n);
  }

  /**
   * Submits every choice, or none: a refusal (bad value 400, queue full 429, dead engine 503) aborts
   * those already submitted and throws the ApiError naming the wire parameter.
   */
  start(): void {
    const count = this.engineIds.length;
    if (count > this.engine.limits.maxInFlight) {
      // Retrying could never help: a 400, not a 429.
      throw new ApiError(
        'invalid_request',
        `This request needs ${count} sequences (prompts x n), more than this server admits at once (${this.engine.limits.maxInFlight}).`,
        'n',
      );
    }
    let c = 0;
    try {
      for (; c < this.engineIds.length; c++) {
        const sampling = { ...this.req.sampling };
        // Choices of one request must differ even with a seed: choice j uses seed + j.
        if (sampling.seed !== undefined && this.req.n > 1) sampling.seed = (sampling.seed + (c % this.req.n)) % SEED_SPACE;
        const promptIds = this.req.prompts[this.promptOf(c)].ids;
        const promptLogprobs = this.req.promptLogprobs;
        const stream = this.engine.submit({
          id: this.engineIds[c],
          promptIds,
          sampling,
          ...(promptLogprobs !== undefined ? { promptLogprobs } : {}),
        });
        this.state.track(this.engineIds[c], this.engine);
        this.streams.push(stream);
      }
    } catch (e) {
      for (let k = 0; k < this.streams.length; k++) {
        this.engine.abort(this.engineIds[k]);
        this.state.untrack(this.engineIds[k]);
      }
      throw e instanceof EngineRequestError ? engineRefusal(e, this.req, this.promptOf(c)) : e;
    }
  }

  /** Stops every unfinished choice; their streams end with finished{abort}. */
  abort(): void {
    for (let c = 0; c < this.engineIds.length; c++) if (!this.finished[c]) this.engine.abort(this.engineIds[c]);
  }

  /** Merged events of all choices, in arrival order; ends when every choice has ended. */
  async *events(): AsyncGenerator<ChoiceEvent> {
    const queue: ChoiceEvent[] = [];
    let wake: (() => void) | null = null;
    let open = this.streams.length;
    const pumps = this.streams.map(async (stream, choice) => {
      try {
        for await (const event of stream) {
          this.observe(choice, event);
          queue.push({ choice, event });
          wake?.();
          if (event.type === 'finished' || event.type === 'error') break;
        }
        if (!this.finished[choice]) throw new Error('engine stream ended without finished or error');
      } catch (e) {
        if (!this.finished[choice]) {
          const event: EngineEvent = { type: 'error', code: 'engine_error', message: (e as Error).message };
          this.observe(choice, event);
          queue.push({ choice, event });
        }
      } finally {
        this.state.untrack(this.engineIds[choice]);
        open--;
        wake?.();
      }
    });
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (open === 0) break;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      // The consumer went away early (disconnect, error): stop the engine work and let pumps drain.
      if (open > 0) this.abort();
      await Promise.allSettled(pumps);
    }
  }

  private observe(choice: number, event: EngineEvent): void {
    const timer = this.timers[choice];
    switch (event.type) {
      case 'started':
        timer.started();
        break;
      case 'token':
        timer.tokens(event.tokenIds.length);
        break;
      case 'finished':
        this.finished[choice] = true;
        this.reasons[choice] = event.reason;
        this.usage[choice] = { prompt: event.usage.promptTokens, completion: event.usage.completionTokens };
        timer.finished(event.reason, event.usage.promptTokens, event.usage.completionTokens);
        break;
      case 'error':
        this.finished[choice] = true;
        this.reasons[choice] = 'error';
        this.usage[choice] = { prompt: this.req.prompts[this.promptOf(choice)].ids.length, completion: timer.tokensOut };
        timer.failed();
        break;
    }
  }

  /** Usage as OpenAI counts it: each prompt once (not once per choice), every choice's output. */
  usageTotals(): { promptTokens: number; completionTokens: number } {
    const promptTokens = this.req.prompts.reduce((s, p) => s + p.ids.length, 0);
    const completionTokens = this.usage.reduce((s, u) => s + u.completion, 0);
    return { promptTokens, completionTokens };
  }

  summary(): GenerationSummary {
    const firsts = this.timers.map((t) => t.firstTokenMs).filter((x): x is number => x !== null);
    const { promptTokens, completionTokens } = this.usageTotals();
    return {
      id: this.id,
      model: this.req.model,
      promptTokens,
      completionTokens,
      ttftMs: firsts.length ? Math.round(Math.min(...firsts) - this.arrivalMs) : null,
      e2eMs: Math.round(performance.now() - this.arrivalMs),
      finishReasons: [...this.reasons],
    };
  }
}
