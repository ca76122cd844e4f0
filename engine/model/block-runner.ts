// The Block Transformer as a Runner (engine/runner-api.ts): which rows of a serving step go to which
// decoder, cache slot and position. The math is block.ts.
//
// A fed token at in-block index k < L-1 is one token-decoder row (window row R+k); the token at k = L-1
// completes the block: the block decoder runs on it (one paged-KV entry per block) and a fresh window
// starts with the R prefix rows. All sequences of a step share one block-decoder call and one
// token-decoder call. Each running sequence owns one window (localSlot) of W = R+L-1 cache rows.

import type { Backend, Tensor } from '../../kernels/backend.ts';
import type { BlockModelSpec } from '../config/spec.ts';
import { scoringPad } from '../config/padding.ts';
import type { FeedItem, Runner, RunnerInfo, StepOutput } from '../runner-api.ts';
import { makePlan } from './neox.ts';
import type { LayerCache, WeightLookup } from './neox.ts';
import { BlockTransformer } from './block.ts';
import type { WindowPositions } from './block.ts';
import { ScratchCache } from './scratch.ts';

/** Host-side ids of the block being filled in one token-decoder window. */
interface PendingBlock {
  seqId: string;
  blockStart: number; // position of the block's first token
  ids: number[];
}

interface WindowRow {
  item: number;
  localRow: number;
}

/** What one step feeds each decoder, worked out on the host before any kernel runs. */
interface StepRows {
  /** Block-decoder rows (one per completed block): ids (L each), position, KV slot, owner, context. */
  blockIds: number[];
  blockPos: number[];
  blockSlots: number[];
  blockSeq: number[];
  blockCtx: number[];
  /** Per item: the block row whose output seeds a fresh window (the last block it completed), or -1. */
  seedRow: number[];
  /** Token-decoder rows: prefix rows (from the expansion), then token rows (from embed_in). */
  prefixRows: WindowRow[];
  tokenRows: WindowRow[];
  tokenIds: number[];
  /** Per item: the window row whose output gives its next-token logits. */
  lastLocalRow: number[];
}

export class BlockModel implements Runner {
  readonly info: RunnerInfo;
  readonly model: BlockTransformer;
  private blockCache: LayerCache[] | null = null;
  private localCache: LayerCache[] | null = null;
  private pending: (PendingBlock | undefined)[] = [];
  /** Step inputs and LM-head buffers by shape (see scratch.ts). */
  private readonly scratch: ScratchCache;

  constructor(
    private readonly backend: Backend,
    readonly spec: BlockModelSpec,
    w: WeightLookup,
  ) {
    this.model = new BlockTransformer(backend, spec, w);
    this.scratch = new ScratchCache(backend, 32);
    this.info = {
      kind: 'block',
      tokensPerEntry: spec.blockLength,
      bytesPerEntry: spec.blockDecoder.numLayers * 2 * spec.blockDecoder.hiddenSize * 4,
      vocabSize: spec.vocabSize,
      contextLength: spec.contextLength,
      eosTokenId: 0,
      blockLength: spec.blockLength,
      padFirstBlock: spec.padFirstBlock,
    };
  }

  get windowLength(): number {
    return this.model.windowLength;
  }

  gemmWeights(): Tensor[] {
    return this.model.gemmWeights();
  }

  allocateCache(numSlots: number, numLocalSlots: number): void {
    this.freeCaches();
    this.blockCache = this.model.blockStack.allocateCache(numSlots);
    this.localCache = this.model.tokenStack.allocateCache(numLocalSlots * this.model.windowLength);
    this.pending = new Array(numLocalSlots).fill(undefined);
  }

  /** Splits the step's tokens into block-decoder and token-decoder rows; advances each window's ids. */
  private planRows(items: FeedItem[]): StepRows {
    const { L, R } = this.model,
      V = this.spec.vocabSize;
    const s: StepRows = {
      blockIds: [],
      blockPos: [],
      blockSlots: [],
      blockSeq: [],
      blockCtx: [],
      seedRow: [],
      prefixRows: [],
      tokenRows: [],
      tokenIds: [],
      lastLocalRow: [],
    };
    items.forEach((it, item) => {
      const slot = it.localSlot;
      if (slot === undefined || slot < 0 || slot >= this.pending.length)
        throw new Error(`seq ${it.seqId}: local slot ${slot} out of range`);
      if (it.tokens.length === 0) throw new Error(`seq ${it.seqId}: nothing to feed`);
      const end = it.position + it.tokens.length;
      if (end > this.spec.contextLength)
        throw new Error(`seq ${it.seqId}: position ${end - 1} beyond the context length ${this.spec.contextLength}`);
      if (it.kvSlots.length < Math.floor(end / L))
        throw new Error(`seq ${it.seqId}: ${it.kvSlots.length} kv slots for ${Math.floor(end / L)} blocks`);
      let pend = this.pending[slot];
      if (it.position % L === 0) {
        pend = { seqId: it.seqId, blockStart: it.position, ids: [] };
      } else if (!pend || pend.seqId !== it.seqId || pend.blockStart + pend.ids.length !== it.position) {
        throw new Error(`seq ${it.seqId}: fed at position ${it.position} inside a block whose earlier tokens this window never saw`);
      }
      let seed = -1;
      let trailing: { id: number; k: number }[] = [];
      it.tokens.forEach((tok, j) => {
        if (!(tok >= 0 && tok < V)) throw new Error(`seq ${it.seqId}: token id ${tok} outside the vocabulary (0..${V - 1})`);
        pend!.ids.push(tok);
        if (pend!.ids.length === L) {
          const bi = pend!.blockStart / L;
          seed = s.blockIds.length / L;
          s.blockIds.push(...pend!.ids);
          s.blockPos.push(bi);
          s.blockSlots.push(it.kvSlots[bi]!);
          s.blockSeq.push(item);
          s.blockCtx.push(bi + 1);
          pend = { seqId: it.seqId, blockStart: it.position + j + 1, ids: [] };
          trailing = [];
        } else {
          trailing.push({ id: tok, k: pend!.ids.length - 1 });
        }
      });
      this.pending[slot] = pend;
      s.seedRow.push(seed);
      if (seed >= 0) for (let r = 0; r < R; r++) s.prefixRows.push({ item, localRow: r });
      for (const t of trailing) {
        s.tokenRows.push({ item, localRow: R + t.k });
        s.tokenIds.push(t.id);
      }
      s.lastLocalRow.push(trailing.length ? R + trailing[trailing.length - 1]!.k : R - 1);
    });
    return s;
  }

  async execute(items: FeedItem[]): Promise<StepOutput> {
    if (!this.blockCache || !this.localCache) throw new Error('BlockModel: allocateCache() first');
    const m = this.model,
      b = this.backend,
      sc = this.scratch;
    const { R, windowLength: W, db, dt } = m;
    const s = this.planRows(items);

    // ---- block decoder: every completed block of the step in one call ----
    let prefix: Tensor | null = null; // [numSeeds, R*dt] = [numSeeds*R, dt]
    const seedIndex = new Map<number, number>(); // item -> its row in `prefix`
    if (s.blockPos.length) {
      const xb = sc.get('xb', [s.blockPos.length, db]);
      m.embedBlocks(xb, Int32Array.from(s.blockIds));
      const plan = makePlan(
        items.map((it) => it.kvSlots),
        s.blockSeq,
        s.blockCtx,
      );
      m.blockDecoder({ x: xb, positions: Int32Array.from(s.blockPos), slots: Int32Array.from(s.blockSlots), plan }, this.blockCache);
      const seeds: number[] = [];
      s.seedRow.forEach((row, item) => {
        if (row >= 0) {
          seedIndex.set(item, seeds.length);
          seeds.push(row);
        }
      });
      const ctx = sc.get('ctx', [seeds.length, db]);
      b.gatherRows(ctx, xb, Int32Array.from(seeds));
      prefix = sc.get('prefix', [seeds.length, R * dt]);
      m.expand(prefix, ctx, sc.get('ctxNormed', [seeds.length, db]));
    }

    // ---- token decoder: prefix rows and token rows of every sequence in one call ----
    const rows = [...s.prefixRows, ...s.tokenRows];
    const xt = sc.get('xt', [rows.length, dt]);
    if (s.prefixRows.length) {
      const src = s.prefixRows.map((r) => seedIndex.get(r.item)! * R + r.localRow);
      b.gatherRows(xt, prefix!, Int32Array.from(src), 0, dt);
    }
    if (s.tokenRows.length) m.embedTokens(xt, Int32Array.from(s.tokenIds), s.prefixRows.length);
    const windows = items.map((it) => Array.from({ length: W }, (_, r) => it.localSlot! * W + r));
    m.tokenDecoder(
      {
        x: xt,
        positions: Int32Array.from(rows, (r) => m.windowPosition(r.localRow, 'decoding')),
        slots: Int32Array.from(rows, (r) => items[r.item]!.localSlot! * W + r.localRow),
        plan: makePlan(
          windows,
          rows.map((r) => r.item),
          rows.map((r) => r.localRow + 1),
        ),
      },
      this.localCache,
    );

    const lastRowOf = new Int32Array(items.length).fill(-1); // item -> its row whose output gives logits
    rows.forEach((r, i) => {
      if (r.localRow === s.lastLocalRow[r.item]) lastRowOf[r.item] = i;
    });
    const want = items.flatMap((it, i) => (it.wantLogits ? [lastRowOf[i]!] : []));
    return { logits: await m.logits(sc, xt, want), vocabSize: this.spec.vocabSize };
  }

  /**
   * Prompt logprobs of the prompt itself (no padding: this adds what spec.promptScoring says, see
   * config/padding.ts). 'authors' scores as the authors' lm-eval wrapper does (training positions);
   * 'decoding' pads as for generation and uses decoding's positions. A last partial block is completed
   * with token 0 and its rows dropped: the token decoder is causal, so they change nothing before.
   */
  async scoreTokens(ids: number[]): Promise<{ logits: Float32Array; first: number }> {
    const L = this.spec.blockLength,
      V = this.spec.vocabSize,
      scoring = this.spec.promptScoring;
    const pad = scoringPad(ids.length, L, this.spec.padFirstBlock, scoring);
    const fed = [...new Array<number>(pad).fill(0), ...ids];
    const first = L - pad; // fed[L] is the first token anything predicts
    if (fed.length <= L) return { logits: new Float32Array(0), first };
    const whole = [...fed, ...new Array<number>((L - (fed.length % L)) % L).fill(0)];
    const logits = await this.score(whole, scoring === 'authors' ? 'training' : 'decoding');
    return { logits: logits.subarray(0, (fed.length - L) * V), first };
  }

  /** Teacher-forced logits (block.ts score()): row j predicts ids[L + j]. */
  score(ids: number[], positions: WindowPositions = 'training'): Promise<Float32Array> {
    return this.model.score(this.scratch, ids, positions);
  }

  private freeCaches(): void {
    for (const c of [...(this.blockCache ?? []), ...(this.localCache ?? [])]) {
      this.backend.free(c.k);
      this.backend.free(c.v);
    }
    this.blockCache = this.localCache = null;
  }

  dispose(): void {
    this.model.releaseScratch();
    this.scratch.release();
    this.freeCaches();
  }
}
