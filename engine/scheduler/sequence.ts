// One request as the scheduler sees it: its tokens, how many of them the runner has consumed, and the
// cache it holds. Only scheduler.ts changes `state`.
//
// State diagram:
//
//            admit (pages + local slot)          last prefill chunk computed, first token sampled
//   WAITING ----------------------------> PREFILLING ------------------------------------------> DECODING
//      ^                                     |  ^                                                  |  |
//      |            preempt (pages freed,    |  |                                                  |  |
//      +-------------------------------------+--+---- tokens kept, recomputed on readmission ------+  |
//      |                                                                                              |
//   (any live state) -- abort --> ABORTED          DECODING -- stop / length (loop decides) --> FINISHED
//
// PREFILLING covers both a new prompt and the recompute of a preempted sequence (prompt plus the tokens
// it had generated), so a preempted request resumes with exactly the tokens it had.

export enum SeqState {
  Waiting = 'waiting',
  Prefilling = 'prefilling',
  Decoding = 'decoding',
  Finished = 'finished',
  Aborted = 'aborted',
}

export class Sequence {
  state = SeqState.Waiting;
  /** Every token the model sees: left padding (block models), prompt, generated. */
  readonly tokens: number[];
  /** Tokens fed to the runner so far (including a prefix-cache hit); the rest are fed in later steps. */
  numComputed = 0;
  /** KV pages in entry order (entry e lives at pages[floor(e / pageSize)], offset e % pageSize). */
  pages: number[] = [];
  /** Token-decoder window of a block model (-1 when none is held). */
  localSlot = -1;
  /** Pages of `pages` already offered to the prefix cache, and the chain node of the last of them. */
  numCachedPages = 0;
  lastCacheNode = 0;
  /** Set when the sequence first leaves the queue (the loop emits 'started' once). */
  everStarted = false;
  /** Steps its final prefill chunk has been held back to line up with the batch's block phase. */
  alignWaits = 0;
  /** Admission order among running sequences (larger = newer); preemption takes the newest. */
  admittedAt = -1;
  numPreemptions = 0;

  constructor(
    readonly id: string,
    /** Arrival order: FCFS admission and queue position after a preemption. */
    readonly arrival: number,
    promptIds: readonly number[],
    /** Left-pad tokens (token 0) added for block models trained with first-block padding. */
    readonly numPadTokens: number,
  ) {
    this.tokens = new Array<number>(numPadTokens).fill(0);
    for (const t of promptIds) this.tokens.push(t);
    this.numPromptTokens = promptIds.length;
    this.promptEnd = this.tokens.length;
  }

  /** Real prompt tokens (without padding), as reported in usage. */
  readonly numPromptTokens: number;
  /** Index in `tokens` where generated tokens start (padding + prompt). */
  readonly promptEnd: number;

  get numGenerated(): number {
    return this.tokens.length - this.promptEnd;
  }

  get isRunning(): boolean {
    return this.state === SeqState.Prefilling || this.state === SeqState.Decoding;
  }

  get isDone(): boolean {
    return this.state === SeqState.Finished || this.state === SeqState.Aborted;
  }
}
