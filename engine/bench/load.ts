// Load throughput of the safetensors reader: `node --import tsx engine/bench/load.ts [MB]`.
// Writes a checkpoint of ~MB megabytes (f32 matrices) to the temp dir, then times 5 loads; prints medians.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '../weights/checkpoint.ts';
import { writeSafetensors, type TensorView } from '../weights/safetensors.ts';

const megabytes = Number(process.argv[2] ?? 512);
const dir = mkdtempSync(join(tmpdir(), 'blockserve-bench-'));
const path = join(dir, 'model.safetensors');
const perTensor = 16 << 20; // 16 MiB: a 2048 x 2048 f32 matrix
const tensors: TensorView[] = [];
for (let i = 0; i < Math.max(1, Math.round((megabytes << 20) / perTensor)); i++) {
  const data = new Float32Array(perTensor / 4).fill(i);
  tensors.push({ name: `layer.${i}.weight`, dtype: 'f32', shape: [2048, 2048], data });
}
let t0 = performance.now();
writeSafetensors(path, tensors);
const bytes = tensors.reduce((a, t) => a + t.data.byteLength, 0);
console.log(`wrote ${(bytes / 2 ** 20).toFixed(0)} MiB in ${(performance.now() - t0).toFixed(0)} ms`);
tensors.length = 0;
const times: number[] = [];
for (let r = 0; r < 5; r++) {
  t0 = performance.now();
  const m = loadCheckpoint(path);
  times.push(performance.now() - t0);
  if (m.size === 0) throw new Error('nothing loaded');
}
// Baseline: the whole file into one Buffer with readFileSync (what a views-on-one-buffer reader costs).
const baseline: number[] = [];
for (let r = 0; r < 5; r++) {
  t0 = performance.now();
  const b = readFileSync(path);
  baseline.push(performance.now() - t0);
  if (b.length < bytes) throw new Error('short read');
}
const report = (what: string, ts: number[]) => {
  ts.sort((a, b) => a - b);
  const med = ts[2]!;
  console.log(
    `${what}: median ${med.toFixed(0)} ms, ${(bytes / 2 ** 30 / (med / 1000)).toFixed(2)} GiB/s; all: ${ts.map((t) => t.toFixed(0)).join(' ')} ms`,
  );
};
report('loadCheckpoint (page cache warm)', times);
report('readFileSync baseline', baseline);
rmSync(dir, { recursive: true });
