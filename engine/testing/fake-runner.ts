// A Runner without a model, for testing the engine loop. It keeps exactly the state a real runner keeps
// (what it wrote into KV slots and token-decoder windows) and rebuilds each sequence's token history
// from the slots the loop hands it, so wrong page tables, early frees, bad sharing or a mis-tracked
// position change the history and therefore the logits, or fail loudly:
// - every KV slot remembers the entry's tokens and a hash of the whole prefix up to it; reading a slot
//   whose prefix differs from the sequence's (a real model would attend to someone else's keys) throws;
// - a block model's partial block must be in the sequence's own local window.
// Logits are a deterministic function of the full token history only (never of seqId, batch or slot),
// so the same request yields the same tokens at any batch size, after preemption or a prefix-cache hit.
import type { FeedItem, Runner, RunnerInfo, StepOutput } from '../runner-api.ts';

export interface FakeRunnerOptions {
  kind?: 'block' | 'vanilla';
  /** Block length L (block models; tokensPerEntry = L). Default 4 for block, 1 for vanilla. */
  blockLength?: number;
  vocabSize?: number;
  contextLength?: number;
  eosTokenId?: number;
  padFirstBlock?: boolean;
  bytesPerEntry?: number;
  /** Added to the eos logit (default -20: eos is practically never chosen). */
  eosLogitBias?: number;
  /** Milliseconds each execute() waits (a slow model). */
  delayMs?: number;
  /** execute() throws on this call (1-based), to test runner failures. */
  failOnCall?: number;
  /** Keep every step's items in `calls`. */
  record?: boolean;
  /** Scripted output: the token this returns (if any) gets +50 on its logit, so greedy picks it. */
  script?: (history: readonly number[]) => number | undefined;
}

interface SlotContent {
  tokens: number[];
  /** Hash of all tokens up to and including this entry. */
  prefixHash: number;
}

/** FNV-1a over 32-bit words, continued from `h`. */
export function hashTokens(tokens: readonly number[], h = 0x811c9dc5): number {
  for (const t of tokens) {
    h = Math.imul(h ^ (t & 0xffff), 16777619);
    h = Math.imul(h ^ (t >>> 16), 16777619);
  }
  return h >>> 0;
}

/** The fake model: logits for the token after `history`, deterministic in the history alone. */
export function fakeLogits(
  history: readonly number[],
  vocabSize: number,
  eosTokenId: number,
  eosLogitBias: number,
  out: Float32Array,
  offset: number,
): void {
  const h = hashTokens(history);
  for (let v = 0; v < vocabSize; v++) {
    let z = Math.imul(h ^ Math.imul(v + 1, 0x9e3779b1), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    out[offset + v] = ((z >>> 0) / 4294967296) * 8 - 4; // in [-4, 4)
  }
  if (eosTokenId >= 0 && eosTokenId < vocabSize) out[offset + eosTokenId] += eosLogitBias;
}

export class FakeRunner implements Runner {
  readonly info: RunnerInfo;
  readonly calls: FeedItem[][] = [];
  numCalls = 0;
  numSlots = 0;
  numLocalSlots = 0;
  disposed = false;
  private slots: (SlotContent | undefined)[] = [];
  private windows: ({ seqId: string; tokens: number[] } | undefined)[] = [];
  private readonly opts: FakeRunnerOptions;

  constructor(opts: FakeRunnerOptions = {}) {
    this.opts = opts;
    const kind = opts.kind ?? 'vanilla';
    const L = kind === 'block' ? (opts.blockLength ?? 4) : 1;
    this.info = {
      kind,
      tokensPerEntry: L,
      bytesPerEntry: opts.bytesPerEntry ?? 1024,
      vocabSize: opts.vocabSize ?? 64,
      contextLength: opts.contextLength ?? 2048,
      eosTokenId: opts.eosTokenId ?? 0,
      blockLength: L,
      padFirstBlock: opts.padFirstBlock ?? false,
    };
  }

  allocateCache(numSlots: number, numLocalSlots: number): void {
    this.numSlots = numSlots;
    this.numLocalSlots = numLocalSlots;
    this.slots = new Array(numSlots);
    this.windows = new Array(numLocalSlots);
  }

  async execute(items: FeedItem[]): Promise<StepOutput> {
    this.numCalls++;
    if (this.opts.record) this.calls.push(items.map((it) => ({ ...it, tokens: [...it.tokens], kvSlots: [...it.kvSlots] })));
    if (this.opts.delayMs) await new Promise((r) => setTimeout(r, this.opts.delayMs));
    if (this.opts.failOnCall === this.numCalls) throw new Error(`fake runner failure on call ${this.numCalls}`);
    const V = this.info.vocabSize;
    const rows = items.filter((it) => it.wantLogits).length;
    const logits = new Float32Array(rows * V);
    let row = 0;
    for (const item of items) {
      const history = this.feed(item);
      if (!item.wantLogits) continue;
      fakeLogits(history, V, this.info.eosTokenId, this.opts.eosLogitBias ?? -20, logits, V * row);
      const forced = this.opts.script?.(history);
      if (forced !== undefined) logits[V * row + forced] += 50;
      row++;
    }
    return { logits, vocabSize: V };
  }

  dispose(): void {
    this.disposed = true;
  }

  /** Rebuilds the sequence's history from its cache, appends the fed tokens, writes the new entries. */
  private feed(item: FeedItem): number[] {
    const L = this.info.tokensPerEntry;
    const before = Math.floor(item.position / L);
    const after = Math.floor((item.position + item.tokens.length) / L);
    if (item.tokens.length === 0) throw new Error(`${item.seqId}: empty feed`);
    if (item.kvSlots.length !== after) throw new Error(`${item.seqId}: ${item.kvSlots.length} kv slots for ${after} entries`);
    if (new Set(item.kvSlots).size !== after) throw new Error(`${item.seqId}: a kv slot appears twice`);
    const history: number[] = [];
    let h = 0x811c9dc5;
    for (let e = 0; e < before; e++) {
      const slot = item.kvSlots[e];
      const c = this.slots[slot];
      if (!c) throw new Error(`${item.seqId}: entry ${e} reads kv slot ${slot}, which was never written`);
      h = hashTokens(c.tokens, h);
      if (h !== c.prefixHash) throw new Error(`${item.seqId}: entry ${e} reads kv slot ${slot}, which holds another prefix`);
      history.push(...c.tokens);
    }
    const partial = item.position - before * L;
    let window: { seqId: string; tokens: number[] } | undefined;
    if (L > 1) {
      if (item.localSlot === undefined || item.localSlot < 0 || item.localSlot >= this.numLocalSlots)
        throw new Error(`${item.seqId}: bad local slot ${item.localSlot}`);
      window = this.windows[item.localSlot];
      if (partial > 0) {
        if (!window || window.seqId !== item.seqId || window.tokens.length !== partial)
          throw new Error(`${item.seqId}: local window ${item.localSlot} does not hold its ${partial} pending tokens`);
        history.push(...window.tokens);
      }
    }
    history.push(...item.tokens);
    for (let e = before; e < after; e++) {
      const slot = item.kvSlots[e];
      if (!(slot >= 0 && slot < this.numSlots)) throw new Error(`${item.seqId}: kv slot ${slot} out of range`);
      const tokens = history.slice(e * L, (e + 1) * L);
      h = hashTokens(tokens, h);
      this.slots[slot] = { tokens, prefixHash: h };
    }
    if (L > 1) this.windows[item.localSlot!] = { seqId: item.seqId, tokens: history.slice(after * L) };
    if (history.length > this.info.contextLength)
      throw new Error(`${item.seqId}: ${history.length} tokens exceed the context length ${this.info.contextLength}`);
    return history;
  }
}
