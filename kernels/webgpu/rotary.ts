// Encoder for rotary.wgsl: the angle table is computed here exactly as the reference computes it.

import type { Tensor } from '../backend.ts';
import type { Recorder } from './recorder.ts';
import { withConsts } from './shader.ts';
import { bindWhole } from './tensor.ts';

const WG = 64;

export function rotaryTable(positions: Int32Array, rotDims: number, base: number): Float32Array {
  const T = positions.length,
    half = rotDims / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = Math.fround(1 / Math.fround(base ** Math.fround((2 * i) / rotDims)));
  const table = new Float32Array(2 * T * half);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(positions[t]! * invFreq[i]!);
      table[t * half + i] = Math.cos(angle);
      table[(T + t) * half + i] = Math.sin(angle);
    }
  }
  return table;
}

export function encodeRotary(
  rec: Recorder,
  maxBinding: number,
  qkv: Tensor,
  positions: Int32Array,
  numHeads: number,
  headDim: number,
  rotDims: number,
  base: number,
): void {
  const T = positions.length;
  if (rotDims % 2 !== 0 || rotDims > headDim) throw new Error(`rotary: rotDims ${rotDims} must be even and <= headDim ${headDim}`);
  if (qkv.shape.reduce((a, b) => a * b, 1) < T * numHeads * 3 * headDim) throw new Error('rotary: qkv smaller than [T, H, 3, hd]');
  const half = rotDims / 2;
  const count = T * numHeads * 2 * half;
  if (count === 0) return;
  const { key, code } = withConsts('rotary.wgsl', {});
  const pipeline = rec.pipeline(key, ['uniform', 'storage', 'read-only-storage'], code);
  const [params, table] = rec.stage([[T, numHeads, headDim, half], rotaryTable(positions, rotDims, base)]);
  rec.dispatchLinear(pipeline, [params!, bindWhole(qkv, maxBinding, 'rotary qkv'), table!], Math.ceil(count / WG));
}
