// The one interface every compute backend implements (reference, native CPU, WebGPU).
//
// Conventions, shared by every backend and checked by kernels/cases:
// - A Tensor is an opaque handle to a dense row-major buffer owned by one backend. Activations are
//   always f32; weights may be f32, f16 or bf16 (raw 16-bit words, math in f32).
// - Ops are enqueued synchronously and write into caller-allocated outputs ("out" first). Only
//   `read` is asynchronous: it waits for queued work and copies the result back to the host. A backend
//   may execute ops eagerly (reference, cpu) or record and submit them (webgpu); callers must not care.
// - A "row" is the last dimension; ops that take row indices view tensors as [rows, width] with
//   width = last dim, whatever the leading shape says. That lets [B, R*d] be used as [B*R, d] etc.
// - Linear weights use torch's layout [N, K] (out features, in features): y = x W^T + b.
// - Attention works on the fused GPT-NeoX qkv activation [T, H, 3, hd] (per head q|k|v) and on a
//   slot-addressed KV cache [numSlots, H * hd] per layer (separate K and V tensors). Paged caches,
//   contiguous caches and the token decoder's local window are all just lists of slots.

import type { SamplingPasses } from './sampling.ts';

export type DType = 'f32' | 'f16' | 'bf16';

export interface Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Backend-private handle; never inspected outside the owning backend. */
  readonly handle: unknown;
}

/** Where each query row of an attention call looks. All arrays are host-side Int32Array. */
export interface AttentionPlan {
  /** For query row t: index of its sequence in `seqSlotOffsets`. length T. */
  rowSeq: Int32Array;
  /** For query row t: how many of its sequence's slots it may attend to (causal prefix, incl. itself). length T. */
  rowCtxLen: Int32Array;
  /** CSR offsets into `seqSlots`: sequence s owns seqSlots[off[s] .. off[s+1]). length S+1. */
  seqSlotOffsets: Int32Array;
  /** Cache slot of each position of each sequence, in position order. */
  seqSlots: Int32Array;
  /** Largest rowCtxLen (lets backends size scratch space without scanning). */
  maxCtxLen: number;
}

export interface MatmulOptions {
  bias?: Tensor; // [N]
  gelu?: boolean; // exact erf GELU applied after the bias
  residual?: Tensor; // [M, N] added last: out = act(x W^T + b) + residual. May alias out.
}

export interface Backend {
  readonly name: string;
  /**
   * Largest tensor (bytes) an op binds whole, where the device has such a limit (WebGPU: the adapter's
   * maxStorageBufferBindingSize). Absent: no limit beyond memory. The engine sizes the KV cache by it.
   */
  readonly maxTensorBytes?: number;

  // ---- memory ----
  /** Allocates an f32 tensor; contents are zero. */
  alloc(shape: readonly number[]): Tensor;
  /** Uploads host data. f32 takes a Float32Array; f16 / bf16 take raw 16-bit words (Uint16Array). */
  upload(data: Float32Array | Uint16Array, shape: readonly number[], dtype: DType): Tensor;
  /** Overwrites the f32 tensor's first data.length elements starting at element `offset`. */
  write(t: Tensor, data: Float32Array, offset?: number): void;
  /**
   * Waits for queued work and returns a host copy of an f32 tensor (or of its first `count` elements).
   * With `into` (at least that many elements) the copy goes there and a view of it is returned: a caller
   * that reads every step reuses one buffer instead of handing the garbage collector megabytes a step.
   */
  read(t: Tensor, count?: number, into?: Float32Array): Promise<Float32Array>;
  free(t: Tensor): void;
  /** Waits for all queued work (no-op for eager backends). */
  sync(): Promise<void>;
  /** Releases everything the backend holds (device, pools, threads). */
  dispose(): void;

  /** Optional: the path in use in words, for the startup log (the CPU backend: its kernels' ISA, threads, dtypes). */
  describe?(): string;

  // ---- sampling ----
  /**
   * The sampler's full-vocabulary passes over host logits rows (sampling.ts). Backends without passes of
   * their own return the JavaScript reference's.
   */
  samplingPasses(): SamplingPasses;

  // ---- ops ----
  /** out[M,N] = act(x[M,K] W[N,K]^T + bias) + residual. W may be f32/f16/bf16. M = rows of x. */
  matmul(out: Tensor, x: Tensor, w: Tensor, opts?: MatmulOptions): void;
  /**
   * Optional: lays GEMM weights out for the backend's batched path now (the CPU backend packs them into
   * f32 panels), so that work happens at load instead of inside the first batch that needs it.
   */
  prepareWeights?(ws: readonly Tensor[]): void;
  /**
   * Optional: a KV cache tensor [numSlots, H * hd] (zeroed) in the backend's cache dtype, which may be
   * bf16 (the CPU backend's --kv-dtype); kvWrite and attention accept what it returns. Without it, alloc.
   */
  allocKvCache?(shape: readonly number[]): Tensor;
  /** Row-wise LayerNorm over the last dim: out = (x - mean) / sqrt(var + eps) * gamma + beta. */
  layerNorm(out: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, eps: number): void;
  /** out = a + b, elementwise over equal shapes. out may alias a or b. */
  add(out: Tensor, a: Tensor, b: Tensor): void;
  /**
   * out row (outRowOffset + i) = src row rows[i], for i < rows.length. `src` may be f16/bf16 (an
   * embedding table); out is f32. Row width is `width` elements (defaults to the last dim of src);
   * out is viewed as [*, width]. Used for embedding lookup (incl. the concat embedder, where
   * width = d / L and out is [B, d] = [B*L, d/L]) and for picking rows of an activation.
   */
  gatherRows(out: Tensor, src: Tensor, rows: Int32Array, outRowOffset?: number, width?: number): void;
  /**
   * GPT-NeoX rotary, rotate-half convention, in place on q and k of qkv [T, H, 3, hd]: the first
   * `rotDims` dims of each head's q and k are rotated by angle pos * base^(-2i/rotDims).
   * positions has length T.
   */
  rotary(qkv: Tensor, positions: Int32Array, numHeads: number, headDim: number, rotDims: number, base: number): void;
  /** Copies k and v of each row of qkv [T, H, 3, hd] into kCache / vCache [numSlots, H*hd] at slots[t]. */
  kvWrite(kCache: Tensor, vCache: Tensor, qkv: Tensor, slots: Int32Array, numHeads: number, headDim: number): void;
  /**
   * out [T, H*hd] = softmax(q k^T * scale) v per head, where query row t reads q from qkv [T, H, 3, hd]
   * and attends over the first rowCtxLen[t] slots of its sequence (see AttentionPlan). Covers causal
   * prefill chunks, single-query decode over a paged cache and the token decoder's local window.
   */
  attention(
    out: Tensor,
    qkv: Tensor,
    kCache: Tensor,
    vCache: Tensor,
    plan: AttentionPlan,
    numHeads: number,
    headDim: number,
    scale: number,
  ): void;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** The check every backend's read(t, n, into) makes before copying: `into` must hold n elements. */
export function checkReadDestination(into: Float32Array, n: number): void {
  if (into.length < n) throw new Error(`read: destination holds ${into.length} elements, need ${n}`);
}

/** Row width (last dim) and row count of a tensor viewed as [rows, width]. */
export function rowsOf(t: { shape: readonly number[] }): { rows: number; width: number } {
  const width = t.shape[t.shape.length - 1] ?? 1;
  return { rows: numel(t.shape) / width, width };
}
