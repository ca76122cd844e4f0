// The native CPU backend: a thin TypeScript wrapper over the C++ addon in ./src (built at npm install by
// ./build.mjs). Tensors live in native memory; ops run synchronously on the calling thread and spread
// over the addon's thread pool inside, so callers run it off the HTTP event loop (the engine's worker).

import { createRequire } from 'node:module';
import { sourceUrl } from '../assets.ts';
import type { AttentionPlan, Backend, DType, MatmulOptions, Tensor } from '../backend.ts';
import { checkReadDestination, numel, rowsOf } from '../backend.ts';
import type { SamplingPasses } from '../sampling.ts';
import { addonSamplingPasses } from './sampling.ts';

/** The addon's exports (src/addon.cc). Tensor handles are opaque externals. */
/** Kernel paths, each a superset of the one before (src/cpu.h). */
export type CpuIsa = 'portable' | 'avx2' | 'avx512bf16';
const ISA_LEVEL: Record<CpuIsa, number> = { portable: 0, avx2: 1, avx512bf16: 2 };
export const CPU_ISAS: readonly CpuIsa[] = ['portable', 'avx2', 'avx512bf16'];

/** What the GEMMs multiply in: f32, or bf16 inputs with FP32 accumulation (needs AVX512_BF16). */
export type ComputeDtype = 'f32' | 'bf16';

export interface CpuInfo {
  threads: number;
  avx2: boolean;
  cpuHasAvx2: boolean;
  /** Path in use and the best one this CPU can run. */
  isa: CpuIsa;
  cpuIsa: CpuIsa;
}

export interface CpuAddon {
  info(): CpuInfo;
  configure(threads: number, isaCap: number): void;
  alloc(elements: number, dtype: number): unknown;
  write(buf: unknown, data: Float32Array | Uint16Array, offset: number): void;
  read(buf: unknown, count: number): Float32Array;
  readInto(buf: unknown, dst: Float32Array, count: number): void;
  free(buf: unknown): void;
  matmul(
    out: unknown,
    x: unknown,
    w: unknown,
    M: number,
    K: number,
    N: number,
    bias: unknown,
    residual: unknown,
    gelu: boolean,
    bf16: boolean,
  ): void;
  prepack(w: unknown, N: number, K: number, bf16: boolean): void;
  layerNorm(out: unknown, x: unknown, gamma: unknown, beta: unknown, rows: number, width: number, eps: number): void;
  add(out: unknown, a: unknown, b: unknown): void;
  gatherRows(out: unknown, src: unknown, rows: Int32Array, outRowOffset: number, width: number): void;
  rotary(qkv: unknown, positions: Int32Array, heads: number, headDim: number, rotDims: number, base: number): void;
  kvWrite(k: unknown, v: unknown, qkv: unknown, slots: Int32Array, heads: number, headDim: number): void;
  attention(
    out: unknown,
    qkv: unknown,
    k: unknown,
    v: unknown,
    rowSeq: Int32Array,
    rowCtxLen: Int32Array,
    seqSlotOffsets: Int32Array,
    seqSlots: Int32Array,
    heads: number,
    headDim: number,
    scale: number,
    /** bf16 compute: prefill chunks may run their two products in bf16 (attention_prefill.cc). */
    bf16Compute: boolean,
  ): void;
  peakFlops(seconds: number): number;
  /** bf16 dot (vdpbf16ps) FLOP/s; 0 when the path in use is below avx512bf16. */
  peakBf16(seconds: number): number;
  triad(elements: number, repeats: number): number;
}

const DTYPE_CODE: Record<DType, number> = { f32: 0, f16: 1, bf16: 2 };

// Loaded on first use, not at import: importing this module (the sampler does, through ./sampling.ts)
// must not open a native library in a process that never runs the CPU backend.
let addon: CpuAddon | null | undefined;
let loadError: string | null = null;
function load(): CpuAddon | null {
  if (addon !== undefined) return addon;
  try {
    addon = createRequire(sourceUrl('./backend.ts', import.meta.url))('./build/Release/blockserve_cpu.node') as CpuAddon;
  } catch (e) {
    addon = null;
    loadError = (e as Error).message.split('\n')[0] ?? String(e);
  }
  return addon;
}

export function cpuBackendAvailable(): boolean {
  return load() !== null;
}

/** Why the addon did not load (null when it did). */
export function cpuBackendLoadError(): string | null {
  load();
  return loadError;
}

/** The addon's sampling passes (the sampler runs them whatever the model's backend); null when it is not built. */
export function nativeSamplingPasses(): SamplingPasses | null {
  const a = load();
  return a ? addonSamplingPasses(a) : null;
}

/** The raw addon (the kernel benchmark's machine probes use it). Throws when it is not built. */
export function cpuAddon(): CpuAddon {
  const a = load();
  if (!a) throw new Error(`the native CPU backend is not built: ${loadError} (run npm install, or node kernels/cpu/build.mjs)`);
  return a;
}

export interface CpuBackendOptions {
  /** Pool threads; default one per core. */
  threads?: number;
  /** false forces the portable scalar kernels even on an AVX2 machine (tests use it). */
  simd?: boolean;
  /** Caps the kernel path (tests force each one); 'auto' or absent: the best the CPU has (--cpu-isa's values). */
  isa?: CpuIsa | 'auto';
  /**
   * GEMM inputs: 'bf16' rounds x and W to bf16 (W once, when packed) and sums in FP32 with vdpbf16ps;
   * 'auto' is bf16 where the CPU has AVX512_BF16, else f32. bf16 on a CPU without it runs f32 (see
   * computeDtype()). Default f32.
   */
  computeDtype?: ComputeDtype | 'auto';
  /** KV cache entries (allocKvCache): bf16 halves the bytes decode attention streams. Default f32. */
  kvDtype?: 'f32' | 'bf16';
}

/** The isa option checked (a bad value is an error, not a silent fallback). */
function isaCap(opts: CpuBackendOptions): number {
  const isa = opts.isa === undefined || opts.isa === 'auto' ? 'avx512bf16' : opts.isa;
  if (!(isa in ISA_LEVEL)) throw new Error(`cpu backend: isa must be one of ${CPU_ISAS.join(', ')} or auto (got '${String(opts.isa)}')`);
  if (opts.simd === false) return ISA_LEVEL.portable;
  return ISA_LEVEL[isa];
}

interface CpuHandle {
  buf: unknown;
}

function hb(t: Tensor): unknown {
  const h = t.handle as CpuHandle;
  if (!h || !('buf' in h)) throw new Error('cpu backend: tensor belongs to another backend');
  return h.buf;
}

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  private readonly native: CpuAddon;

  private readonly bf16: boolean;
  private readonly kvDtype: 'f32' | 'bf16';

  constructor(opts: CpuBackendOptions = {}) {
    this.native = cpuAddon();
    const compute = opts.computeDtype ?? 'f32';
    if (compute !== 'f32' && compute !== 'bf16' && compute !== 'auto')
      throw new Error(`cpu backend: computeDtype must be f32, bf16 or auto (got '${String(compute)}')`);
    const kv = opts.kvDtype ?? 'f32';
    if (kv !== 'f32' && kv !== 'bf16') throw new Error(`cpu backend: kvDtype must be f32 or bf16 (got '${String(kv)}')`);
    this.native.configure(opts.threads ?? 0, isaCap(opts));
    this.bf16 = compute !== 'f32' && this.native.info().isa === 'avx512bf16';
    this.kvDtype = kv;
  }

  /** Threads and ISA actually in use. */
  info(): CpuInfo {
    return this.native.info();
  }

  describe(): string {
    const i = this.info();
    const capped = i.isa !== i.cpuIsa ? ` (capped: the CPU runs ${i.cpuIsa})` : '';
    return `cpu: ${i.isa} kernels${capped}, ${i.threads} threads, ${this.computeDtype()} GEMMs, ${this.kvDtype} KV cache`;
  }

  /** What the GEMMs compute in (bf16 only where asked for and the CPU has AVX512_BF16). */
  computeDtype(): ComputeDtype {
    return this.bf16 ? 'bf16' : 'f32';
  }

  /** A KV cache tensor [numSlots, H * hd] in the backend's KV dtype (zeroed). */
  allocKvCache(shape: readonly number[]): Tensor {
    return {
      shape: [...shape],
      dtype: this.kvDtype,
      handle: { buf: this.native.alloc(numel(shape), DTYPE_CODE[this.kvDtype]) } satisfies CpuHandle,
    };
  }

  alloc(shape: readonly number[]): Tensor {
    return { shape: [...shape], dtype: 'f32', handle: { buf: this.native.alloc(numel(shape), 0) } satisfies CpuHandle };
  }

  upload(data: Float32Array | Uint16Array, shape: readonly number[], dtype: DType): Tensor {
    if (data.length !== numel(shape)) throw new Error(`upload: ${data.length} elements for shape [${shape}]`);
    if ((dtype === 'f32') !== data instanceof Float32Array)
      throw new Error(`upload: ${dtype} needs ${dtype === 'f32' ? 'Float32Array' : 'Uint16Array'}`);
    const buf = this.native.alloc(data.length, DTYPE_CODE[dtype]);
    this.native.write(buf, data, 0);
    return { shape: [...shape], dtype, handle: { buf } satisfies CpuHandle };
  }

  write(t: Tensor, data: Float32Array, offset = 0): void {
    if (t.dtype !== 'f32') throw new Error('write: only f32 tensors');
    this.native.write(hb(t), data, offset);
  }

  async read(t: Tensor, count?: number, into?: Float32Array): Promise<Float32Array> {
    const n = count ?? numel(t.shape);
    if (!into) return this.native.read(hb(t), n);
    checkReadDestination(into, n);
    this.native.readInto(hb(t), into, n);
    return into.subarray(0, n);
  }

  free(t: Tensor): void {
    this.native.free(hb(t));
  }

  async sync(): Promise<void> {}

  samplingPasses(): SamplingPasses {
    return addonSamplingPasses(this.native);
  }

  dispose(): void {
    // The pool is process-wide and parks its threads when idle; tensors are freed by their owners (or
    // by the GC finalizer of their handle).
  }

  matmul(out: Tensor, x: Tensor, w: Tensor, opts: MatmulOptions = {}): void {
    const [N, K] = w.shape as [number, number];
    if (w.shape.length !== 2) throw new Error(`matmul: weight must be [N, K], got [${w.shape}]`);
    const { rows: M, width: xK } = rowsOf(x);
    if (xK !== K) throw new Error(`matmul: x width ${xK} != weight K ${K}`);
    if (numel(out.shape) !== M * N) throw new Error(`matmul: out has ${numel(out.shape)} elements, want ${M}x${N}`);
    this.native.matmul(
      hb(out),
      hb(x),
      hb(w),
      M,
      K,
      N,
      opts.bias ? hb(opts.bias) : null,
      opts.residual ? hb(opts.residual) : null,
      !!opts.gelu,
      this.bf16,
    );
  }

  prepareWeights(ws: readonly Tensor[]): void {
    for (const w of ws) {
      if (w.shape.length !== 2) throw new Error(`prepareWeights: weight must be [N, K], got [${w.shape}]`);
      this.native.prepack(hb(w), w.shape[0]!, w.shape[1]!, this.bf16);
    }
  }

  layerNorm(out: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, eps: number): void {
    const { rows, width } = rowsOf(x);
    if (numel(out.shape) !== rows * width) throw new Error('layerNorm: out shape mismatch');
    this.native.layerNorm(hb(out), hb(x), hb(gamma), hb(beta), rows, width, eps);
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    this.native.add(hb(out), hb(a), hb(b));
  }

  gatherRows(out: Tensor, src: Tensor, rows: Int32Array, outRowOffset = 0, width?: number): void {
    this.native.gatherRows(hb(out), hb(src), rows, outRowOffset, width ?? rowsOf(src).width);
  }

  rotary(qkv: Tensor, positions: Int32Array, numHeads: number, headDim: number, rotDims: number, base: number): void {
    this.native.rotary(hb(qkv), positions, numHeads, headDim, rotDims, base);
  }

  kvWrite(kCache: Tensor, vCache: Tensor, qkv: Tensor, slots: Int32Array, numHeads: number, headDim: number): void {
    this.native.kvWrite(hb(kCache), hb(vCache), hb(qkv), slots, numHeads, headDim);
  }

  attention(
    out: Tensor,
    qkv: Tensor,
    kCache: Tensor,
    vCache: Tensor,
    plan: AttentionPlan,
    numHeads: number,
    headDim: number,
    scale: number,
  ): void {
    this.native.attention(
      hb(out),
      hb(qkv),
      hb(kCache),
      hb(vCache),
      plan.rowSeq,
      plan.rowCtxLen,
      plan.seqSlotOffsets,
      plan.seqSlots,
      numHeads,
      headDim,
      scale,
      this.bf16,
    );
  }
}
