// Block Transformer (Ho et al. 2024): the model, read top to bottom like nanoGPT's model.py.
// L tokens per block, R prefix vectors, block-decoder width db, token-decoder width dt (dt may be
// narrower than db: the authors' expansion layer is Conv1d(db, R*dt), kernel 1).
//
//   embedBlocks:  ids [n*L] -> the L token embeddings of a block, each db/L wide, side by side -> [n, db]
//   blockDecoder: GPT-NeoX stack over block vectors, positions = block index           [n, db] -> [n, db]
//   expand:       final LayerNorm, Linear db -> R*dt on a block's output -> P0..P(R-1)  [n, db] -> [n*R, dt]
//   tokenDecoder: GPT-NeoX stack over the window [P0..P(R-1), e(t0)..e(t(L-2))] of the next block
//   logits:       final LayerNorm + embed_out on window rows R-1 .. R+L-2 -> logits of t0 .. t(L-1)
//
// score() is the authors' BlockTransformer.forward() (teacher forcing). Serving steps, where rows of
// many sequences share one call and windows persist across steps, are the runner's (block-runner.ts).

import type { Backend, Tensor } from '../../kernels/backend.ts';
import type { BlockModelSpec } from '../config/spec.ts';
import { makePlan, NeoxStack, wholeSequenceInput } from './neox.ts';
import type { LayerCache, StackInput, WeightLookup } from './neox.ts';
import { lmHead, lmHeadAll } from './head.ts';
import type { ScratchCache } from './scratch.ts';

/** Rotary positions of the token-decoder window: as trained, or as the runner decodes (positionMode). */
export type WindowPositions = 'training' | 'decoding';

export class BlockTransformer {
  readonly L: number;
  readonly R: number;
  /** Block-decoder width (db) and token-decoder width (dt). */
  readonly db: number;
  readonly dt: number;
  /** Token-decoder window length W: R prefix rows + the first L-1 tokens of the block. */
  readonly windowLength: number;
  readonly blockStack: NeoxStack;
  readonly tokenStack: NeoxStack;
  private readonly embedder: Tensor; // [V, db/L]
  private readonly tokenEmbed: Tensor; // [V, dt]
  private readonly embedOut: Tensor; // [V, dt]
  private readonly expansionW: Tensor; // [R*dt, db]
  private readonly expansionB: Tensor; // [R*dt]

  constructor(
    private readonly backend: Backend,
    readonly spec: BlockModelSpec,
    w: WeightLookup,
  ) {
    this.blockStack = new NeoxStack(backend, spec.blockDecoder, 'block_decoder.gpt_neox', w);
    this.tokenStack = new NeoxStack(backend, spec.tokenDecoder, 'token_decoder.gpt_neox', w);
    this.embedder = w('embedder.embeddings.weight');
    this.tokenEmbed = w('token_decoder.gpt_neox.embed_in.weight');
    this.embedOut = w('token_decoder.embed_out.weight');
    this.expansionW = w('token_decoder.expansion_layer.weight');
    this.expansionB = w('token_decoder.expansion_layer.bias');
    this.L = spec.blockLength;
    this.R = spec.expansionRatio;
    this.db = spec.blockDecoder.hiddenSize;
    this.dt = spec.tokenDecoder.hiddenSize;
    this.windowLength = this.R + this.L - 1;
  }

  gemmWeights(): Tensor[] {
    return [...this.blockStack.gemmWeights(), ...this.tokenStack.gemmWeights(), this.expansionW, this.embedOut];
  }

  /**
   * Rotary position of window row r. Training: 0 .. W-1. Decoding in the 'reference' position mode
   * (what the authors' generate() really does, see config/spec.ts): every prefix row at 0, token k at k+1.
   */
  windowPosition(r: number, positions: WindowPositions): number {
    if (positions === 'training' || this.spec.positionMode === 'contiguous') return r;
    return r < this.R ? 0 : r - this.R + 1;
  }

  /** ids [n*L] (whole blocks) -> x [n, db]: token j of a block fills columns [j*db/L, (j+1)*db/L). */
  embedBlocks(x: Tensor, ids: Int32Array): void {
    this.backend.gatherRows(x, this.embedder, ids, 0, this.spec.embedderDim);
  }

  /** x [n, db] -> x [n, db]: the block decoder's residual stream (its final LayerNorm comes in expand). */
  blockDecoder(input: StackInput, cache: LayerCache[]): void {
    this.blockStack.forward(input, cache);
  }

  /** ctx [n, db] block-decoder rows -> prefix [n, R*dt], i.e. [n*R, dt] (normed: [n, db] scratch). */
  expand(prefix: Tensor, ctx: Tensor, normed: Tensor): void {
    const b = this.backend;
    b.layerNorm(normed, ctx, this.blockStack.finalNormW, this.blockStack.finalNormB, this.spec.blockDecoder.layerNormEps);
    b.matmul(prefix, normed, this.expansionW, { bias: this.expansionB });
  }

  /** Token-decoder input rows x[rowOffset ..] [k, dt] = e(ids), the token decoder's own embedding. */
  embedTokens(x: Tensor, ids: Int32Array, rowOffset: number): void {
    this.backend.gatherRows(x, this.tokenEmbed, ids, rowOffset);
  }

  /** x [T, dt] window rows -> x [T, dt] (before the final LayerNorm). */
  tokenDecoder(input: StackInput, cache: LayerCache[]): void {
    this.tokenStack.forward(input, cache);
  }

  /** Logits [rows, V] of the picked rows of x [T, dt] (a view of a reused buffer). */
  logits(scratch: ScratchCache, x: Tensor, rows: number[]): Promise<Float32Array> {
    return lmHead(this.backend, scratch, x, rows, this.tokenStack, this.embedOut, this.spec.vocabSize);
  }

  /**
   * The authors' forward(): teacher-forced logits of ids (a multiple of L, at least two blocks),
   * [(n-1)*L, V] where row j predicts ids[L + j] (block 0 is never predicted).
   */
  async score(scratch: ScratchCache, ids: number[], positions: WindowPositions = 'training'): Promise<Float32Array> {
    const { L, R, windowLength: W, db, dt } = this;
    if (ids.length % L !== 0 || ids.length < 2 * L)
      throw new Error(`score: length ${ids.length} must be a multiple of ${L} and at least ${2 * L}`);
    const n = ids.length / L;
    const b = this.backend;
    const blockCache = this.blockStack.allocateCache(n);
    const windowCache = this.tokenStack.allocateCache((n - 1) * W);
    const owned: Tensor[] = [];
    const alloc = (shape: number[]) => {
      const t = b.alloc(shape);
      owned.push(t);
      return t;
    };
    try {
      const blocks = Array.from({ length: n }, (_, i) => i);
      const xb = alloc([n, db]);
      this.embedBlocks(xb, Int32Array.from(ids)); // [n, db]
      this.blockDecoder(wholeSequenceInput(xb, n), blockCache); // [n, db]
      // Block i's output conditions block i+1: the last block conditions nothing here.
      const ctx = alloc([n - 1, db]),
        normed = alloc([n - 1, db]),
        prefix = alloc([n - 1, R * dt]);
      b.gatherRows(ctx, xb, Int32Array.from(blocks.slice(0, n - 1)));
      this.expand(prefix, ctx, normed); // [(n-1)*R, dt]
      // Window w predicts block w+1: rows [P0..P(R-1), e(t0)..e(t(L-2))] of that block.
      const xt = alloc([(n - 1) * W, dt]);
      const pos: number[] = [],
        rowSeq: number[] = [],
        rowCtx: number[] = [];
      for (let w = 0; w < n - 1; w++) {
        b.gatherRows(
          xt,
          prefix,
          Int32Array.from({ length: R }, (_, r) => w * R + r),
          w * W,
          dt,
        );
        this.embedTokens(xt, Int32Array.from(ids.slice((w + 1) * L, (w + 1) * L + L - 1)), w * W + R);
        for (let r = 0; r < W; r++) {
          pos.push(this.windowPosition(r, positions));
          rowSeq.push(w);
          rowCtx.push(r + 1);
        }
      }
      const windows = Array.from({ length: n - 1 }, (_, w) => Array.from({ length: W }, (_, r) => w * W + r));
      this.tokenDecoder(
        {
          x: xt,
          positions: Int32Array.from(pos),
          slots: Int32Array.from({ length: (n - 1) * W }, (_, i) => i),
          plan: makePlan(windows, rowSeq, rowCtx),
        },
        windowCache,
      ); // [(n-1)*W, dt]
      const rows: number[] = [];
      for (let w = 0; w < n - 1; w++) for (let r = R - 1; r < W; r++) rows.push(w * W + r);
      return await lmHeadAll(b, scratch, xt, rows, this.tokenStack, this.embedOut, this.spec.vocabSize); // [(n-1)*L, V]
    } finally {
      for (const t of owned) b.free(t);
      for (const c of [...blockCache, ...windowCache]) {
        b.free(c.k);
        b.free(c.v);
      }
    }
  }

  releaseScratch(): void {
    this.blockStack.releaseScratch();
    this.tokenStack.releaseScratch();
  }
}
