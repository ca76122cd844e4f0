// What `blockserve bench kernels` measures: each workload is one op call on one shape, with the FLOPs
// and bytes it must move, so the report can place it against the machine's compute and bandwidth roofs.

import type { Backend, DType, Tensor } from '../backend.ts';
import { numel } from '../backend.ts';
import { fromF32Array } from '../dtype.ts';
import { buildPlan } from '../cases/table.ts';
import { Rng } from '../cases/rng.ts';

/** What the op multiplies in: f32, or bf16 inputs with FP32 sums (the CPU backend's computeDtype / kvDtype). */
export type Compute = 'f32' | 'bf16';

export interface Workload {
  op: string;
  shape: string;
  /** Weight (or KV cache) storage dtype. */
  dtype: DType;
  /** Runs on the backend built for this compute dtype; its fraction is against that dtype's peak. */
  compute: Compute;
  flops: number;
  /** Bytes the op must read and write at least once (weights, activations, caches). */
  bytes: number;
  /** GEMM shape for the onnxruntime peer, when the op is a plain matmul. */
  peer?: { M: number; K: number; N: number };
  /** Allocates inputs on `b`; returns the op call and a cleanup. */
  setup(b: Backend): { run(): void; free(): void };
}

const BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };

function randomTensor(b: Backend, rng: Rng, shape: number[], dtype: DType = 'f32', scale = 1): Tensor {
  const data = rng.floats(numel(shape), -scale, scale);
  return dtype === 'f32' ? b.upload(data, shape, 'f32') : b.upload(fromF32Array(data, dtype), shape, dtype);
}

function matmul(
  M: number,
  K: number,
  N: number,
  dtype: DType,
  epilogue: 'plain' | 'bias+gelu' = 'plain',
  compute: Compute = 'f32',
): Workload {
  return {
    op: epilogue === 'plain' ? 'matmul' : 'matmul+bias+gelu',
    shape: `M=${M} K=${K} N=${N}`,
    dtype,
    compute,
    flops: 2 * M * K * N,
    bytes: N * K * BYTES[dtype] + 4 * (M * K + M * N),
    peer: epilogue === 'plain' ? { M, K, N } : undefined,
    setup(b) {
      const rng = new Rng(M * 31 + K * 7 + N);
      const w = randomTensor(b, rng, [N, K], dtype, 1 / Math.sqrt(K));
      const x = randomTensor(b, rng, [M, K]);
      const bias = randomTensor(b, rng, [N]);
      const out = b.alloc([M, N]);
      const opts = epilogue === 'plain' ? {} : { bias, gelu: true };
      return {
        run: () => b.matmul(out, x, w, opts),
        free: () =>
          [w, x, bias, out].forEach((t) => {
            b.free(t);
          }),
      };
    },
  };
}

/** `seqs` sequences of `ctx` cached positions, `queries` query rows each (1 = decode, ctx = prefill). */
function attention(
  label: string,
  seqs: number,
  ctx: number,
  queries: number,
  H: number,
  hd: number,
  page = 1,
  kv: Compute = 'f32',
): Workload {
  // Query row i of a sequence sees ctx - queries + i + 1 positions (causal); decode sees all ctx.
  let pairs = 0;
  for (let i = 0; i < queries; i++) pairs += ctx - queries + i + 1;
  pairs *= seqs;
  const T = seqs * queries;
  return {
    op: `attention-${label}`,
    shape: `seqs=${seqs} ctx=${ctx} q=${queries} H=${H} hd=${hd}`,
    dtype: kv,
    compute: kv,
    flops: 4 * pairs * H * hd, // q.k and p.v, a multiply-add each
    // Decode reads every cached K and V once; a prefill chunk re-reads them from cache, not memory.
    bytes: BYTES[kv] * 2 * seqs * ctx * H * hd + 4 * (T * 3 * H * hd + T * H * hd),
    setup(b) {
      const rng = new Rng(seqs * 1000 + ctx);
      const rowCtx = Array.from({ length: queries }, (_, i) => ctx - queries + i + 1);
      const plan = buildPlan(
        rng,
        Array.from({ length: seqs }, () => ({ len: ctx, rowCtx })),
        seqs * Math.ceil(ctx / page) * page,
        page,
      );
      const qkv = randomTensor(b, rng, [T, H, 3, hd]);
      // The cache as the model holds it (allocKvCache: bf16 on the bf16 backend), filled by kvWrite.
      const cache = (): Tensor => b.allocKvCache?.([seqs * ctx, H * hd]) ?? b.alloc([seqs * ctx, H * hd]);
      const k = cache(),
        v = cache();
      const rows = randomTensor(b, rng, [seqs * ctx, H, 3, hd]);
      b.kvWrite(
        k,
        v,
        rows,
        Int32Array.from({ length: seqs * ctx }, (_, i) => i),
        H,
        hd,
      );
      b.free(rows);
      const out = b.alloc([T, H * hd]);
      return {
        run: () => b.attention(out, qkv, k, v, plan, H, hd, 1 / Math.sqrt(hd)),
        free: () =>
          [qkv, k, v, out].forEach((t) => {
            b.free(t);
          }),
      };
    },
  };
}

function layerNorm(rows: number, width: number): Workload {
  return {
    op: 'layerNorm',
    shape: `rows=${rows} width=${width}`,
    dtype: 'f32',
    compute: 'f32',
    flops: 8 * rows * width,
    bytes: 4 * 2 * rows * width,
    setup(b) {
      const rng = new Rng(rows + width);
      const x = randomTensor(b, rng, [rows, width]),
        g = randomTensor(b, rng, [width]),
        beta = randomTensor(b, rng, [width]);
      const out = b.alloc([rows, width]);
      return {
        run: () => b.layerNorm(out, x, g, beta, 1e-5),
        free: () =>
          [x, g, beta, out].forEach((t) => {
            b.free(t);
          }),
      };
    },
  };
}

/** The shapes: GEMM 512^3, decode-like GEMMs on the model's widths, batch GEMMs, attention, LayerNorm. */
export function workloads(): Workload[] {
  const list: Workload[] = [matmul(512, 512, 512, 'f32')];
  for (const dtype of ['f32', 'bf16'] as const)
    for (const M of [1, 8, 64]) for (const N of [768, 3072, 50304]) list.push(matmul(M, 768, N, dtype));
  for (const M of [64, 128, 256]) list.push(matmul(M, 768, 3072, 'f32'));
  list.push(matmul(256, 768, 3072, 'bf16'));
  list.push(matmul(64, 3072, 768, 'f32')); // the FFN down projection (long K)
  list.push(matmul(64, 768, 3072, 'bf16', 'bias+gelu'));
  // bf16 compute (AVX512_BF16): the same GEMM shapes on bf16 weights, and the batched f32-weight shape
  // (its weights converted once at pack time).
  for (const M of [1, 8, 64, 256])
    for (const N of M === 256 ? [3072] : [768, 3072, 50304]) list.push(matmul(M, 768, N, 'bf16', 'plain', 'bf16'));
  list.push(matmul(64, 3072, 768, 'bf16', 'plain', 'bf16'));
  list.push(matmul(64, 768, 3072, 'bf16', 'bias+gelu', 'bf16'));
  list.push(attention('decode', 64, 512, 1, 12, 64)); // every slot scattered: the worst case
  list.push(attention('decode-paged', 64, 512, 1, 12, 64, 16)); // pages of 16 slots, as the engine's pool
  list.push(attention('decode-paged', 64, 512, 1, 12, 64, 16, 'bf16')); // the bf16 KV cache: half the bytes
  list.push(attention('decode-paged', 64, 2048, 1, 12, 64, 16));
  list.push(attention('decode-paged', 64, 2048, 1, 12, 64, 16, 'bf16'));
  list.push(attention('prefill', 1, 512, 512, 12, 64));
  list.push(attention('prefill', 1, 512, 512, 12, 64, 1, 'bf16')); // bf16 compute: attention_prefill.cc
  list.push(layerNorm(64, 768));
  list.push(layerNorm(512, 768));
  return list;
}
