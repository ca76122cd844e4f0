// What a WebGPU Tensor's handle holds, and how a tensor is bound to a shader.

import type { Tensor } from '../backend.ts';

export interface GpuHandle {
  buffer: GPUBuffer;
  /** Bytes of payload: numel * 4 for f32; 16-bit weights are packed two per u32 word (rounded up). */
  bytes: number;
  freed: boolean;
}

export function gpuHandle(t: Tensor): GpuHandle {
  const h = t.handle as GpuHandle;
  if (!h || !('buffer' in h)) throw new Error('webgpu: tensor belongs to another backend');
  if (h.freed) throw new Error('webgpu: tensor used after free');
  return h;
}

export function bufferOf(t: Tensor): GPUBuffer {
  return gpuHandle(t).buffer;
}

/** Binds the whole tensor; fails clearly when it exceeds one storage binding (see matmul/gather for chunking). */
export function bindWhole(t: Tensor, maxBinding: number, what: string): GPUBufferBinding {
  const h = gpuHandle(t);
  if (h.bytes > maxBinding) {
    throw new Error(`webgpu: ${what} [${t.shape}] is ${h.bytes} bytes, over this device's ${maxBinding}-byte storage binding limit`);
  }
  return { buffer: h.buffer, offset: 0, size: h.bytes };
}

/** Word (4-byte) count of a tensor's payload; dtype-aware. */
export function payloadBytes(numel: number, dtype: Tensor['dtype']): number {
  return dtype === 'f32' ? numel * 4 : Math.ceil(numel / 2) * 4;
}

export const DTYPE_CODE = { f32: 0, f16: 1, bf16: 2 } as const;
