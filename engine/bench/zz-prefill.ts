import { presetSpec } from '../config/presets.ts';
import { randomWeights } from '../model/random.ts';
import { buildModel } from '../model/load.ts';
import type { FeedItem } from '../runner-api.ts';
const [preset = 'vanilla_160', S_ = '4', P_ = '128'] = process.argv.slice(2);
const S = Number(S_),
  P = Number(P_);
const spec = presetSpec(preset);
const weights = randomWeights(spec, { dtype: 'bf16' });
const { CpuBackend } = await import('../../kernels/cpu/backend.ts');
const backend = new CpuBackend({ computeDtype: 'bf16', kvDtype: 'bf16' });
const model = buildModel(backend, spec, weights);
const reps = Number(process.env.REPS ?? 8);
model.allocateCache(S * P * reps + 64, S * reps);
const times = new Map<string, number>();
const b = backend as unknown as Record<string, unknown>;
for (const op of ['matmul', 'attention', 'layerNorm', 'rotary', 'kvWrite', 'gatherRows', 'read', 'readInto', 'add']) {
  const f = b[op] as ((...a: unknown[]) => unknown) | undefined;
  if (typeof f !== 'function') continue;
  b[op] = (...args: unknown[]) => {
    const t0 = performance.now();
    const r = f.apply(backend, args);
    const key =
      op === 'matmul' ? `matmul N=${(args[2] as { shape: number[] }).shape[0]} M=${(args[1] as { shape: number[] }).shape[0]}` : op;
    times.set(key, (times.get(key) ?? 0) + performance.now() - t0);
    return r;
  };
}
let total = 0;
for (let r = 0; r < reps; r++) {
  const items: FeedItem[] = Array.from({ length: S }, (_, s) => ({
    seqId: `r${r}s${s}`,
    tokens: Array.from({ length: P }, (_, i) => 2 + ((s * 31 + i * 7 + r) % 4000)),
    position: 0,
    kvSlots: Array.from({ length: P }, (_, i) => (r * S + s) * P + i),
    localSlot: r * S + s,
    wantLogits: true,
  }));
  if (r === 2) {
    times.clear();
    total = 0;
  }
  const t0 = performance.now();
  await model.execute(items);
  total += performance.now() - t0;
}
const n = reps - 2;
const flops = S * P * 2 * (12 * (4 * 768 * 768 + 2 * 768 * 3072)) + S * 2 * 768 * spec.vocabSize;
console.log(
  `${preset} prefill ${S}x${P}: ${(total / n).toFixed(2)} ms/step, GEMM ${(flops / 1e9).toFixed(1)} GFLOP -> ${(flops / (total / n) / 1e6).toFixed(0)} GFLOP/s overall`,
);
let acc = 0;
for (const [k, v] of [...times].sort((a, b) => b[1] - a[1])) {
  acc += v;
  console.log(`  ${k.padEnd(28)} ${(v / n).toFixed(2)} ms`);
}
console.log(`  other ${((total - acc) / n).toFixed(2)} ms`);
