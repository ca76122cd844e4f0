// Records ops into one command encoder and submits them in batches. Small per-call data (uniform
// params, attention plans, row index lists) goes into a host-side arena that is written to one GPU
// buffer with queue.writeBuffer right before the batch is submitted; queue order guarantees the next
// batch's write lands after this batch has run, so the arena is reused from offset 0 every batch.

import { BufferUsage } from './device.ts';

export type BindingKind = 'uniform' | 'storage' | 'read-only-storage';

/** One value of a params struct: integers are u32 unless tagged as i32 / f32. */
export type Param = number | { f32: number } | { i32: number };

const ARENA_ALIGN = 256; // minUniformBufferOffsetAlignment / minStorageBufferOffsetAlignment ceiling
const MAX_DISPATCHES_PER_BATCH = 256; // keeps the GPU fed without one giant command buffer
const MAX_WORKGROUPS_PER_DIM = 65535;

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

function packParams(values: readonly Param[]): Uint8Array {
  const buf = new ArrayBuffer(alignUp(Math.max(values.length, 1) * 4, 16)); // uniform structs are 16-byte sized
  const dv = new DataView(buf);
  values.forEach((v, i) => {
    if (typeof v === 'number') dv.setUint32(i * 4, v, true);
    else if ('f32' in v) dv.setFloat32(i * 4, v.f32, true);
    else dv.setInt32(i * 4, v.i32, true);
  });
  return new Uint8Array(buf);
}

function bytesOf(arr: Int32Array | Float32Array | Uint32Array): Uint8Array {
  // A zero-length binding is invalid; an empty list still gets one (unread) word.
  return arr.byteLength ? new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength) : new Uint8Array(4);
}

export class Recorder {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  /** Every dispatch ever recorded (a test hook, see WebGpuBackend.dispatchCount). */
  totalDispatches = 0;
  private arenaHost: Uint8Array<ArrayBuffer>;
  private arenaGpu: GPUBuffer;
  private arenaUsed = 0;
  private pipelines = new Map<string, GPUComputePipeline>();
  private modules = new Map<string, GPUShaderModule>(); // one compile per source, shared by entry points
  /** Buffers freed while still referenced by recorded work: destroyed once that work is submitted. */
  private doomed: GPUBuffer[] = [];
  private firstError: string | null = null;

  constructor(
    readonly device: GPUDevice,
    arenaBytes = 4 << 20,
  ) {
    this.arenaHost = new Uint8Array(arenaBytes);
    this.arenaGpu = this.newArena(arenaBytes);
    device.addEventListener('uncapturederror', (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error.message;
      this.firstError ??= msg;
    });
  }

  /** Throws the first validation / OOM error Dawn reported since the last check. */
  checkErrors(): void {
    if (this.firstError !== null) {
      const msg = this.firstError;
      this.firstError = null;
      throw new Error(`webgpu: ${msg}`);
    }
  }

  /** Pipelines are keyed by static facts only (op, dtype, tile, flags); shapes travel in uniforms. */
  pipeline(key: string, kinds: readonly BindingKind[], code: () => string, entryPoint = 'main'): GPUComputePipeline {
    const cacheKey = `${key}#${entryPoint}`;
    let p = this.pipelines.get(cacheKey);
    if (!p) {
      const layout = this.device.createBindGroupLayout({
        label: key,
        entries: kinds.map((type, binding) => ({ binding, visibility: 4 /* GPUShaderStage.COMPUTE */, buffer: { type } })),
      });
      p = this.device.createComputePipeline({
        label: key,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module: this.module(key, code), entryPoint },
      });
      this.pipelines.set(cacheKey, p);
    }
    return p;
  }

  private module(key: string, code: () => string): GPUShaderModule {
    let m = this.modules.get(key);
    if (!m) {
      m = this.device.createShaderModule({ label: key, code: code() });
      this.modules.set(key, m);
    }
    return m;
  }

  /**
   * Stages one dispatch's small inputs in the arena: a Param[] becomes a params struct (every field 4
   * bytes, for a uniform binding), a typed array is copied as is (for a read-only storage binding).
   * All parts of a dispatch are staged in one call so a flush can never fall between them.
   */
  stage(parts: ReadonlyArray<readonly Param[] | Int32Array | Float32Array | Uint32Array>): GPUBufferBinding[] {
    const blobs = parts.map((part) => (ArrayBuffer.isView(part) ? bytesOf(part) : packParams(part)));
    const total = blobs.reduce((sum, b) => sum + alignUp(b.byteLength, ARENA_ALIGN), 0);
    if (this.arenaUsed + total > this.arenaHost.byteLength) {
      this.flush();
      if (total > this.arenaHost.byteLength) this.growArena(total);
    }
    return blobs.map((b) => {
      const offset = this.arenaUsed;
      this.arenaHost.set(b, offset);
      this.arenaUsed = alignUp(offset + b.byteLength, ARENA_ALIGN);
      return { buffer: this.arenaGpu, offset, size: b.byteLength };
    });
  }

  private newArena(bytes: number): GPUBuffer {
    return this.device.createBuffer({
      label: 'arena',
      size: bytes,
      usage: BufferUsage.UNIFORM | BufferUsage.STORAGE | BufferUsage.COPY_DST,
    });
  }

  private growArena(minBytes: number): void {
    this.doomed.push(this.arenaGpu);
    const bytes = alignUp(minBytes * 2, ARENA_ALIGN);
    this.arenaHost = new Uint8Array(bytes);
    this.arenaGpu = this.newArena(bytes);
  }

  /**
   * Records a dispatch of `groups` workgroups in a line. Counts above the per-dimension limit are
   * folded into y; shaders recover the index as wid.x + wid.y * nwg.x and skip ids past the end.
   */
  dispatchLinear(pipeline: GPUComputePipeline, bindings: readonly GPUBufferBinding[], groups: number): void {
    const y = Math.ceil(groups / MAX_WORKGROUPS_PER_DIM);
    this.dispatch(pipeline, bindings, Math.ceil(groups / y), y);
  }

  /** Records one dispatch of x * y workgroups. */
  dispatch(pipeline: GPUComputePipeline, bindings: readonly GPUBufferBinding[], x: number, y = 1): void {
    if (x <= 0 || y <= 0) return;
    if (x > MAX_WORKGROUPS_PER_DIM || y > MAX_WORKGROUPS_PER_DIM)
      throw new Error(`webgpu: dispatch ${x}x${y} exceeds ${MAX_WORKGROUPS_PER_DIM} per dimension`);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: bindings.map((resource, binding) => ({ binding, resource })),
    });
    this.encoder ??= this.device.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(x, y);
    this.totalDispatches++;
    if (++this.dispatches >= MAX_DISPATCHES_PER_BATCH) this.flush();
  }

  /** Ends the open compute pass and returns the encoder, for copy commands that follow the ops. */
  copyEncoder(): GPUCommandEncoder {
    this.pass?.end();
    this.pass = null;
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  /** Defers destroying a buffer until the work already recorded against it has been submitted. */
  retire(buffer: GPUBuffer): void {
    this.doomed.push(buffer);
    if (!this.encoder) this.flush();
  }

  /** Writes the arena, submits everything recorded so far, destroys retired buffers. */
  flush(): void {
    this.pass?.end();
    this.pass = null;
    if (this.encoder) {
      if (this.arenaUsed) this.device.queue.writeBuffer(this.arenaGpu, 0, this.arenaHost, 0, this.arenaUsed);
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
    }
    this.arenaUsed = 0;
    this.dispatches = 0;
    for (const b of this.doomed) b.destroy();
    this.doomed = [];
  }

  dispose(): void {
    this.flush();
    this.arenaGpu.destroy();
    this.pipelines.clear();
    this.modules.clear();
  }
}
