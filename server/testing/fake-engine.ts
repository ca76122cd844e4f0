// A scripted stand-in for the real engine, implementing engine/api.ts's Engine so that server/ can be
// tested without a model. It replies with a fixed text (then EOS) one token per `tokenIntervalMs`,
// honours maxTokens / stop strings / ignoreEos / logprobs, admits at most `maxRunning` requests at a
// time and queues up to `maxQueue` more (beyond that submit throws queue_full: the engine's own
// checkRequest and admit rules, engine/requests.ts), emits `started` when a request leaves its queue,
// counts aborts so tests can prove that a disconnect reached the engine, and can be killed (`kill`) to
// test what a dead engine looks like.
import {
  EngineRequestError,
  type Engine,
  type EngineEvent,
  type EngineInfo,
  type EngineStats,
  type GenerateRequest,
  type TokenizerLike,
  type TokenLogprob,
} from '../../engine/api.ts';
import { admit, checkRequest, type RequestLimits } from '../../engine/requests.ts';
import { EngineStream } from '../../engine/stream.ts';
import { ByteTokenizer } from './byte-tokenizer.ts';

export interface FakeEngineOptions {
  reply?: string;
  tokenIntervalMs?: number;
  /** Extra delay before the first token (prefill). */
  firstTokenDelayMs?: number;
  maxRunning?: number;
  maxQueue?: number;
  contextLength?: number;
  modelName?: string;
  demo?: boolean;
  tokenizer?: TokenizerLike;
  /** Every submit fails with this error code (to test error paths). */
  failWith?: 'engine_dead' | 'invalid_request';
  /** After this many tokens the request fails mid-stream with an `error` event. */
  errorAfterTokens?: number;
}

interface Active {
  req: GenerateRequest;
  out: EngineStream<EngineEvent>;
  aborted: boolean;
  /** Wakes the producer early (abort). */
  wake: (() => void) | null;
}

export class FakeEngine implements Engine {
  readonly info: EngineInfo;
  readonly tokenizer: TokenizerLike;
  /** Every request submitted, in order (tests inspect the mapped SamplingParams). */
  readonly submitted: GenerateRequest[] = [];
  abortCount = 0;
  finishedCount = 0;
  closed = false;
  readonly limits: RequestLimits;
  failure: string | null = null;
  private readonly failureListeners: ((reason: string) => void)[] = [];
  private readonly opts: Required<Omit<FakeEngineOptions, 'tokenizer' | 'failWith' | 'errorAfterTokens'>> & FakeEngineOptions;
  private readonly active = new Map<string, Active>();
  private running = 0;
  private readonly queue: Active[] = [];
  private readonly replyIds: number[];

  constructor(options: FakeEngineOptions = {}) {
    this.opts = {
      reply: 'Hello from the fake engine: ünïcødé 🙂 works.',
      tokenIntervalMs: 2,
      firstTokenDelayMs: 0,
      maxRunning: 64,
      maxQueue: 256,
      contextLength: 512,
      modelName: 'fake-model',
      demo: false,
      ...options,
    };
    this.tokenizer = options.tokenizer ?? new ByteTokenizer();
    this.replyIds = this.tokenizer.encode(this.opts.reply);
    this.info = {
      modelName: this.opts.modelName,
      kind: 'block',
      contextLength: this.opts.contextLength,
      vocabSize: this.tokenizer.vocabSize,
      eosTokenId: this.tokenizer.vocabSize - 1,
      demo: this.opts.demo,
    };
    this.limits = {
      vocabSize: this.tokenizer.vocabSize,
      contextLength: this.opts.contextLength,
      tokensPerEntry: 1,
      padFirstBlock: false,
      numPages: Math.ceil(this.opts.contextLength / 16) * (this.opts.maxRunning + 1),
      pageSize: 16,
      canScorePrompt: true,
      maxInFlight: this.opts.maxRunning + this.opts.maxQueue,
    };
  }

  onFailure(listener: (reason: string) => void): void {
    this.failureListeners.push(listener);
  }

  /** Dies as a real engine does: every stream in flight ends with engine_dead, later submits are refused. */
  kill(reason: string): void {
    if (this.failure !== null) return;
    this.failure = reason;
    for (const a of [...this.active.values()]) {
      const qi = this.queue.indexOf(a);
      if (qi >= 0) this.queue.splice(qi, 1);
      a.aborted = true;
      a.wake?.();
      this.finish(a, { type: 'error', code: 'engine_dead', message: `engine failed: ${reason}` });
    }
    for (const l of this.failureListeners) l(reason);
  }

  submit(req: GenerateRequest): AsyncIterable<EngineEvent> {
    if (this.failure !== null) throw new EngineRequestError('engine_dead', `engine failed: ${this.failure}`);
    if (this.closed || this.opts.failWith === 'engine_dead') throw new EngineRequestError('engine_dead', 'fake engine is closed');
    if (this.opts.failWith === 'invalid_request') throw new EngineRequestError('invalid_request', 'fake engine rejects everything');
    if (this.active.has(req.id)) throw new EngineRequestError('invalid_request', `duplicate request id ${req.id}`, 'id');
    checkRequest(req, this.limits);
    admit(this.active.size, 1, this.limits);
    this.submitted.push(req);
    const a: Active = { req, out: new EngineStream<EngineEvent>(() => this.abort(req.id)), aborted: false, wake: null };
    this.active.set(req.id, a);
    if (this.running < this.opts.maxRunning) this.start(a);
    else this.queue.push(a);
    return a.out;
  }

  abort(id: string): void {
    const a = this.active.get(id);
    if (!a || a.aborted) return;
    this.abortCount++;
    a.aborted = true;
    const qi = this.queue.indexOf(a);
    if (qi >= 0) {
      this.queue.splice(qi, 1);
      this.finish(a, { type: 'finished', reason: 'abort', usage: { promptTokens: a.req.promptIds.length, completionTokens: 0 } });
    } else {
      a.wake?.();
    }
  }

  stats(): EngineStats {
    return {
      running: this.running,
      waiting: this.queue.length,
      kvPagesUsed: this.running,
      kvPagesTotal: this.opts.maxRunning,
      abortedTotal: this.abortCount,
      preemptedTotal: 0,
      stepsTotal: 0,
      stepFill: 0,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.active.keys()]) this.abort(id);
  }

  /** Requests submitted and not yet finished. */
  get inFlight(): number {
    return this.active.size;
  }

  private start(a: Active): void {
    this.running++;
    void this.produce(a).finally(() => {
      this.running--;
      const next = this.queue.shift();
      if (next) this.start(next);
    });
  }

  private sleep(a: Active, ms: number): Promise<void> {
    if (ms <= 0) return new Promise((resolve) => setImmediate(resolve)); // yield, but at full speed
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        a.wake = null;
        resolve();
      }
      a.wake = done;
    });
  }

  private async produce(a: Active): Promise<void> {
    const { sampling, promptIds } = a.req;
    a.out.push({ type: 'started' });
    if (a.req.promptLogprobs !== undefined) {
      // Like a model: the first prompt token has none, each later one is given its predecessors.
      const numTop = a.req.promptLogprobs;
      a.out.push({
        type: 'prompt_logprobs',
        logprobs: promptIds.map((id, i) => {
          const token = this.tokenizer.decode([id]);
          if (i === 0) return { tokenId: id, token, logprob: null, top: null };
          const lp = this.fakeLogprob(id, i, numTop);
          return { tokenId: id, token, logprob: lp.logprob, top: lp.top };
        }),
      });
    }
    if (this.opts.firstTokenDelayMs > 0) await this.sleep(a, this.opts.firstTokenDelayMs);
    const decoder = new IncrementalText(this.tokenizer);
    const maxStop = Math.max(0, ...sampling.stop.map((s) => s.length));
    let emitted = 0; // characters of decoder.text already sent
    let generated = 0;
    for (;;) {
      if (!this.active.has(a.req.id)) return; // ended elsewhere (kill)
      if (a.aborted)
        return this.finish(a, {
          type: 'finished',
          reason: 'abort',
          usage: { promptTokens: promptIds.length, completionTokens: generated },
        });
      if (this.opts.errorAfterTokens !== undefined && generated >= this.opts.errorAfterTokens) {
        return this.finish(a, { type: 'error', code: 'engine_error', message: 'scripted failure' });
      }
      const pos = generated % (this.replyIds.length + 1);
      const isEos = pos === this.replyIds.length;
      const tokenId = isEos ? this.info.eosTokenId : this.replyIds[pos];
      if (isEos && !sampling.ignoreEos) {
        return this.finish(a, {
          type: 'finished',
          reason: 'stop',
          usage: { promptTokens: promptIds.length, completionTokens: generated },
          text: decoder.flush().slice(emitted),
        });
      }
      if (sampling.stopTokenIds.includes(tokenId)) {
        return this.finish(a, {
          type: 'finished',
          reason: 'stop',
          usage: { promptTokens: promptIds.length, completionTokens: generated + 1 },
          text: decoder.flush().slice(emitted),
        });
      }
      generated++;
      const full = decoder.push(isEos ? [] : [tokenId]);
      const hit = firstStop(full, sampling.stop);
      if (hit >= 0) {
        return this.finish(a, {
          type: 'finished',
          reason: 'stop',
          usage: { promptTokens: promptIds.length, completionTokens: generated },
          text: full.slice(emitted, hit),
        });
      }
      // Hold back a tail that could still become a stop string.
      let safeEnd = Math.max(emitted, full.length - Math.max(0, maxStop - 1));
      if (safeEnd > emitted && /[\uD800-\uDBFF]/.test(full[safeEnd - 1])) safeEnd--; // never split a surrogate pair
      const text = full.slice(emitted, safeEnd);
      emitted = safeEnd;
      const ev: EngineEvent = { type: 'token', tokenIds: [tokenId], text };
      if (sampling.logprobs !== undefined) ev.logprobs = [this.fakeLogprob(tokenId, generated, sampling.logprobs)];
      a.out.push(ev);
      if (generated >= sampling.maxTokens || promptIds.length + generated >= this.info.contextLength) {
        return this.finish(a, {
          type: 'finished',
          reason: 'length',
          usage: { promptTokens: promptIds.length, completionTokens: generated },
          text: decoder.flush().slice(emitted),
        });
      }
      await this.sleep(a, this.opts.tokenIntervalMs);
    }
  }

  private fakeLogprob(tokenId: number, step: number, top: number): TokenLogprob {
    const lp = -0.05 * ((step % 7) + 1);
    const alts = Array.from({ length: top }, (_, k) => {
      const id = k === 0 ? tokenId : (tokenId + k) % (this.info.vocabSize - 1);
      return { tokenId: id, token: this.tokenizer.decode([id]), logprob: k === 0 ? lp : lp - k };
    });
    return { tokenId, token: this.tokenizer.decode([tokenId]), logprob: lp, top: alts };
  }

  private finish(a: Active, ev: EngineEvent): void {
    if (ev.type === 'finished' && ev.text === '') delete ev.text;
    if (!this.active.delete(a.req.id)) return;
    this.finishedCount++;
    a.out.push(ev);
    a.out.end();
  }
}

/** Decodes a growing token list, exposing only text that ends on a complete character. */
class IncrementalText {
  private ids: number[] = [];
  constructor(private readonly tok: TokenizerLike) {}
  push(ids: number[]): string {
    this.ids.push(...ids);
    const t = this.tok.decode(this.ids);
    return t.endsWith('\uFFFD') ? t.slice(0, t.lastIndexOf('\uFFFD')) : t;
  }
  flush(): string {
    return this.tok.decode(this.ids);
  }
}

function firstStop(text: string, stops: string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}
