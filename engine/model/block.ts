// Block Transformer (Ho et al. 2024), L tokens per block, R prefix vectors:
//
//   embedder: the L token embeddings (width d/L) of a block concatenated -> one d-wide block vector
//   block decoder: GPT-NeoX stack over block vectors (positions = block index), final LayerNorm
//   expansion: Linear d -> R*d on the block decoder's output at block i -> prefix P0..P(R-1)
//   token decoder: GPT-NeoX stack over the local window [P0..P(R-1), e(t0) .. e(t(L-2))] of block i+1,
//                  logits for t0..t(L-1) from window rows R-1 .. R+L-2 through the untied embed_out.
//
// As a Runner (engine/runner-api.ts): a fed token at in-block index k < L-1 is one token-decoder row
// (window row R+k); the token at k = L-1 completes the block: the block decoder runs on it (one
// paged-KV entry per block) and a fresh window starts with the R prefix rows. All sequences of a
// step share one block-decoder call and one token-decoder call.

import type { Backend, Tensor } from '../../kernels/backend.ts';
import type { BlockModelSpec } from '../config/spec.ts';
import type { FeedItem, Runner, RunnerInfo, StepOutput } from '../runner-api.ts';
import { makePlan, NeoxStack } from './neox.ts';
import type { LayerCache, WeightLookup } from './neox.ts';
import { lmHead, lmHeadAll } from './head.ts';
import { ScratchCache } from './scratch.ts';

/** Host-side ids of the block being filled in one token-decoder window. */
interface PendingBlock {
  seqId: string;
  blockStart: number; // position of the block's first token
  ids: number[];
}

interface TokenRow { item: number; localRow: number }

export class BlockModel implements Runner {
  readonly info: RunnerInfo;
  private readonly blockStack: NeoxStack;
  private readonly tokenStack: NeoxStack;
  private readonly embedder: Tensor; // [V, d/L]
  private readonly tokenEmbed: Tensor; // [V, d]
  private readonly embedOut: Tensor; // [V, d]
  private readonly expansionW: Tensor; // [R*d, d]
  private readonly expansionB: Tensor; // [R*d]
  private readonly L: number;
  private readonly R: number;
  /** Token-decoder window length: R prefix rows + the first L-1 tokens of the block. */
  readonly windowLength: number;
  private blockCache: LayerCache[] | null = null;
  private localCache: LayerCache[] | null = null;
  private pending: (PendingBlock | undefined)[] = [];
  /** Step inputs and LM-head buffers by shape (see scratch.ts). */
  private readonly scratch: ScratchCache;

  constructor(private readonly backend: Backend, readonly spec: BlockModelSpec, w: WeightLookup) {
    this.blockStack = new NeoxStack(backend, spec.blockDecoder, 'block_decoder.gpt_neox', w);
    this.tokenStack = new NeoxStack(backend, spec.tokenDecoder, 'token_decoder.gpt_neox', w);
    this.embedder = w('embedder.embeddings.weight');
    this.tokenEmbed = w('token_decoder.gpt_neox.embed_in.weight');
    this.embedOut = w('token_decoder.embed_out.weight');
    this.expansionW = w('token_decoder.expansion_layer.weight');
    this.expansionB = w('token_decoder.expansion_layer.bias');
    this.L = spec.blockLength;
    this.R = spec.expansionRatio;
    this.windowLength = this.R + this.L - 1;
    this.scratch = new ScratchCache(backend, 32);
    const d = spec.blockDecoder.hiddenSize;
    this.info = {
      kind: 'block', tokensPerEntry: this.L, bytesPerEntry: spec.blockDecoder.numLayers * 2 * d * 4,
      vocabSize: spec.vocabSize, contextLength: spec.contextLength, eosTokenId: 0,
      blockLength: this.L, padFirstBlock: spec.padFirstBlock,
    };
  }

  gemmWeights(): Tensor[] {
    return [...this.blockStack.gemmWeights(), ...this.tokenStack.gemmWeights(), this.expansionW, this.embedOut];
  }

  /** Rotary position of window row r in the configured position mode (see config/spec.ts). */
  localPosition(r: number): number {
    if (this.spec.positionMode === 'contiguous') return r;
    return r < this.R ? 0 : r - this.R + 1;
  }

  allocateCache(numSlots: number, numLocalSlots: number): void {
    this.freeCaches();
    this.blockCache = this.blockStack.allocateCache(numSlots);
    this.localCache = this.tokenStack.allocateCache(numLocalSlots * this.windowLength);
    this.pending = new Array(numLocalSlots).fill(undefined);
  }

  async execute(items: FeedItem[]): Promise<StepOutput> {
    if (!this.blockCache || !this.localCache) throw new Error('BlockModel: allocateCache() first');
    const L = this.L, R = this.R, W = this.windowLength, V = this.spec.vocabSize;
    // Block-decoder rows (one per completed block).
    const blockIds: number[] = [], blockPos: number[] = [], blockSlots: number[] = [], blockSeq: number[] = [], blockCtx: number[] = [];
    // Per item: block row whose output seeds a fresh window (the last block it completed), or -1.
    const seedRow: number[] = [];
    // Token-decoder rows: prefix rows (from the expansion) then token rows (from embed_in).
    const prefixRows: TokenRow[] = [], tokenRows: TokenRow[] = [], tokenIds: number[] = [];
    const lastLocalRow: number[] = [];

    items.forEach((it, s) => {
      const slot = it.localSlot;
      if (slot === undefined || slot < 0 || slot >= this.pending.length) throw new Error(`seq ${it.seqId}: local slot ${slot} out of range`);
      if (it.tokens.length === 0) throw new Error(`seq ${it.seqId}: nothing to feed`);
      const end = it.position + it.tokens.length;
      if (end > this.spec.contextLength) throw new Error(`seq ${it.seqId}: position ${end - 1} beyond the context length ${this.spec.contextLength}`);
      if (it.kvSlots.length < Math.floor(end / L)) throw new Error(`seq ${it.seqId}: ${it.kvSlots.length} kv slots for ${Math.floor(end / L)} blocks`);
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
          seed = blockIds.length / L;
          blockIds.push(...pend!.ids);
          blockPos.push(bi); blockSlots.push(it.kvSlots[bi]!); blockSeq.push(s); blockCtx.push(bi + 1);
          pend = { seqId: it.seqId, blockStart: it.position + j + 1, ids: [] };
          trailing = [];
        } else {
          trailing.push({ id: tok, k: pend!.ids.length - 1 });
        }
      });
      this.pending[slot] = pend;
      seedRow.push(seed);
      if (seed >= 0) for (let r = 0; r < R; r++) prefixRows.push({ item: s, localRow: r });
      for (const t of trailing) { tokenRows.push({ item: s, localRow: R + t.k }); tokenIds.push(t.id); }
      lastLocalRow.push(trailing.length ? R + trailing[trailing.length - 1]!.k : R - 1);
    });

    const b = this.backend;
    const d = this.spec.blockDecoder.hiddenSize;
    const sc = this.scratch;
    // ---- block decoder: every completed block of the step in one call ----
    let expansion: Tensor | null = null; // [numSeeds, R*d] = [numSeeds*R, d]
    const seedIndex = new Map<number, number>(); // item -> row in `expansion`
    if (blockPos.length) {
      const xb = sc.get('xb', [blockPos.length, d]);
      b.gatherRows(xb, this.embedder, Int32Array.from(blockIds), 0, this.spec.embedderDim); // concat embedder
      const plan = makePlan(items.map((it) => it.kvSlots), blockSeq, blockCtx);
      this.blockStack.forward({ x: xb, positions: Int32Array.from(blockPos), slots: Int32Array.from(blockSlots), plan }, this.blockCache);
      const seeds: number[] = [];
      seedRow.forEach((row, s) => { if (row >= 0) { seedIndex.set(s, seeds.length); seeds.push(row); } });
      const ctx = sc.get('ctx', [seeds.length, d]);
      const ctxNormed = sc.get('ctxNormed', [seeds.length, d]);
      b.gatherRows(ctx, xb, Int32Array.from(seeds));
      b.layerNorm(ctxNormed, ctx, this.blockStack.finalNormW, this.blockStack.finalNormB, this.spec.blockDecoder.layerNormEps);
      expansion = sc.get('expansion', [seeds.length, R * d]);
      b.matmul(expansion, ctxNormed, this.expansionW, { bias: this.expansionB });
    }

    // ---- token decoder: prefix rows and token rows of every sequence in one call ----
    const rows = [...prefixRows, ...tokenRows];
    const xt = sc.get('xt', [rows.length, d]);
    if (prefixRows.length) {
      const src = prefixRows.map((r) => seedIndex.get(r.item)! * R + r.localRow);
      b.gatherRows(xt, expansion!, Int32Array.from(src), 0, d);
    }
    if (tokenRows.length) b.gatherRows(xt, this.tokenEmbed, Int32Array.from(tokenIds), prefixRows.length);
    const windows = items.map((it) => Array.from({ length: W }, (_, r) => it.localSlot! * W + r));
    const plan = makePlan(windows, rows.map((r) => r.item), rows.map((r) => r.localRow + 1));
    this.tokenStack.forward({
      x: xt,
      positions: Int32Array.from(rows, (r) => this.localPosition(r.localRow)),
      slots: Int32Array.from(rows, (r) => items[r.item]!.localSlot! * W + r.localRow),
      plan,
    }, this.localCache);

    const lastRowOf = new Int32Array(items.length).fill(-1); // item -> its row whose output gives logits
    rows.forEach((r, i) => { if (r.localRow === lastLocalRow[r.item]) lastRowOf[r.item] = i; });
    const want = items.flatMap((it, s) => (it.wantLogits ? [lastRowOf[s]!] : []));
    const logits = await lmHead(b, sc, xt, want, this.tokenStack, this.embedOut, V);
    return { logits, vocabSize: V };
  }

  /**
   * Prompt logprobs: score() with the window positions decoding uses (positionMode), so a prompt
   * token's logits equal those it would get had it been generated. A last partial block is completed
   * with token 0 and its extra rows dropped: the token decoder is causal, so they change nothing before.
   */
  async scoreTokens(ids: number[]): Promise<{ logits: Float32Array; first: number }> {
    const L = this.L, V = this.spec.vocabSize;
    if (ids.length <= L) return { logits: new Float32Array(0), first: L };
    const padded = [...ids, ...new Array((L - (ids.length % L)) % L).fill(0)];
    const logits = await this.score(padded, 'decoding');
    return { logits: logits.subarray(0, (ids.length - L) * V), first: L };
  }

  /**
   * Teacher-forced logits of a sequence whose length is a multiple of L: row j predicts ids[L + j]
   * (block 0 is never predicted). Window positions are 0..R+L-2 as in training, or with 'decoding'
   * those execute() uses (they differ in the 'reference' position mode).
   */
  async score(ids: number[], positionsFor: 'training' | 'decoding' = 'training'): Promise<Float32Array> {
    const L = this.L, R = this.R, W = this.windowLength, d = this.spec.blockDecoder.hiddenSize;
    if (ids.length % L !== 0 || ids.length < 2 * L) throw new Error(`score: length ${ids.length} must be a multiple of ${L} and at least ${2 * L}`);
    const nb = ids.length / L;
    const b = this.backend;
    const blockCache = this.blockStack.allocateCache(nb);
    const localCache = this.tokenStack.allocateCache((nb - 1) * W);
    const owned: Tensor[] = [];
    const alloc = (shape: number[]) => { const t = b.alloc(shape); owned.push(t); return t; };
    try {
      const xb = alloc([nb, d]);
      b.gatherRows(xb, this.embedder, Int32Array.from(ids), 0, this.spec.embedderDim);
      const blocks = Array.from({ length: nb }, (_, i) => i);
      this.blockStack.forward({
        x: xb, positions: Int32Array.from(blocks), slots: Int32Array.from(blocks),
        plan: makePlan([blocks], blocks.map(() => 0), blocks.map((i) => i + 1)),
      }, blockCache);
      const ctx = alloc([nb - 1, d]), ctxNormed = alloc([nb - 1, d]), expansion = alloc([nb - 1, R * d]);
      b.gatherRows(ctx, xb, Int32Array.from(blocks.slice(0, nb - 1)));
      b.layerNorm(ctxNormed, ctx, this.blockStack.finalNormW, this.blockStack.finalNormB, this.spec.blockDecoder.layerNormEps);
      b.matmul(expansion, ctxNormed, this.expansionW, { bias: this.expansionB });
      // Window w (predicting block w+1): rows [P0..P(R-1), e(t0)..e(t(L-2))] of block w+1.
      const xt = alloc([(nb - 1) * W, d]);
      const positions: number[] = [], rowSeq: number[] = [], rowCtx: number[] = [];
      for (let w = 0; w < nb - 1; w++) {
        b.gatherRows(xt, expansion, Int32Array.from({ length: R }, (_, r) => w * R + r), w * W, d);
        b.gatherRows(xt, this.tokenEmbed, Int32Array.from(ids.slice((w + 1) * L, (w + 1) * L + L - 1)), w * W + R);
        for (let r = 0; r < W; r++) { positions.push(positionsFor === 'decoding' ? this.localPosition(r) : r); rowSeq.push(w); rowCtx.push(r + 1); }
      }
      const windows = Array.from({ length: nb - 1 }, (_, w) => Array.from({ length: W }, (_, r) => w * W + r));
      this.tokenStack.forward({
        x: xt, positions: Int32Array.from(positions), slots: Int32Array.from({ length: (nb - 1) * W }, (_, i) => i),
        plan: makePlan(windows, rowSeq, rowCtx),
      }, localCache);
      const want: number[] = [];
      for (let w = 0; w < nb - 1; w++) for (let r = R - 1; r < W; r++) want.push(w * W + r);
      return await lmHeadAll(b, this.scratch, xt, want, this.tokenStack, this.embedOut, this.spec.vocabSize);
    } finally {
      for (const t of owned) b.free(t);
      for (const c of [...blockCache, ...localCache]) { b.free(c.k); b.free(c.v); }
    }
  }

  private freeCaches(): void {
    for (const c of [...(this.blockCache ?? []), ...(this.localCache ?? [])]) { this.backend.free(c.k); this.backend.free(c.v); }
    this.blockCache = this.localCache = null;
  }

  dispose(): void {
    this.blockStack.releaseScratch(); this.tokenStack.releaseScratch(); this.scratch.release();
    this.freeCaches();
  }
}
