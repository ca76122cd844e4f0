// FLOPs and bytes per generated token, from the shapes alone, for the paper's benchmark setting
// (prompt P, G generated, batch B decoding in lock-step). The roofline bound is
// min(peak FLOP/s / FLOPs-per-token, bandwidth / bytes-per-token).
//
// Counted: every GEMM (2 FLOPs per MAC), attention scores and values over the context, the LM head.
// Bytes: weights streamed once per step for the whole batch (divided by B), KV cache read per token,
// at the dtype the weights are stored in (weightBytes per element) and the cache's (kvBytes: f32 or bf16). Prefill is
// included, amortised over the generated tokens: at 2048/128 it dominates, at 128/2048 it does not.

import type { ModelSpec, NeoxStackSpec } from '../config/spec.ts';

export interface TokenCost {
  flopsPerToken: number;
  bytesPerToken: number;
}

function layerMacsPerRow(s: NeoxStackSpec): number {
  const d = s.hiddenSize;
  return s.numLayers * (3 * d * d + d * d + 2 * d * s.intermediateSize);
}

function layerWeightElems(s: NeoxStackSpec): number {
  return layerMacsPerRow(s); // one weight element per MAC for a single row
}

/** Attention MACs for one query row over `ctx` entries, all layers (q.k and p.v). */
function attnMacs(s: NeoxStackSpec, ctx: number): number {
  return s.numLayers * 2 * ctx * s.hiddenSize;
}

export function tokenCost(spec: ModelSpec, promptLen: number, genLen: number, batch: number, weightBytes: number, kvBytes = 4): TokenCost {
  const meanCtx = promptLen + genLen / 2; // average context length while generating
  if (spec.kind === 'vanilla') {
    const s = spec.decoder,
      d = s.hiddenSize,
      V = spec.vocabSize;
    const decodeMacs = layerMacsPerRow(s) + attnMacs(s, meanCtx) + d * V;
    // Prefill: P rows through the layers, causal attention over P/2 on average; one LM-head row.
    const prefillMacs = promptLen * layerMacsPerRow(s) + promptLen * attnMacs(s, promptLen / 2) + d * V;
    const flops = 2 * (decodeMacs + prefillMacs / genLen);
    const weights = (layerWeightElems(s) + d * V) * weightBytes;
    const kvRead = s.numLayers * 2 * d * kvBytes * meanCtx;
    return { flopsPerToken: flops, bytesPerToken: weights / batch + kvRead };
  }
  const L = spec.blockLength,
    R = spec.expansionRatio,
    V = spec.vocabSize;
  const b = spec.blockDecoder,
    t = spec.tokenDecoder,
    d = b.hiddenSize,
    dt = t.hiddenSize; // dt < d: narrow token decoder
  const W = R + L - 1; // token-decoder rows per block
  const blockCtx = meanCtx / L;
  // Per block of L generated tokens: one block-decoder row, the expansion, W token-decoder rows
  // attending over <= W entries, and L LM-head rows.
  const perBlockMacs =
    layerMacsPerRow(b) + attnMacs(b, blockCtx) + d * R * dt + W * layerMacsPerRow(t) + W * attnMacs(t, (W + 1) / 2) + L * dt * V;
  const prefillMacs =
    (promptLen / L) * (layerMacsPerRow(b) + attnMacs(b, promptLen / L / 2)) + d * R * dt + R * layerMacsPerRow(t) + dt * V;
  const flops = 2 * (perBlockMacs / L + prefillMacs / genLen);
  // A step of the batch reads the token decoder + LM head; the block decoder once every L steps.
  const weightsPerStep = (layerWeightElems(t) + dt * V + (layerWeightElems(b) + d * R * dt) / L) * weightBytes;
  const kvRead = (b.numLayers * 2 * d * kvBytes * blockCtx) / L + t.numLayers * 2 * dt * kvBytes * W;
  return { flopsPerToken: flops, bytesPerToken: weightsPerStep / batch + kvRead };
}

export function rooflineTokensPerSecond(cost: TokenCost, peakGflops: number, triadGbs: number): number {
  return Math.min((peakGflops * 1e9) / cost.flopsPerToken, (triadGbs * 1e9) / cost.bytesPerToken);
}
