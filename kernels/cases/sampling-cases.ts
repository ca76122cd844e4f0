// Op cases of the sampling passes (../sampling.ts), part of the one table (table.ts): each case builds a
// logits row (spread values, exact ties of the maximum, -Infinity and NaN entries, odd widths for the
// vector tails, an offset into a larger array) and runs every pass with several arguments on the
// backend's passes. Outputs are the passes' results as doubles and compared exactly: the addon promises
// the reference's arithmetic, because a seeded request must draw the same token with or without it.
// Buffers the passes write are pre-filled with junk so a pass that skips an entry is caught.

import type { Backend } from '../backend.ts';
import { BUCKETS_PER_NAT, NUM_BUCKETS } from '../sampling.ts';
import type { Rng } from './rng.ts';
import type { CaseOutput, OpCase } from './op-case.ts';

type Row = 'spread' | 'ties' | 'specials';

function makeRow(rng: Rng, kind: Row, offset: number, V: number): Float32Array {
  // Logits of a language model's shape: most far below the top, a few near it.
  const all = rng.floats(offset + V + 5, -14, 6);
  for (let i = 0; i < 6; i++) all[offset + rng.int(V)] = 6 + 4 * (i / 6);
  if (kind === 'ties') {
    const top = 11.5;
    for (let i = 0; i < 4; i++) all[offset + rng.int(V)] = top;
  }
  if (kind === 'specials') {
    for (let i = 0; i < Math.max(2, V >> 4); i++) all[offset + rng.int(V)] = -Infinity;
    all[offset + rng.int(V)] = Number.NaN;
  }
  return all;
}

function plainMax(row: Float32Array, offset: number, V: number): number {
  let m = -Infinity;
  for (let i = offset; i < offset + V; i++) if (row[i]! > m) m = row[i]!;
  return m;
}

function samplingCase(kind: Row, V: number, offset: number): OpCase {
  return {
    name: `sampling ${kind} V=${V} offset=${offset}`,
    op: 'sampling',
    run: async (b: Backend, rng: Rng) => {
      const p = b.samplingPasses();
      const logits = makeRow(rng, kind, offset, V);
      const hasNaN = logits.subarray(offset, offset + V).some((x) => Number.isNaN(x));
      const max = plainMax(logits, offset, V);
      const out: CaseOutput[] = [Float64Array.of(p.rowArgmax(logits, offset, V))];
      const junk = () => rng.int(1 << 20) - (1 << 19);
      for (const [T, minP] of [
        [1, 0],
        [0.7, 0.05],
        [1.6, 0],
      ] as const) {
        const invT = 1 / T;
        const scale = invT * BUCKETS_PER_NAT;
        const floor = minP > 0 ? max + T * Math.log(minP) : -Infinity;
        const counts = Int32Array.from({ length: NUM_BUCKETS + 2 }, junk);
        p.binCounts(logits, offset, V, max, scale, floor, counts);
        out.push(Float64Array.from(counts));
        const found: number[] = [];
        for (const bin of [0, 1, 5, 16, 40, NUM_BUCKETS])
          for (const k of [0, 1, 3, 100000]) found.push(p.findInBin(logits, offset, V, max, scale, floor, bin, k));
        out.push(Float64Array.from(found));
        const w = Float64Array.from({ length: V }, () => rng.next() + 0.5);
        const mass = Float64Array.from({ length: NUM_BUCKETS }, () => rng.next());
        const total = p.expWeights(logits, offset, V, max, invT, floor, w, mass);
        const wNoMass = new Float64Array(V).fill(7);
        out.push(w, mass, Float64Array.of(total, p.expWeights(logits, offset, V, max, invT, floor, wNoMass, null)), wNoMass);
        for (const bucket of [0, 3, 17, 90]) {
          const ids = new Int32Array(V).fill(-7);
          const n = p.collectBucket(logits, offset, V, w, max, invT, bucket, ids);
          out.push(Float64Array.of(n, ...ids));
        }
        const draws: number[] = [];
        for (const f of [0, 0.3, 0.77, 0.999999, 1.0000001]) {
          draws.push(p.drawWeighted(logits, offset, V, w, max, invT, false, NUM_BUCKETS, -Infinity, f * total));
          draws.push(p.drawWeighted(logits, offset, V, w, max, invT, true, 20, max - 1.2, f * total * 0.5));
        }
        out.push(Float64Array.from(draws));
      }
      if (!hasNaN) out.push(Float64Array.of(p.expSum(logits, offset, V, max)));
      for (const k of [1, 7, V + 5]) {
        for (const floor of [-Infinity, max - 3]) {
          const ids = new Int32Array(Math.min(k, V)).fill(-7);
          const n = p.topK(logits, offset, V, k, floor, ids);
          out.push(Float64Array.of(n, ...ids));
        }
      }
      return out;
    },
  };
}

export function samplingCases(): OpCase[] {
  return [
    samplingCase('spread', 1, 0),
    samplingCase('spread', 7, 3),
    samplingCase('spread', 64, 0),
    samplingCase('ties', 33, 5),
    samplingCase('specials', 100, 2),
    samplingCase('spread', 1027, 1),
    samplingCase('ties', 4099, 64),
    samplingCase('specials', 50304, 0),
  ];
}
