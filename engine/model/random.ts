// Seeded random weights for a spec: what `--preset` without a checkpoint runs (the paper measured
// speed on random weights) and what the demo model ships as. Normal(0, std) for matrices, LayerNorm
// at identity, zero biases: HF's GPT-NeoX initialisation.

import type { ModelSpec } from '../config/spec.ts';
import { expectedTensors } from './tensors.ts';
import type { HostTensor } from './load.ts';
import { fromF32Array } from '../../kernels/dtype.ts';

/** mulberry32: tiny, fast, good enough for weights. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomWeights(
  spec: ModelSpec,
  opts: { seed?: number; std?: number; dtype?: 'f32' | 'bf16' | 'f16' } = {},
): Map<string, HostTensor> {
  const rand = mulberry32(opts.seed ?? 1234);
  const std = opts.std ?? 0.02;
  const out = new Map<string, HostTensor>();
  for (const t of expectedTensors(spec)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (t.init === 'ones') data.fill(1);
    else if (t.init === 'normal') {
      for (let i = 0; i < n; i += 2) {
        // Box-Muller, two values per draw
        const r = Math.sqrt(-2 * Math.log(1 - rand())) * std,
          a = 2 * Math.PI * rand();
        data[i] = r * Math.cos(a);
        if (i + 1 < n) data[i + 1] = r * Math.sin(a);
      }
    }
    const dtype = t.shape.length > 1 ? (opts.dtype ?? 'f32') : 'f32';
    out.set(t.name, { name: t.name, dtype, shape: t.shape, data: fromF32Array(data, dtype) });
  }
  return out;
}
