// One GPT-NeoX / Pythia stack: the layers shared by the vanilla model and both decoders of the
// Block Transformer. Rows of one call may belong to many sequences; the AttentionPlan says which
// cache slots each row attends to, so one call serves a whole step's batch.
//
// Layer (parallel residual, Pythia): x = x + Attn(LN1(x)) + MLP(LN2(x))
//   qkv = LN1(x) Wqkv^T + b      // [T, H, 3, hd]: split per head as q|k|v
//   rotary on the first rot dims of q, k (rotate-half), K/V written to their cache slots
//   a = softmax(q k^T / sqrt(hd)) v over the row's context // [T, d]
//   MLP: gelu(LN2(x) W1^T + b1) W2^T + b2

import type { AttentionPlan, Backend, Tensor } from '../../kernels/backend.ts';
import type { NeoxStackSpec } from '../config/spec.ts';
import { headDim, rotaryDims } from '../config/spec.ts';
import { ScratchCache } from './scratch.ts';

export type WeightLookup = (name: string) => Tensor;

interface LayerWeights {
  ln1w: Tensor;
  ln1b: Tensor;
  ln2w: Tensor;
  ln2b: Tensor;
  qkvW: Tensor;
  qkvB: Tensor;
  denseW: Tensor;
  denseB: Tensor;
  fc1W: Tensor;
  fc1B: Tensor;
  fc2W: Tensor;
  fc2B: Tensor;
}

/** K and V caches of one layer: [numSlots, H * hd] each. */
export interface LayerCache {
  k: Tensor;
  v: Tensor;
}

export interface StackInput {
  /** [T, d] residual stream; overwritten with the stack's output (before the final LayerNorm). */
  x: Tensor;
  /** Rotary position of each row. */
  positions: Int32Array;
  /** Cache slot each row's K/V is written to. */
  slots: Int32Array;
  plan: AttentionPlan;
}

export class NeoxStack {
  private readonly layers: LayerWeights[] = [];
  /** Five buffers per row count, for the four most recent row counts. */
  private readonly scratch: ScratchCache;
  readonly finalNormW: Tensor;
  readonly finalNormB: Tensor;

  constructor(
    private readonly backend: Backend,
    readonly spec: NeoxStackSpec,
    prefix: string,
    w: WeightLookup,
  ) {
    for (let i = 0; i < spec.numLayers; i++) {
      const p = `${prefix}.layers.${i}`;
      this.layers.push({
        ln1w: w(`${p}.input_layernorm.weight`),
        ln1b: w(`${p}.input_layernorm.bias`),
        ln2w: w(`${p}.post_attention_layernorm.weight`),
        ln2b: w(`${p}.post_attention_layernorm.bias`),
        qkvW: w(`${p}.attention.query_key_value.weight`),
        qkvB: w(`${p}.attention.query_key_value.bias`),
        denseW: w(`${p}.attention.dense.weight`),
        denseB: w(`${p}.attention.dense.bias`),
        fc1W: w(`${p}.mlp.dense_h_to_4h.weight`),
        fc1B: w(`${p}.mlp.dense_h_to_4h.bias`),
        fc2W: w(`${p}.mlp.dense_4h_to_h.weight`),
        fc2B: w(`${p}.mlp.dense_4h_to_h.bias`),
      });
    }
    this.finalNormW = w(`${prefix}.final_layer_norm.weight`);
    this.finalNormB = w(`${prefix}.final_layer_norm.bias`);
    this.scratch = new ScratchCache(backend, 5 * 4);
  }

  /** The weights this stack multiplies by (what a backend may lay out ahead of the first batch). */
  gemmWeights(): Tensor[] {
    return this.layers.flatMap((L) => [L.qkvW, L.denseW, L.fc1W, L.fc2W]);
  }

  /** Allocates per-layer K/V caches of `numSlots` entries. */
  allocateCache(numSlots: number): LayerCache[] {
    const width = this.spec.hiddenSize;
    const alloc = (): Tensor => this.backend.allocKvCache?.([numSlots, width]) ?? this.backend.alloc([numSlots, width]);
    return this.layers.map(() => ({ k: alloc(), v: alloc() }));
  }

  /** Runs every layer over in.x (rows of many sequences) in place. */
  forward(input: StackInput, cache: LayerCache[]): void {
    const b = this.backend,
      s = this.spec;
    const T = input.positions.length;
    const d = s.hiddenSize,
      H = s.numHeads,
      hd = headDim(s),
      rot = rotaryDims(s);
    const scale = 1 / Math.sqrt(hd);
    const sc = this.scratch;
    const h = sc.get('h', [T, d]),
      qkv = sc.get('qkv', [T, 3 * d]),
      attn = sc.get('attn', [T, d]);
    const mid = sc.get('mid', [T, s.intermediateSize]),
      tmp = sc.get('tmp', [T, d]);
    const x = input.x;
    this.layers.forEach((L, i) => {
      const c = cache[i]!;
      b.layerNorm(h, x, L.ln1w, L.ln1b, s.layerNormEps);
      b.matmul(qkv, h, L.qkvW, { bias: L.qkvB }); // [T, H, 3, hd]
      if (rot > 0) b.rotary(qkv, input.positions, H, hd, rot, s.rotaryBase);
      b.kvWrite(c.k, c.v, qkv, input.slots, H, hd);
      b.attention(attn, qkv, c.k, c.v, input.plan, H, hd, scale); // [T, d]
      b.matmul(tmp, attn, L.denseW, { bias: L.denseB, residual: x }); // x + attn
      // Parallel residual feeds LN2 the layer input; sequential feeds it x + attn.
      b.layerNorm(h, s.parallelResidual ? x : tmp, L.ln2w, L.ln2b, s.layerNormEps);
      b.matmul(mid, h, L.fc1W, { bias: L.fc1B, gelu: true });
      b.matmul(x, mid, L.fc2W, { bias: L.fc2B, residual: tmp }); // x + attn + mlp
    });
  }

  /** Frees the cached scratch buffers (the weights belong to the caller). */
  releaseScratch(): void {
    this.scratch.release();
  }
}

/**
 * A whole sequence in one call (teacher forcing): row i at position i, written to cache slot i, attending
 * to rows 0..i. Scoring uses it for the vanilla stack and for the block decoder over a text's blocks.
 */
export function wholeSequenceInput(x: Tensor, n: number): StackInput {
  const rows = Array.from({ length: n }, (_, i) => i);
  return {
    x,
    positions: Int32Array.from(rows),
    slots: Int32Array.from(rows),
    plan: makePlan(
      [rows],
      rows.map(() => 0),
      rows.map((i) => i + 1),
    ),
  };
}

/** Builds an AttentionPlan from per-sequence slot lists and per-row (sequence, context length). */
export function makePlan(seqSlots: number[][], rowSeq: number[], rowCtxLen: number[]): AttentionPlan {
  const offsets = new Int32Array(seqSlots.length + 1);
  seqSlots.forEach((s, i) => {
    offsets[i + 1] = offsets[i]! + s.length;
  });
  const flat = new Int32Array(offsets[seqSlots.length]!);
  seqSlots.forEach((s, i) => {
    flat.set(s, offsets[i]!);
  });
  return {
    rowSeq: Int32Array.from(rowSeq),
    rowCtxLen: Int32Array.from(rowCtxLen),
    seqSlotOffsets: offsets,
    seqSlots: flat,
    maxCtxLen: rowCtxLen.reduce((a, c) => Math.max(a, c), 0),
  };
}
