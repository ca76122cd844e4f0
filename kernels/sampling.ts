// The sampler's full-vocabulary passes, as a kernel interface beside Backend: engine/sampler keeps the
// sampling rules (penalties, temperature, min_p / top_k / top_p, the draw) and calls these for every
// scan over a logits row. Two implementations: the JavaScript loops (reference/sampling.ts, the
// reference, and what runs without the addon) and the CPU addon's (cpu/sampling.ts, src/sampling.cc),
// which does the same double-precision arithmetic in the same order, so a seeded request draws the
// same token with either; kernels/cases/table.ts checks every pass against the reference.
//
// Logits are float32; every pass reads logits[offset .. offset + V). Exponent buckets: d = (max - x) / T
// in 1/BUCKETS_PER_NAT-nat bins, NUM_BUCKETS of them, then an overflow bin (d >= 64 nats, p < 1.6e-28,
// never inside a nucleus) and a never-counted bin (NaN, below the min_p floor).

import { LIMIT, LN2_STEP, SCALE, TABLE } from './fast-exp.ts';

export const BUCKETS_PER_NAT = 16;
export const NUM_BUCKETS = 64 * BUCKETS_PER_NAT;

/** What the native passes are set up with once: the exp(-d) table of fast-exp.ts and the buckets. */
export interface SamplingConstants {
  expTable: Float64Array;
  expScale: number;
  expLn2Step: number;
  expLimit: number;
  bucketsPerNat: number;
  numBuckets: number;
}

export const SAMPLING_CONSTANTS: SamplingConstants = Object.freeze({
  expTable: TABLE,
  expScale: SCALE,
  expLn2Step: LN2_STEP,
  expLimit: LIMIT,
  bucketsPerNat: BUCKETS_PER_NAT,
  numBuckets: NUM_BUCKETS,
});

/** Passes over logits[offset .. offset + V); cpu/src/sampling.h states each one's contract. */
export interface SamplingPasses {
  /** First index of the largest value (NaN ignored); -1 when no value exceeds -Infinity. */
  rowArgmax(logits: Float32Array, offset: number, V: number): number;
  /** counts[0 .. NUM_BUCKETS + 1]: tokens per exponent bin, bin = floor((max - x) * scale). */
  binCounts(logits: Float32Array, offset: number, V: number, max: number, scale: number, floor: number, counts: Int32Array): void;
  /** Index of the k-th (0-based) token in exponent bin `bin`; -1 when the bin has fewer. */
  findInBin(logits: Float32Array, offset: number, V: number, max: number, scale: number, floor: number, bin: number, k: number): number;
  /** w[i] = exp(-(max - x_i) * invT) for x_i >= floor, else 0; adds each weight to mass[its bucket] when mass is given. Returns the sum of w. */
  expWeights(
    logits: Float32Array,
    offset: number,
    V: number,
    max: number,
    invT: number,
    floor: number,
    w: Float64Array,
    mass: Float64Array | null,
  ): number;
  /** Indices of tokens with w > 0 in exponent bucket `bucket`, written to out; returns their count. */
  collectBucket(
    logits: Float32Array,
    offset: number,
    V: number,
    w: Float64Array,
    max: number,
    invT: number,
    bucket: number,
    out: Int32Array,
  ): number;
  /** Inverse-CDF draw over w in token order, u in [0, total); with nucleus, buckets past `edge` and edge-bucket tokens below `cutoff` are out. */
  drawWeighted(
    logits: Float32Array,
    offset: number,
    V: number,
    w: Float64Array,
    max: number,
    invT: number,
    nucleus: boolean,
    edge: number,
    cutoff: number,
    u: number,
  ): number;
  /** Sum of exp(-(max - x_i)): entry i into sum i % 4, then (s0 + s1) + (s2 + s3). */
  expSum(logits: Float32Array, offset: number, V: number, max: number): number;
  /** Writes the indices of the k best entries >= floor to out (length >= min(k, V)), best first, ties to the lower index; returns their count. */
  topK(logits: Float32Array, offset: number, V: number, k: number, floor: number, out: Int32Array): number;
}
