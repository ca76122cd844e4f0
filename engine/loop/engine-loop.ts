// EngineLoop: the Engine interface over one Runner. One loop owns every sequence:
//   schedule() -> runner.execute(items) -> sample each logits row -> update() -> emit events
// Model-agnostic: block and vanilla models differ only in the runner's info (tokensPerEntry, padding).
// It runs wherever it is constructed; the server keeps it off the HTTP thread by constructing it inside
// the engine worker (engine/create.ts, engine/worker/).
//
// The caller allocates the runner's cache before constructing the loop:
//   runner.allocateCache(numPages * pageSize, maxNumSeqs)   (numPagesFor() sizes numPages from MiB)
import { EngineRequestError } from '../api.ts';
import type {
  Engine,
  EngineEvent,
  EngineInfo,
  EngineStats,
  FinishReason,
  GenerateRequest,
  PromptTokenLogprob,
  TokenizerLike,
  TokenLogprob,
} from '../api.ts';
import { EngineStream } from '../stream.ts';
import { admit, checkRequest, type RequestLimits } from '../requests.ts';
import type { FaultInjector } from '../faults.ts';
import { StopStringMatcher } from './stop-strings.ts';
import type { Runner, StepOutput } from '../runner-api.ts';
import { logprobsOf, rowPeak, SamplerScratch, SequenceSampler, type SampleResult } from '../sampler/sampler.ts';
import type { StepPlan } from '../scheduler/plan.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import type { Sequence } from '../scheduler/sequence.ts';

/** What EngineLoop needs of a streaming detokenizer (engine/tokenizer's IncrementalDetokenizer fits). */
export interface DetokenizerLike {
  /** Text completed by these tokens ('' while a character is incomplete). */
  push(ids: number[]): string;
  /** End of stream: whatever is held back. */
  flush(): string;
}

/** Makes one detokenizer per request. */
export type DetokenizerFactory = () => DetokenizerLike;

/** Pages of `pageSize` entries that fit in `kvCacheMb` MiB. */
export function numPagesFor(kvCacheMb: number, bytesPerEntry: number, pageSize: number): number {
  return Math.floor((kvCacheMb * 2 ** 20) / (bytesPerEntry * pageSize));
}

export interface EngineLoopOptions {
  info: EngineInfo;
  tokenizer: TokenizerLike;
  /** One streaming detokenizer per request. */
  detokenizer: DetokenizerFactory;
  /** KV pages; the runner's cache must hold numPages * pageSize entries. */
  numPages: number;
  /** KV entries per page (entries are blocks of L tokens for block models). */
  pageSize: number;
  maxNumSeqs: number;
  /** Requests admitted beyond maxNumSeqs (waiting); more in flight are refused with queue_full. */
  maxQueue: number;
  /**
   * 'caller': the one in front of this loop (the worker client) already applied admit() with a count
   * that is never below this loop's, so the loop does not apply it again (default: 'loop').
   */
  admission?: 'loop' | 'caller';
  /** Test hook: makes steps fail on purpose (engine/faults.ts). */
  faults?: FaultInjector;
  /** Token budget per step (chunked prefill). */
  maxBatchTokens: number;
  /** Block-synchronous admission (default on for block models). */
  alignPhases?: boolean;
  /** Prefix caching across requests (default on). */
  enablePrefixCache?: boolean;
  /** Runs once at the end of close() (dispose the model and backend). */
  onClose?: () => void | Promise<void>;
}

interface LiveRequest {
  req: GenerateRequest;
  stream: EngineStream<EngineEvent>;
  sampler: SequenceSampler;
  detok: DetokenizerLike;
  stopper: StopStringMatcher;
  stopIds: Set<number>;
}

export class EngineLoop implements Engine {
  readonly scheduler: Scheduler;
  private readonly live = new Map<string, LiveRequest>();
  /** Requests whose prompt logprobs are still to be computed (at the start of the next step). */
  private readonly toScore: string[] = [];
  private scratch: SamplerScratch;
  private readonly contextLength: number;
  private readonly options: EngineLoopOptions;
  private loopRunning: Promise<void> | null = null;
  private deadReason: string | null = null;
  private closing = false;
  private abortedCount = 0;
  private readonly failureListeners: ((reason: string) => void)[] = [];
  readonly limits: RequestLimits;

  readonly info: EngineInfo;
  readonly tokenizer: TokenizerLike;
  private readonly detokenizerFactory: DetokenizerFactory;

  constructor(
    private readonly runner: Runner,
    options: EngineLoopOptions,
  ) {
    this.options = options;
    this.info = options.info;
    this.tokenizer = options.tokenizer;
    this.detokenizerFactory = options.detokenizer;
    const ri = runner.info;
    this.contextLength = Math.min(options.info.contextLength, ri.contextLength);
    const numPages = options.numPages;
    if (!Number.isInteger(numPages) || numPages < 1) throw new Error(`engine: numPages must be a positive integer, got ${numPages}`);
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) throw new Error(`engine: maxQueue must be a non-negative integer`);
    this.scheduler = new Scheduler({
      tokensPerEntry: ri.tokensPerEntry,
      padFirstBlock: ri.padFirstBlock,
      contextLength: this.contextLength,
      numPages,
      pageSize: options.pageSize,
      maxNumSeqs: options.maxNumSeqs,
      maxBatchTokens: options.maxBatchTokens,
      alignPhases: options.alignPhases,
      enablePrefixCache: options.enablePrefixCache,
    });
    this.scratch = new SamplerScratch(ri.vocabSize);
    this.limits = {
      vocabSize: ri.vocabSize,
      contextLength: this.contextLength,
      tokensPerEntry: ri.tokensPerEntry,
      padFirstBlock: ri.padFirstBlock,
      numPages,
      pageSize: options.pageSize,
      canScorePrompt: runner.scoreTokens !== undefined,
      maxInFlight: options.maxNumSeqs + options.maxQueue,
    };
  }

  // ------------------------------------------------------------------ Engine

  submit(req: GenerateRequest): AsyncIterable<EngineEvent> {
    if (this.deadReason !== null || this.closing)
      throw new EngineRequestError('engine_dead', `engine is not running: ${this.deadReason ?? 'closing'}`);
    if (this.live.has(req.id)) throw new EngineRequestError('invalid_request', `is already in use`, 'id');
    checkRequest(req, this.limits);
    if (this.options.admission !== 'caller') admit(this.live.size, 1, this.limits);
    const s = req.sampling;
    const live: LiveRequest = {
      req,
      stream: new EngineStream<EngineEvent>(() => this.abort(req.id)),
      sampler: new SequenceSampler(s, req.promptIds),
      detok: this.detokenizerFactory(),
      stopper: new StopStringMatcher(s.stop ?? []),
      stopIds: new Set(s.stopTokenIds ?? []),
    };
    if (!s.ignoreEos) live.stopIds.add(this.runner.info.eosTokenId);
    this.live.set(req.id, live);
    this.scheduler.add(req.id, req.promptIds);
    if (req.promptLogprobs !== undefined) this.toScore.push(req.id);
    this.kick();
    return live.stream;
  }

  abort(id: string): void {
    const live = this.live.get(id);
    if (!live) return;
    const seq = this.scheduler.get(id);
    const usage = this.usageOf(live, seq);
    if (this.scheduler.abort(id)) this.abortedCount++;
    this.end(live, { type: 'finished', reason: 'abort', usage });
  }

  stats(): EngineStats {
    const m = this.scheduler.metrics();
    return {
      running: this.scheduler.numRunning,
      waiting: this.scheduler.numWaiting,
      kvPagesUsed: this.scheduler.pool.usedPages,
      kvPagesTotal: this.scheduler.pool.numPages,
      abortedTotal: this.abortedCount,
      preemptedTotal: this.scheduler.preemptedTotal,
      stepsTotal: m.steps,
      stepFill: m.stepFill,
    };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const id of [...this.live.keys()]) this.abort(id);
    await this.loopRunning;
    await this.options.onClose?.();
  }

  get failure(): string | null {
    return this.deadReason;
  }

  onFailure(listener: (reason: string) => void): void {
    this.failureListeners.push(listener);
  }

  // ------------------------------------------------------------------ the loop

  private kick(): void {
    if (this.loopRunning || this.deadReason !== null) return;
    this.loopRunning = this.run().finally(() => {
      this.loopRunning = null;
      // A request may have arrived while the last step finished.
      if (this.scheduler.hasWork && !this.closing) this.kick();
    });
  }

  private async run(): Promise<void> {
    while (this.scheduler.hasWork && this.deadReason === null && !this.closing) {
      // Yield first: requests submitted in the same tick are admitted together, submit() never runs a
      // step itself, and abort() gets in between steps even when the runner answers synchronously.
      await new Promise<void>((resolve) => setImmediate(resolve));
      // Everything may have been aborted during the yield.
      if (this.deadReason !== null || this.closing || !this.scheduler.hasWork) break;
      try {
        this.options.faults?.beforeStep();
        await this.step();
      } catch (e) {
        this.die(e); // a bug in scheduling or sampling must not leave streams hanging
      }
    }
  }

  private async step(): Promise<void> {
    // Prompt logprobs first: their event must precede the request's first token, and the runner
    // serves one call at a time.
    while (this.toScore.length) {
      const live = this.live.get(this.toScore.shift()!);
      if (!live) continue; // aborted meanwhile
      let event: EngineEvent;
      try {
        event = { type: 'prompt_logprobs', logprobs: await this.promptLogprobs(live.req) };
      } catch (e) {
        this.die(e);
        return;
      }
      if (this.live.get(live.req.id) === live) live.stream.push(event);
    }
    const plan = this.scheduler.schedule();
    for (const id of plan.started) this.live.get(id)?.stream.push({ type: 'started' });
    for (const id of plan.outOfCache) this.finishNow(id, 'length');
    if (plan.items.length === 0) {
      const progressed = plan.outOfCache.length > 0 || plan.preempted.length > 0 || !this.scheduler.hasWork;
      if (!progressed) this.die(new Error(`scheduler made no progress with work pending: ${this.scheduler.describe()}`));
      return;
    }
    let out: StepOutput;
    try {
      out = await this.runner.execute(plan.items);
      if (out.logits.length < plan.numLogitsRows * out.vocabSize)
        throw new Error(`runner returned ${out.logits.length} logits for ${plan.numLogitsRows} rows of ${out.vocabSize}`);
    } catch (e) {
      this.die(e);
      return;
    }
    const results = this.sampleRows(plan, out);
    const rowOf = new Map<string, number>();
    for (const f of plan.feeds) if (f.logitsRow >= 0) rowOf.set(f.seqId, f.logitsRow);
    for (const { seqId, token } of this.scheduler.update(plan, results.tokens)) {
      const live = this.live.get(seqId);
      if (live) this.onToken(live, token, results.byRow[rowOf.get(seqId)!]);
    }
  }

  private sampleRows(plan: StepPlan, out: StepOutput): { tokens: Int32Array; byRow: (SampleResult | undefined)[] } {
    if (this.scratch.vocabSize !== out.vocabSize) this.scratch = new SamplerScratch(out.vocabSize);
    const tokens = new Int32Array(plan.numLogitsRows).fill(-1);
    const byRow: (SampleResult | undefined)[] = new Array(plan.numLogitsRows);
    for (const feed of plan.feeds) {
      if (feed.logitsRow < 0) continue;
      const live = this.live.get(feed.seqId);
      if (!live || !this.scheduler.sequenceOf(feed)) continue; // aborted while the step ran
      const r = live.sampler.sample(out.logits, feed.logitsRow * out.vocabSize, out.vocabSize, this.scratch);
      tokens[feed.logitsRow] = r.token;
      byRow[feed.logitsRow] = r;
    }
    return { tokens, byRow };
  }

  private onToken(live: LiveRequest, token: number, result: SampleResult | undefined): void {
    live.sampler.observe(token);
    const seq = this.scheduler.get(live.req.id)!;
    let finish: FinishReason | null = null;
    let text = '';
    let matchedStopString = false;
    if (live.stopIds.has(token)) {
      finish = 'stop'; // the stop token counts as generated but is not rendered as text
    } else {
      const m = live.stopper.push(live.detok.push([token]));
      text = m.text;
      matchedStopString = m.stopped;
      if (m.stopped) finish = 'stop';
    }
    if (finish === null && (seq.numGenerated >= live.req.sampling.maxTokens || seq.tokens.length >= this.contextLength)) finish = 'length';
    // Ending without a stop-string match releases what was held back, in this last token event.
    if (finish !== null && !matchedStopString) text += this.drain(live);
    const event: EngineEvent = { type: 'token', tokenIds: [token], text };
    if (result?.logprobs) event.logprobs = [this.renderLogprobs(token, result)];
    live.stream.push(event);
    if (finish !== null) {
      const usage = this.usageOf(live, seq);
      this.scheduler.finish(live.req.id);
      this.end(live, { type: 'finished', reason: finish, usage });
    }
  }

  /** Text still held (detokenizer tail, stop-string look-behind) once generation ends without a stop string match. */
  private drain(live: LiveRequest): string {
    const m = live.stopper.push(live.detok.flush());
    return m.stopped ? m.text : m.text + live.stopper.flush();
  }

  private finishNow(id: string, reason: FinishReason): void {
    const live = this.live.get(id);
    if (!live) return;
    const usage = this.usageOf(live, this.scheduler.get(id));
    const text = this.drain(live);
    this.scheduler.finish(id);
    this.end(live, text ? { type: 'finished', reason, usage, text } : { type: 'finished', reason, usage });
  }

  /**
   * Each prompt token's log-softmax under the logits that predict it, from one teacher-forced pass over
   * the prompt; the runner adds whatever padding its scoring rule wants (config/padding.ts).
   */
  private async promptLogprobs(req: GenerateRequest): Promise<PromptTokenLogprob[]> {
    const { logits, first } = await this.runner.scoreTokens!(req.promptIds);
    const V = this.runner.info.vocabSize;
    const numTop = req.promptLogprobs!;
    return req.promptIds.map((tokenId, i) => {
      const row = i - first;
      const entry: PromptTokenLogprob = { tokenId, token: this.tokenizer.decode([tokenId]), logprob: null, top: null };
      if (row < 0 || (row + 1) * V > logits.length) return entry;
      const x = logits.subarray(row * V, (row + 1) * V);
      const lp = logprobsOf(x, rowPeak(x, 0, V, this.scratch.passes).max, tokenId, numTop, this.scratch.passes);
      entry.logprob = lp.logprob;
      entry.top = lp.top.map((t) => ({ tokenId: t.tokenId, token: this.tokenizer.decode([t.tokenId]), logprob: t.logprob }));
      return entry;
    });
  }

  private renderLogprobs(token: number, r: SampleResult): TokenLogprob {
    const lp = r.logprobs!;
    return {
      tokenId: token,
      token: this.tokenizer.decode([token]),
      logprob: lp.logprob,
      top: lp.top.map((t) => ({ tokenId: t.tokenId, token: this.tokenizer.decode([t.tokenId]), logprob: t.logprob })),
    };
  }

  private usageOf(live: LiveRequest, seq: Sequence | undefined): { promptTokens: number; completionTokens: number } {
    return { promptTokens: live.req.promptIds.length, completionTokens: seq ? seq.numGenerated : 0 };
  }

  private end(live: LiveRequest, event: EngineEvent): void {
    this.live.delete(live.req.id);
    live.stream.push(event);
    live.stream.end();
  }

  /** A runner failure: every request gets an error event, and the engine refuses new ones. */
  private die(e: unknown): void {
    if (this.deadReason !== null) return;
    const message = e instanceof Error ? e.message : String(e);
    this.deadReason = message;
    for (const live of [...this.live.values()]) {
      this.scheduler.abort(live.req.id);
      this.end(live, { type: 'error', code: 'engine_dead', message: `engine failed: ${message}` });
    }
    for (const l of this.failureListeners) l(message);
  }
}
