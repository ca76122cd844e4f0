// WebGPU backend (Dawn through the `webgpu` npm package). Ops are recorded into a command encoder and
// submitted in batches (see recorder.ts); only read() and sync() wait. Weights keep their dtype on the
// device (16-bit words packed two per u32, widened in the shaders); activations are f32.
//
// Size limits callers should know: every tensor an op binds whole (activations, outputs, KV caches)
// must fit in one storage binding, maxStorageBufferBindingSize (128 MiB on lavapipe, more on real
// GPUs; `maxBinding` below). Matmul weights and gatherRows sources may be larger (up to maxBufferSize):
// they are bound in row windows. write() submits the ops queued so far (queue.writeBuffer would
// otherwise overtake them), so prefer upload() for data known up front.

import type { AttentionPlan, Backend, DType, MatmulOptions, Tensor } from '../backend.ts';
import { checkReadDestination, numel, rowsOf } from '../backend.ts';
import { encodeAttention, encodeKvWrite } from './attention.ts';
import { BufferUsage, MapMode, openGpuSession, webgpuUnavailableReason, type GpuSession } from './device.ts';
import { encodeAdd } from './elementwise.ts';
import { encodeGatherRows } from './gather.ts';
import { encodeLayerNorm } from './layernorm.ts';
import { encodeMatmul } from './matmul.ts';
import { Recorder } from './recorder.ts';
import { encodeRotary } from './rotary.ts';
import { gpuHandle, payloadBytes, type GpuHandle } from './tensor.ts';
import type { SamplingPasses } from '../sampling.ts';
import { ReferenceSamplingPasses } from '../reference/sampling.ts';

export { webgpuUnavailableReason };

export interface WebGpuBackendOptions {
  /**
   * Caps the window of a weight or embedding table bound per dispatch below the device's storage
   * binding limit. Only tests set it, to drive the windowed paths (tensors larger than one binding,
   * e.g. an f32 LM head on lavapipe's 128 MiB limit) with small tensors.
   */
  windowBytes?: number;
}

const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  private session: GpuSession | null;
  private readonly device: GPUDevice;
  private readonly rec: Recorder;
  /** Largest tensor bound whole (the device's maxStorageBufferBindingSize). */
  readonly maxBinding: number;
  /** What the engine sizes whole-bound tensors (the KV cache) by: the same binding limit. */
  get maxTensorBytes(): number {
    return this.maxBinding;
  }
  /** Largest window of a weight / embedding table bound per dispatch (see WebGpuBackendOptions). */
  readonly windowBytes: number;

  private constructor(session: GpuSession, opts: WebGpuBackendOptions) {
    this.session = session;
    this.device = session.device;
    this.rec = new Recorder(this.device);
    // Binding sizes must be multiples of 4; window offsets are 256-aligned inside these budgets.
    this.maxBinding = Math.floor(this.device.limits.maxStorageBufferBindingSize / 4) * 4;
    this.windowBytes = Math.floor(Math.min(this.maxBinding, opts.windowBytes ?? this.maxBinding) / 4) * 4;
  }

  /** Opens the first adapter; null (see webgpuUnavailableReason()) when this machine has none. */
  static async create(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend | null> {
    const session = await openGpuSession();
    return session ? new WebGpuBackend(session, opts) : null;
  }

  /** Dispatches recorded so far (tests use it to prove a windowed path really split the work). */
  get dispatchCount(): number {
    return this.rec.totalDispatches;
  }

  /** The adapter in words, e.g. for bench output. */
  get adapterDescription(): string {
    return this.session?.description ?? 'disposed';
  }

  // ---- memory ----

  private newTensor(shape: readonly number[], dtype: DType, bytes: number, mapped: boolean): { t: Tensor; buffer: GPUBuffer } {
    if (bytes > this.device.limits.maxBufferSize)
      throw new Error(`webgpu: [${shape}] ${dtype} needs ${bytes} bytes, over maxBufferSize ${this.device.limits.maxBufferSize}`);
    // Never zero-sized: bindings of size 0 are invalid, and an empty tensor is still a valid handle.
    const buffer = this.device.createBuffer({ size: Math.max(4, bytes), usage: STORAGE_USAGE, mappedAtCreation: mapped });
    const handle: GpuHandle = { buffer, bytes: Math.max(4, bytes), freed: false };
    return { t: { shape: [...shape], dtype, handle }, buffer };
  }

  alloc(shape: readonly number[]): Tensor {
    return this.newTensor(shape, 'f32', payloadBytes(numel(shape), 'f32'), false).t; // WebGPU zero-fills
  }

  upload(data: Float32Array | Uint16Array, shape: readonly number[], dtype: DType): Tensor {
    if (data.length !== numel(shape)) throw new Error(`upload: ${data.length} elements for shape [${shape}]`);
    if ((dtype === 'f32') !== data instanceof Float32Array)
      throw new Error(`upload: ${dtype} needs ${dtype === 'f32' ? 'Float32Array' : 'Uint16Array'}`);
    const { t, buffer } = this.newTensor(shape, dtype, payloadBytes(data.length, dtype), true);
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    return t;
  }

  write(t: Tensor, data: Float32Array, offset = 0): void {
    const h = gpuHandle(t);
    if (t.dtype !== 'f32') throw new Error('write: only f32 tensors');
    if ((offset + data.length) * 4 > h.bytes) throw new Error('write: past the end of the tensor');
    // queue.writeBuffer runs on the queue timeline, ahead of ops still sitting in the encoder: submit them first.
    this.rec.flush();
    this.device.queue.writeBuffer(h.buffer, offset * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  async read(t: Tensor, count?: number, into?: Float32Array): Promise<Float32Array> {
    const h = gpuHandle(t);
    if (t.dtype !== 'f32') throw new Error('read: only f32 tensors');
    const n = count ?? numel(t.shape);
    if (n * 4 > h.bytes) throw new Error('read: past the end of the tensor');
    if (into) checkReadDestination(into, n);
    if (n === 0) return into ? into.subarray(0, 0) : new Float32Array(0);
    const staging = this.device.createBuffer({ size: n * 4, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    this.rec.copyEncoder().copyBufferToBuffer(h.buffer, 0, staging, 0, n * 4);
    this.rec.flush();
    try {
      await staging.mapAsync(MapMode.READ);
      if (!into) return new Float32Array(staging.getMappedRange().slice(0));
      into.set(new Float32Array(staging.getMappedRange(), 0, n));
      return into.subarray(0, n);
    } finally {
      staging.destroy();
      this.rec.checkErrors();
    }
  }

  free(t: Tensor): void {
    const h = t.handle as GpuHandle;
    if (h.freed) return;
    h.freed = true;
    this.rec.retire(h.buffer);
  }

  async sync(): Promise<void> {
    this.rec.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.rec.checkErrors();
  }

  /** Logits are read back to the host for sampling; no GPU sampling passes (yet): the JavaScript ones. */
  samplingPasses(): SamplingPasses {
    return new ReferenceSamplingPasses();
  }

  dispose(): void {
    if (!this.session) return;
    this.rec.dispose();
    this.device.destroy();
    this.session.gpu = null; // the lifetime rule: drop the create() object last, so the process can exit
    this.session = null;
  }

  // ---- ops ----

  matmul(out: Tensor, x: Tensor, w: Tensor, opts: MatmulOptions = {}): void {
    encodeMatmul(this.rec, this.maxBinding, this.windowBytes, out, x, w, opts);
  }

  layerNorm(out: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, eps: number): void {
    encodeLayerNorm(this.rec, this.maxBinding, out, x, gamma, beta, eps);
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    encodeAdd(this.rec, this.maxBinding, out, a, b);
  }

  gatherRows(out: Tensor, src: Tensor, rows: Int32Array, outRowOffset = 0, width?: number): void {
    encodeGatherRows(this.rec, this.maxBinding, this.windowBytes, out, src, rows, outRowOffset, width ?? rowsOf(src).width);
  }

  rotary(qkv: Tensor, positions: Int32Array, numHeads: number, headDim: number, rotDims: number, base: number): void {
    encodeRotary(this.rec, this.maxBinding, qkv, positions, numHeads, headDim, rotDims, base);
  }

  kvWrite(kCache: Tensor, vCache: Tensor, qkv: Tensor, slots: Int32Array, numHeads: number, headDim: number): void {
    encodeKvWrite(this.rec, this.maxBinding, kCache, vCache, qkv, slots, numHeads, headDim);
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
    encodeAttention(this.rec, this.maxBinding, out, qkv, kCache, vCache, plan, numHeads, headDim, scale);
  }
}
