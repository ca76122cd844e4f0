// Host tensors -> a model on a backend. Vectors (biases, LayerNorm) are widened to f32; matrices
// and embedding tables keep their dtype (backends read f16/bf16 directly).

import type { Backend, Tensor } from '../../kernels/backend.ts';
import { toF32Array } from '../../kernels/dtype.ts';
import type { ModelSpec } from '../config/spec.ts';
import { BlockModel } from './block-runner.ts';
import { VanillaModel } from './vanilla.ts';
import { expectedTensors } from './tensors.ts';

export interface HostTensor {
  name: string;
  dtype: 'f32' | 'f16' | 'bf16';
  shape: number[];
  data: Float32Array | Uint16Array;
}

export type Model = BlockModel | VanillaModel;

export class ModelLoadError extends Error {}

/**
 * Uploads the tensors the spec needs (the caller has already checked names and shapes strictly) and
 * builds the model. `onProgress` reports uploaded bytes.
 */
export function buildModel(
  backend: Backend,
  spec: ModelSpec,
  tensors: Map<string, HostTensor>,
  onProgress?: (done: number, total: number) => void,
): Model {
  const wanted = expectedTensors(spec);
  const total = wanted.reduce((a, t) => a + (tensors.get(t.name)?.data.byteLength ?? 0), 0);
  let done = 0;
  const uploaded = new Map<string, Tensor>();
  for (const t of wanted) {
    const host = tensors.get(t.name);
    if (!host) throw new ModelLoadError(`tensor ${t.name} is missing`);
    // Conv1d weights carry a trailing kernel dim of 1: a Linear [out, in] for the backend.
    const shape = t.shape.length === 3 && t.shape[2] === 1 ? t.shape.slice(0, 2) : t.shape;
    const tensor =
      shape.length === 1 || host.dtype === 'f32'
        ? backend.upload(toF32Array(host.data, host.dtype), shape, 'f32')
        : backend.upload(host.data as Uint16Array, shape, host.dtype);
    uploaded.set(t.name, tensor);
    done += host.data.byteLength;
    onProgress?.(done, total);
  }
  const lookup = (name: string): Tensor => {
    const t = uploaded.get(name);
    if (!t) throw new ModelLoadError(`tensor ${name} was not loaded`);
    return t;
  };
  const model = spec.kind === 'block' ? new BlockModel(backend, spec, lookup) : new VanillaModel(backend, spec, lookup);
  // Lay the GEMM weights out now: otherwise the first batched step (or long prompt) pays for it, about a
  // second on this 2-core machine for block_main_b4_85, inside a request and inside the bench's timing.
  backend.prepareWeights?.(model.gemmWeights());
  return model;
}
