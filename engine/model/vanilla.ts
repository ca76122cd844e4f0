// Vanilla GPT-NeoX (Pythia): embed_in -> stack -> final LayerNorm -> embed_out.
// One KV entry per token; every fed token is a row of one batched stack call.

import type { Backend, Tensor } from '../../kernels/backend.ts';
import type { VanillaModelSpec } from '../config/spec.ts';
import type { FeedItem, Runner, RunnerInfo, StepOutput } from '../runner-api.ts';
import { makePlan, NeoxStack, wholeSequenceInput } from './neox.ts';
import type { LayerCache, WeightLookup } from './neox.ts';
import { lmHead, lmHeadAll } from './head.ts';
import { ScratchCache } from './scratch.ts';

export class VanillaModel implements Runner {
  readonly info: RunnerInfo;
  private readonly stack: NeoxStack;
  private readonly embedIn: Tensor;
  private readonly embedOut: Tensor;
  private cache: LayerCache[] | null = null;
  /** Step inputs and LM-head buffers by shape (see scratch.ts). */
  private readonly scratch: ScratchCache;

  constructor(
    private readonly backend: Backend,
    readonly spec: VanillaModelSpec,
    w: WeightLookup,
  ) {
    this.stack = new NeoxStack(backend, spec.decoder, 'gpt_neox', w);
    this.embedIn = w('gpt_neox.embed_in.weight');
    this.embedOut = w('embed_out.weight');
    this.scratch = new ScratchCache(backend, 16);
    const d = spec.decoder.hiddenSize;
    this.info = {
      kind: 'vanilla',
      tokensPerEntry: 1,
      bytesPerEntry: spec.decoder.numLayers * 2 * d * 4,
      vocabSize: spec.vocabSize,
      contextLength: spec.contextLength,
      eosTokenId: 0,
      blockLength: 1,
      padFirstBlock: false,
    };
  }

  gemmWeights(): Tensor[] {
    return [...this.stack.gemmWeights(), this.embedOut];
  }

  allocateCache(numSlots: number): void {
    this.freeCache();
    this.cache = this.stack.allocateCache(numSlots);
  }

  async execute(items: FeedItem[]): Promise<StepOutput> {
    if (!this.cache) throw new Error('VanillaModel: allocateCache() first');
    const b = this.backend;
    const ids: number[] = [],
      positions: number[] = [],
      slots: number[] = [];
    const rowSeq: number[] = [],
      rowCtx: number[] = [],
      wantRows: number[] = [];
    items.forEach((it, s) => {
      if (it.kvSlots.length < it.position + it.tokens.length)
        throw new Error(`seq ${it.seqId}: ${it.kvSlots.length} kv slots for ${it.position + it.tokens.length} tokens`);
      it.tokens.forEach((tok, j) => {
        const p = it.position + j;
        if (tok < 0 || tok >= this.spec.vocabSize)
          throw new Error(`seq ${it.seqId}: token id ${tok} outside the vocabulary (0..${this.spec.vocabSize - 1})`);
        if (p >= this.spec.contextLength)
          throw new Error(`seq ${it.seqId}: position ${p} beyond the context length ${this.spec.contextLength}`);
        ids.push(tok);
        positions.push(p);
        slots.push(it.kvSlots[p]!);
        rowSeq.push(s);
        rowCtx.push(p + 1);
      });
      if (it.wantLogits) wantRows.push(ids.length - 1);
    });
    const T = ids.length;
    const x = this.scratch.get('x', [T, this.spec.decoder.hiddenSize]);
    b.gatherRows(x, this.embedIn, Int32Array.from(ids));
    const plan = makePlan(
      items.map((it) => it.kvSlots),
      rowSeq,
      rowCtx,
    );
    this.stack.forward({ x, positions: Int32Array.from(positions), slots: Int32Array.from(slots), plan }, this.cache);
    const logits = await lmHead(b, this.scratch, x, wantRows, this.stack, this.embedOut, this.spec.vocabSize);
    return { logits, vocabSize: this.spec.vocabSize };
  }

  /** Teacher-forced logits: row j = logits after ids[j] (predicting ids[j+1]). */
  async score(ids: number[]): Promise<Float32Array> {
    const b = this.backend;
    const T = ids.length;
    const cache = this.stack.allocateCache(T);
    const x = b.alloc([T, this.spec.decoder.hiddenSize]);
    try {
      const rows = Array.from({ length: T }, (_, i) => i);
      b.gatherRows(x, this.embedIn, Int32Array.from(ids));
      this.stack.forward(wholeSequenceInput(x, T), cache);
      return await lmHeadAll(b, this.scratch, x, rows, this.stack, this.embedOut, this.spec.vocabSize);
    } finally {
      b.free(x);
      for (const c of cache) {
        b.free(c.k);
        b.free(c.v);
      }
    }
  }

  async scoreTokens(ids: number[]): Promise<{ logits: Float32Array; first: number }> {
    const V = this.spec.vocabSize;
    if (ids.length < 2) return { logits: new Float32Array(0), first: 1 };
    // The last row predicts the token after the sequence: not part of it.
    return { logits: (await this.score(ids)).subarray(0, (ids.length - 1) * V), first: 1 };
  }

  private freeCache(): void {
    for (const c of this.cache ?? []) {
      this.backend.free(c.k);
      this.backend.free(c.v);
    }
    this.cache = null;
  }

  dispose(): void {
    this.stack.releaseScratch();
    this.scratch.release();
    this.freeCache();
  }
}
