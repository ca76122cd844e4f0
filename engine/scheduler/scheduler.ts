// The continuous-batching scheduler: decides, every step, which sequences feed which tokens and where
// their KV entries live. Pure bookkeeping: it imports no model or kernel code, so its tests drive it with
// hand-written sampled tokens.
//
// Policies, in the order schedule() applies them:
// 1. Decodes first: every decoding sequence feeds its last sampled token (oldest first). When the pool
//    runs dry, the newest running sequence is preempted (pages freed, requeued to recompute later with
//    its generated tokens kept); a sequence that holds the whole pool alone is reported `outOfCache`.
// 2. Prefill chunks of admitted sequences, then admission of new ones from the head of the queue (strict
//    FCFS: the head is never skipped, so nothing starves), bounded by maxNumSeqs, by a per-step token
//    budget (chunked prefill: decodes are never displaced, so a long prompt delays nobody's decoding) and
//    by the pages available. Block models get chunks of whole blocks.
// 3. Block-synchronous packing (block models): the step whose feed completes a block runs the block
//    decoder. A sequence's last prefill block is held back (a few steps at most, see alignedFinalChunk)
//    so that it goes in a step where the batch's decoders complete a block too, and its first sampled
//    token comes out in phase with them (length congruent mod L to theirs); from then on
//    it completes its blocks in the same steps as the batch, so those steps share one block-decoder
//    pass over the whole batch and the steps between are pure token-decoder steps.
import type { FeedItem } from '../runner-api.ts';
import { LocalSlotPool } from '../kv/local-slots.ts';
import { PagePool } from '../kv/page-pool.ts';
import { PrefixCache } from '../kv/prefix-cache.ts';
import type { PlannedFeed, SampledToken, StepMetrics, StepPlan } from './plan.ts';
import { SeqState, Sequence } from './sequence.ts';
import { StepMeter } from './step-meter.ts';
import { firstBlockPad } from '../config/padding.ts';

export interface SchedulerConfig {
  /** Tokens per KV entry: L for block models, 1 for vanilla. */
  tokensPerEntry: number;
  /** Left-pad prompts with token 0 to a multiple of tokensPerEntry. */
  padFirstBlock: boolean;
  contextLength: number;
  numPages: number;
  /** KV entries per page. */
  pageSize: number;
  maxNumSeqs: number;
  /** Token budget per step (decodes count one each); at least maxNumSeqs + tokensPerEntry. */
  maxBatchTokens: number;
  /** Block-synchronous admission (default: on for block models). */
  alignPhases?: boolean;
  /** Share full pages between requests with equal prefixes (default on). */
  enablePrefixCache?: boolean;
  /** Pages left free when admitting while others run, so they can grow (default ~1% of the pool). */
  admissionReservePages?: number;
}

export class Scheduler {
  readonly pool: PagePool;
  readonly localSlots: LocalSlotPool | null;
  private readonly prefix: PrefixCache | null;
  private readonly tpe: number;
  private readonly align: boolean;
  private readonly reservePages: number;
  private readonly seqs = new Map<string, Sequence>();
  /** Sorted by arrival. */
  private readonly waiting: Sequence[] = [];
  /** Sorted by admission (oldest first). */
  private readonly running: Sequence[] = [];
  private nextArrival = 0;
  private nextAdmission = 0;

  preemptedTotal = 0;
  abortedTotal = 0;
  /** Tokens of admitted sequences that were looked up in / served from the prefix cache. */
  prefixQueryTokens = 0;
  prefixHitTokens = 0;
  private readonly meter: StepMeter;

  constructor(readonly config: SchedulerConfig) {
    const c = config;
    for (const k of ['tokensPerEntry', 'contextLength', 'numPages', 'pageSize', 'maxNumSeqs', 'maxBatchTokens'] as const) {
      if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`scheduler: ${k} must be a positive integer, got ${c[k]}`);
    }
    if (c.maxBatchTokens < c.maxNumSeqs + c.tokensPerEntry) {
      throw new Error(
        `scheduler: maxBatchTokens (${c.maxBatchTokens}) must be at least maxNumSeqs + tokensPerEntry (${c.maxNumSeqs + c.tokensPerEntry})`,
      );
    }
    this.tpe = c.tokensPerEntry;
    this.align = (c.alignPhases ?? c.tokensPerEntry > 1) && c.tokensPerEntry > 1;
    this.pool = new PagePool(c.numPages, c.pageSize);
    this.prefix = c.enablePrefixCache === false ? null : new PrefixCache(this.pool, c.tokensPerEntry);
    this.localSlots = c.tokensPerEntry > 1 ? new LocalSlotPool(c.maxNumSeqs) : null;
    this.reservePages = c.admissionReservePages ?? Math.ceil(c.numPages / 100);
    this.meter = new StepMeter(c.maxNumSeqs, c.maxBatchTokens, c.tokensPerEntry > 1);
  }

  // ---------------------------------------------------------------- requests in and out

  /** Left-pad length (token 0) for a prompt: the one first-block padding rule (config/padding.ts). */
  padFor(promptLength: number): number {
    return firstBlockPad(promptLength, this.tpe, this.config.padFirstBlock);
  }

  add(id: string, promptIds: readonly number[]): Sequence {
    if (this.seqs.has(id)) throw new Error(`duplicate sequence id ${id}`);
    const seq = new Sequence(id, this.nextArrival++, promptIds, this.padFor(promptIds.length));
    this.seqs.set(id, seq);
    this.waiting.push(seq); // arrivals are increasing, so the queue stays sorted
    return seq;
  }

  get(id: string): Sequence | undefined {
    return this.seqs.get(id);
  }

  /** The live sequence a planned feed belongs to (undefined once it was aborted or finished). */
  sequenceOf(feed: PlannedFeed): Sequence | undefined {
    const seq = this.seqs.get(feed.seqId);
    return seq && seq.arrival === feed.arrival && seq.isRunning ? seq : undefined;
  }

  /** Stops a sequence at once and frees its pages; false if unknown or already done. */
  abort(id: string): boolean {
    const seq = this.seqs.get(id);
    if (!seq || seq.isDone) return false;
    this.retire(seq, SeqState.Aborted);
    this.abortedTotal++;
    return true;
  }

  /** The loop decided the sequence is done (stop, length). */
  finish(id: string): void {
    const seq = this.seqs.get(id);
    if (!seq || seq.isDone) return;
    this.retire(seq, SeqState.Finished);
  }

  get numRunning(): number {
    return this.running.length;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  get hasWork(): boolean {
    return this.running.length > 0 || this.waiting.length > 0;
  }

  /** Sequences not yet finished or aborted (running and waiting). */
  liveIds(): string[] {
    return [...this.running, ...this.waiting].map((s) => s.id);
  }

  /** One line per sequence, for error messages about the scheduler itself. */
  describe(): string {
    const line = (q: Sequence) =>
      `${q.id}:${q.state} computed ${q.numComputed}/${q.tokens.length} pages ${q.pages.length} waits ${q.alignWaits}`;
    return `running [${this.running.map(line).join('; ')}] waiting ${this.waiting.length}${this.waiting.length ? ` (head ${line(this.waiting[0])})` : ''}, pages available ${this.pool.availablePages}/${this.pool.numPages}`;
  }

  metrics(): StepMetrics {
    return this.meter.metrics();
  }

  // ---------------------------------------------------------------- the step

  schedule(): StepPlan {
    const plan: StepPlan = { items: [], feeds: [], numLogitsRows: 0, started: [], preempted: [], outOfCache: [], numTokens: 0 };
    const planned = new Set<string>();
    let budget = this.config.maxBatchTokens;
    const L = this.tpe;
    const phaseCounts = new Array<number>(L).fill(0);
    const phaseOrder: number[] = []; // phases of this step's decoders, oldest first

    // 1. Decodes, oldest first; they may preempt newer sequences.
    for (const seq of [...this.running]) {
      if (seq.state !== SeqState.Decoding || budget < 1) continue;
      if (!this.ensurePages(seq, 1, planned, plan)) {
        if (this.running.length === 1) plan.outOfCache.push(seq.id);
        else this.preempt(seq, plan);
        continue;
      }
      this.emit(seq, 1, plan, planned);
      const phase = (seq.numComputed + 1) % L;
      phaseCounts[phase]++;
      phaseOrder.push(phase);
      budget--;
    }
    // The batch's phase: the most common one; among equals, the oldest decoder's, so that the target
    // moves through every residue as the batch advances (a lowest-phase tie-break could oscillate).
    let target = -1;
    if (this.align && phaseOrder.length > 0) {
      const best = Math.max(...phaseCounts);
      target = phaseOrder.find((p) => phaseCounts[p] === best)!;
    }

    // 2a. Prefill chunks of sequences already admitted.
    for (const seq of [...this.running]) {
      if (seq.state !== SeqState.Prefilling) continue;
      if (budget < 1) {
        seq.alignWaits = 0; // starved by the budget, not held for its phase
        continue;
      }
      budget -= this.schedulePrefill(seq, budget, target, plan, planned);
    }

    // 2b. Admission, strictly from the head of the queue.
    while (
      this.waiting.length > 0 &&
      this.running.length < this.config.maxNumSeqs &&
      budget >= Math.min(L, this.waiting[0].tokens.length)
    ) {
      const seq = this.waiting[0];
      if (!this.admit(seq, budget)) break;
      if (!seq.everStarted) {
        seq.everStarted = true;
        plan.started.push(seq.id);
      }
      budget -= this.schedulePrefill(seq, budget, target, plan, planned);
    }

    this.meter.record(plan);
    return plan;
  }

  /** Applies a step's results: advances computed counts, appends sampled tokens, fills the prefix cache. */
  update(plan: StepPlan, sampled: ArrayLike<number>): SampledToken[] {
    const out: SampledToken[] = [];
    for (const feed of plan.feeds) {
      const seq = this.seqs.get(feed.seqId);
      if (!seq?.isRunning || seq.arrival !== feed.arrival) continue; // aborted or finished while the step ran
      seq.numComputed += feed.numTokens;
      this.offerPages(seq);
      if (feed.logitsRow < 0) continue;
      const token = sampled[feed.logitsRow];
      seq.tokens.push(token);
      if (seq.state === SeqState.Prefilling) seq.state = SeqState.Decoding;
      out.push({ seqId: seq.id, token });
    }
    return out;
  }

  // ---------------------------------------------------------------- policies

  private pagesFor(entries: number): number {
    return Math.ceil(entries / this.pool.pageSize);
  }

  private entriesAfter(seq: Sequence, numTokens: number): number {
    return Math.floor((seq.numComputed + numTokens) / this.tpe);
  }

  /** Tokens of the next chunk given the budget: all that remain, or whole blocks of them. */
  private chunkSize(remaining: number, budget: number): number {
    if (remaining <= budget) return remaining;
    return Math.floor(budget / this.tpe) * this.tpe;
  }

  /** Reserves pages and a local slot for the head of the queue, reusing cached prefix pages. */
  private admit(seq: Sequence, budget: number): boolean {
    const len = seq.tokens.length;
    let hitPages: number[] = [];
    let lastNode = 0;
    if (this.prefix) {
      // Never cover the last complete entry: the model must compute at least one entry (and the block
      // decoder output the token decoder needs) to produce the next-token logits.
      const maxHitEntries = Math.max(0, Math.floor(len / this.tpe) - 1);
      const m = this.prefix.match(seq.tokens, Math.floor(maxHitEntries / this.pool.pageSize));
      hitPages = m.pages;
      lastNode = m.lastNode;
    }
    const hitTokens = hitPages.length * this.pool.pageSize * this.tpe;
    const firstChunk = this.chunkSize(len - hitTokens, budget);
    if (firstChunk <= 0) return false;
    const newPages = this.pagesFor(Math.floor((hitTokens + firstChunk) / this.tpe)) - hitPages.length;
    const revived = hitPages.filter((p) => this.pool.isEvictable(p)).length;
    const reserve = this.running.length > 0 ? this.reservePages : 0;
    if (this.pool.availablePages - revived < newPages + reserve) return false;

    this.waiting.shift();
    if (this.prefix) {
      this.prefixQueryTokens += len;
      this.prefixHitTokens += hitTokens;
    }
    for (const p of hitPages) this.pool.retain(p);
    seq.pages = [...hitPages];
    seq.numComputed = hitTokens;
    seq.numCachedPages = hitPages.length;
    seq.lastCacheNode = lastNode;
    if (this.localSlots) {
      const slot = this.localSlots.allocate();
      if (slot === null) throw new Error('scheduler: no local slot although fewer than maxNumSeqs run');
      seq.localSlot = slot;
    }
    seq.state = SeqState.Prefilling;
    seq.admittedAt = this.nextAdmission++;
    seq.alignWaits = 0;
    this.running.push(seq);
    return true;
  }

  /** Schedules the next prefill chunk of `seq`; returns the tokens it used. */
  private schedulePrefill(seq: Sequence, budget: number, target: number, plan: StepPlan, planned: Set<string>): number {
    const L = this.tpe;
    const remaining = seq.tokens.length - seq.numComputed;
    let n = this.chunkSize(remaining, budget);
    if (n <= 0) {
      seq.alignWaits = 0; // starved by the budget, not held for its phase
      return 0;
    }
    if (n === remaining && target >= 0) {
      n = this.alignedFinalChunk(seq, remaining, target);
      if (n <= 0) return 0;
    }
    if (!this.ensurePages(seq, n, planned, plan)) {
      // Feed what the pages we could get hold (whole blocks if that is not the whole remainder).
      n = Math.min(n, seq.pages.length * this.pool.pageSize * L - seq.numComputed);
      if (n < remaining) n = Math.floor(n / L) * L;
      if (n <= 0) {
        // Alone and still not fitting (a preempted sequence whose recompute outgrew the pool).
        if (this.running.length === 1) plan.outOfCache.push(seq.id);
        return 0;
      }
    }
    seq.alignWaits = 0; // counts consecutive holds only
    this.emit(seq, n, plan, planned);
    return n;
  }

  /**
   * The part of a sequence's last prefill chunk to feed this step, given the phase `target` of the
   * batch's decoders (their token count mod L after this step). Its last whole block goes in a step
   * where the decoders complete a block too (target 0), so the block decoder runs once for all of them
   * (earlier blocks go at once: prefill must not wait); a partial tail of r tokens follows when
   * target == r, so that the sequence then decodes in phase with the batch. Each wait is at most L-1 steps while decoders run (their phase visits every residue every L
   * steps); after 2L consecutive holds the chunk goes regardless.
   */
  private alignedFinalChunk(seq: Sequence, remaining: number, target: number): number {
    const L = this.tpe;
    const tail = seq.tokens.length % L; // numComputed is on a block boundary during prefill
    const wholeBlocks = remaining - tail;
    if (seq.alignWaits >= 2 * L) return remaining;
    if (wholeBlocks > 0) {
      if (target === 0) return tail === 0 ? remaining : wholeBlocks;
      // Off the block step: keep prefill moving with all but the last block, so a long prompt is not
      // slowed to one chunk per L steps; only the last block waits for the shared step.
      if (wholeBlocks > L) return wholeBlocks - L;
    } else if (target === tail) {
      return remaining;
    }
    seq.alignWaits++;
    return 0;
  }

  /**
   * Grows `seq`'s page table to hold its entries after feeding `numTokens`. When the pool is dry it
   * preempts the newest running sequence that is newer than `seq` and not yet in this step's plan.
   */
  private ensurePages(seq: Sequence, numTokens: number, planned: Set<string>, plan: StepPlan): boolean {
    const need = this.pagesFor(this.entriesAfter(seq, numTokens));
    while (seq.pages.length < need) {
      const page = this.pool.allocate(seq.pages[seq.pages.length - 1]);
      if (page !== null) {
        seq.pages.push(page);
        continue;
      }
      const victim = this.running[this.running.length - 1];
      if (!victim || victim === seq || victim.admittedAt < seq.admittedAt || planned.has(victim.id)) return false;
      this.preempt(victim, plan);
    }
    return true;
  }

  private emit(seq: Sequence, numTokens: number, plan: StepPlan, planned: Set<string>): void {
    const start = seq.numComputed;
    const end = start + numTokens;
    const numEntries = Math.floor(end / this.tpe);
    const ps = this.pool.pageSize;
    const kvSlots = new Array<number>(numEntries);
    for (let e = 0; e < numEntries; e++) kvSlots[e] = seq.pages[Math.floor(e / ps)] * ps + (e % ps);
    const wantLogits = end === seq.tokens.length;
    const item: FeedItem = { seqId: seq.id, tokens: seq.tokens.slice(start, end), position: start, kvSlots, wantLogits };
    if (this.localSlots) item.localSlot = seq.localSlot;
    const feed: PlannedFeed = {
      seqId: seq.id,
      arrival: seq.arrival,
      numTokens,
      isDecode: seq.state === SeqState.Decoding,
      runsBlockDecoder: this.tpe > 1 && numEntries > Math.floor(start / this.tpe),
      logitsRow: wantLogits ? plan.numLogitsRows++ : -1,
    };
    plan.items.push(item);
    plan.feeds.push(feed);
    plan.numTokens += numTokens;
    planned.add(seq.id);
  }

  private preempt(seq: Sequence, plan: StepPlan): void {
    this.releaseCache(seq);
    seq.state = SeqState.Waiting;
    seq.numComputed = 0;
    seq.admittedAt = -1;
    seq.alignWaits = 0;
    seq.numPreemptions++;
    this.removeFrom(this.running, seq);
    let i = this.waiting.length;
    while (i > 0 && this.waiting[i - 1].arrival > seq.arrival) i--;
    this.waiting.splice(i, 0, seq);
    plan.preempted.push(seq.id);
    this.preemptedTotal++;
  }

  private retire(seq: Sequence, state: SeqState.Finished | SeqState.Aborted): void {
    if (seq.isRunning) {
      this.releaseCache(seq);
      this.removeFrom(this.running, seq);
    } else {
      this.removeFrom(this.waiting, seq);
    }
    seq.state = state;
    this.seqs.delete(seq.id);
  }

  private releaseCache(seq: Sequence): void {
    // Tail first, so the LRU evicts a prefix's deepest pages before its root.
    for (let i = seq.pages.length - 1; i >= 0; i--) this.pool.release(seq.pages[i]);
    seq.pages = [];
    seq.numCachedPages = 0;
    seq.lastCacheNode = 0;
    if (this.localSlots && seq.localSlot >= 0) this.localSlots.release(seq.localSlot);
    seq.localSlot = -1;
  }

  private offerPages(seq: Sequence): void {
    if (!this.prefix) return;
    const fullPages = Math.floor(Math.floor(seq.numComputed / this.tpe) / this.pool.pageSize);
    for (let j = seq.numCachedPages; j < fullPages; j++) {
      seq.lastCacheNode = this.prefix.offer(seq.pages[j], seq.lastCacheNode, seq.tokens, j);
    }
    if (fullPages > seq.numCachedPages) seq.numCachedPages = fullPages;
  }

  private removeFrom(list: Sequence[], seq: Sequence): void {
    const i = list.indexOf(seq);
    if (i >= 0) list.splice(i, 1);
  }
}
