// The CPU addon's sampling passes (src/sampling.cc): exact ports of engine/sampler's per-token loops,
// there to take the sampler's full-vocabulary scans off the JavaScript interpreter. The sampler hands
// over its constants (it owns them) and keeps its own loops as the fallback when the addon is absent.

import { cpuAddon, cpuBackendAvailable } from './backend.ts';

/** What the sampler passes once: its exp(-d) table and constants, and its exponent buckets. */
export interface SamplingConstants {
  expTable: Float64Array;
  expScale: number;
  expLn2Step: number;
  expLimit: number;
  bucketsPerNat: number;
  numBuckets: number;
}

/** Passes over logits[offset .. offset + V); see src/sampling.h for each one's contract. */
export interface SamplingPasses {
  rowArgmax(logits: Float32Array, offset: number, V: number): number;
  binCounts(logits: Float32Array, offset: number, V: number, max: number, scale: number, floor: number, counts: Int32Array): void;
  findInBin(logits: Float32Array, offset: number, V: number, max: number, scale: number, floor: number, bin: number, k: number): number;
  expWeights(logits: Float32Array, offset: number, V: number, max: number, invT: number, floor: number, w: Float64Array, mass: Float64Array | null): number;
  collectBucket(logits: Float32Array, offset: number, V: number, w: Float64Array, max: number, invT: number, bucket: number, out: Int32Array): number;
  drawWeighted(logits: Float32Array, offset: number, V: number, w: Float64Array, max: number, invT: number, nucleus: boolean, edge: number, cutoff: number, u: number): number;
  expSum(logits: Float32Array, offset: number, V: number, max: number): number;
  /** Writes the indices of the k best entries >= floor to out (length >= min(k, V)), best first; returns their count. */
  topK(logits: Float32Array, offset: number, V: number, k: number, floor: number, out: Int32Array): number;
}

interface SamplingAddon extends SamplingPasses {
  samplingSetup(table: Float64Array, scale: number, ln2Step: number, limit: number, bucketsPerNat: number, numBuckets: number): void;
}

/** The native passes, set up with `c`; null when the CPU addon is not built. */
export function nativeSamplingPasses(c: SamplingConstants): SamplingPasses | null {
  if (!cpuBackendAvailable()) return null;
  const addon = cpuAddon() as unknown as SamplingAddon;
  addon.samplingSetup(c.expTable, c.expScale, c.expLn2Step, c.expLimit, c.bucketsPerNat, c.numBuckets);
  return addon;
}
