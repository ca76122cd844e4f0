// The sampling passes in JavaScript: the reference the addon's passes are checked against (op cases in
// ../cases/table.ts), and what the sampler runs where the addon is not built. Sums and histograms use
// four lanes (entry i into lane i % 4, summed as (l0 + l1) + (l2 + l3)): the addon's AVX2 lanes do the
// same, so both give identical doubles, and one lane would make every add wait for the previous one.

import { expNeg } from '../fast-exp.ts';
import { BUCKETS_PER_NAT, NUM_BUCKETS, type SamplingPasses } from '../sampling.ts';
import { topKIndices } from './top-k.ts';

/** Stride of one histogram lane. */
const LANE = NUM_BUCKETS + 2;

/** Exponent bin of a logit: 0 .. NUM_BUCKETS - 1, NUM_BUCKETS for d >= 64 nats or -Infinity, NUM_BUCKETS + 1 for NaN and below the floor. */
function binOf(x: number, max: number, scale: number, floor: number): number {
  if (!(x >= floor)) return NUM_BUCKETS + 1;
  const t = (max - x) * scale;
  return t < NUM_BUCKETS ? t | 0 : NUM_BUCKETS;
}

/** Largest value (NaN ignored; -Infinity if none), four running maxima wide. */
function rowMax(logits: Float32Array, offset: number, V: number): number {
  let m0 = -Infinity;
  let m1 = -Infinity;
  let m2 = -Infinity;
  let m3 = -Infinity;
  const end = offset + (V & ~3);
  for (let i = offset; i < end; i += 4) {
    const v0 = logits[i];
    const v1 = logits[i + 1];
    const v2 = logits[i + 2];
    const v3 = logits[i + 3];
    if (v0 > m0) m0 = v0;
    if (v1 > m1) m1 = v1;
    if (v2 > m2) m2 = v2;
    if (v3 > m3) m3 = v3;
  }
  let m = Math.max(m0, m1, m2, m3);
  for (let i = end; i < offset + V; i++) if (logits[i] > m) m = logits[i];
  return m;
}

export class ReferenceSamplingPasses implements SamplingPasses {
  private readonly lanes = new Int32Array(4 * LANE);

  rowArgmax(logits: Float32Array, offset: number, V: number): number {
    const max = rowMax(logits, offset, V);
    if (!(max > -Infinity)) return -1;
    for (let i = 0; i < V; i++) if (logits[offset + i] === max) return i;
    return -1;
  }

  binCounts(logits: Float32Array, offset: number, V: number, max: number, scale: number, floor: number, counts: Int32Array): void {
    // Four histograms filled in turn, then summed: one would make each increment wait for the last.
    const lanes = this.lanes;
    lanes.fill(0);
    const n = V & ~3;
    for (let i = 0; i < n; i += 4) {
      const j = offset + i;
      lanes[binOf(logits[j], max, scale, floor)]++;
      lanes[LANE + binOf(logits[j + 1], max, scale, floor)]++;
      lanes[2 * LANE + binOf(logits[j + 2], max, scale, floor)]++;
      lanes[3 * LANE + binOf(logits[j + 3], max, scale, floor)]++;
    }
    for (let i = n; i < V; i++) lanes[binOf(logits[offset + i], max, scale, floor)]++;
    for (let b = 0; b < LANE; b++) counts[b] = lanes[b] + lanes[LANE + b] + lanes[2 * LANE + b] + lanes[3 * LANE + b];
  }

  findInBin(logits: Float32Array, offset: number, V: number, max: number, scale: number, floor: number, bin: number, k: number): number {
    for (let i = 0; i < V; i++) {
      if (binOf(logits[offset + i], max, scale, floor) !== bin) continue;
      if (k-- === 0) return i;
    }
    return -1;
  }

  expWeights(
    logits: Float32Array,
    offset: number,
    V: number,
    max: number,
    invT: number,
    floor: number,
    w: Float64Array,
    mass: Float64Array | null,
  ): number {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < V; i++) {
      const x = logits[offset + i];
      if (!(x >= floor)) {
        w[i] = 0;
        continue;
      }
      const d = (max - x) * invT;
      const e = expNeg(d);
      w[i] = e;
      const lane = i & 3;
      if (lane === 0) s0 += e;
      else if (lane === 1) s1 += e;
      else if (lane === 2) s2 += e;
      else s3 += e;
      if (mass) {
        const b = (d * BUCKETS_PER_NAT) | 0;
        if (b < NUM_BUCKETS) mass[b] += e;
      }
    }
    return s0 + s1 + (s2 + s3);
  }

  collectBucket(
    logits: Float32Array,
    offset: number,
    V: number,
    w: Float64Array,
    max: number,
    invT: number,
    bucket: number,
    out: Int32Array,
  ): number {
    let n = 0;
    for (let i = 0; i < V; i++) {
      if (w[i] === 0) continue;
      if ((((max - logits[offset + i]) * invT * BUCKETS_PER_NAT) | 0) === bucket) out[n++] = i;
    }
    return n;
  }

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
  ): number {
    let last = 0;
    for (let i = 0; i < V; i++) {
      const e = w[i];
      if (e === 0) continue;
      if (nucleus) {
        const x = logits[offset + i];
        const b = ((max - x) * invT * BUCKETS_PER_NAT) | 0;
        if (b > edge || (b === edge && x < cutoff)) continue;
      }
      last = i;
      u -= e;
      if (u < 0) return i;
    }
    return last; // rounding left u a hair above zero
  }

  expSum(logits: Float32Array, offset: number, V: number, max: number): number {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    const n = V & ~3;
    for (let i = 0; i < n; i += 4) {
      const j = offset + i;
      s0 += expNeg(max - logits[j]);
      s1 += expNeg(max - logits[j + 1]);
      s2 += expNeg(max - logits[j + 2]);
      s3 += expNeg(max - logits[j + 3]);
    }
    for (let i = n; i < V; i++) {
      const e = expNeg(max - logits[offset + i]);
      if ((i & 3) === 0) s0 += e;
      else if ((i & 3) === 1) s1 += e;
      else s2 += e;
    }
    return s0 + s1 + (s2 + s3);
  }

  topK(logits: Float32Array, offset: number, V: number, k: number, floor: number, out: Int32Array): number {
    const ids = topKIndices(logits, offset, V, k, floor);
    out.set(ids);
    return ids.length;
  }
}
