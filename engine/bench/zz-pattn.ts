import { CpuBackend } from '../../kernels/cpu/backend.ts';
import { makePlan } from '../model/neox.ts';
const [rows, ctx0, kvd, threads, cd] = [
  Number(process.argv[2]),
  Number(process.argv[3]),
  process.argv[4] as 'bf16',
  Number(process.argv[5] ?? 1),
  (process.argv[6] ?? 'bf16') as 'bf16',
];
const b = new CpuBackend({ kvDtype: kvd, threads, computeDtype: cd });
const H = 12,
  hd = 64,
  len = ctx0 + rows;
const k = b.allocKvCache!([len, H * hd]),
  v = b.allocKvCache!([len, H * hd]);
const kv = b.upload(
  Float32Array.from({ length: len * H * 3 * hd }, (_, i) => (i % 97) / 97 - 0.5),
  [len, H, 3, hd],
  'f32',
);
b.kvWrite(
  k,
  v,
  kv,
  Int32Array.from({ length: len }, (_, i) => i),
  H,
  hd,
);
const qkv = b.upload(
  Float32Array.from({ length: rows * H * 3 * hd }, (_, i) => (i % 89) / 89 - 0.5),
  [rows, H, 3, hd],
  'f32',
);
const out = b.alloc([rows, H * hd]);
const plan = makePlan(
  [Array.from({ length: len }, (_, i) => i)],
  Array.from({ length: rows }, () => 0),
  Array.from({ length: rows }, (_, r) => ctx0 + r + 1),
);
let best = 1e9;
for (let r = 0; r < Number(process.env.REPS ?? 7); r++) {
  const t0 = performance.now();
  b.attention(out, qkv, k, v, plan, H, hd, 0.125);
  best = Math.min(best, performance.now() - t0);
}
let macs = 0;
for (let r = 0; r < rows; r++) macs += 2 * (ctx0 + r + 1) * hd * H;
console.log(
  `rows=${rows} ctx0=${ctx0} kv=${kvd} compute=${cd} threads=${threads}: ${best.toFixed(2)} ms, ${((2 * macs) / best / 1e6).toFixed(0)} GFLOP/s`,
);
