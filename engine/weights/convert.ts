// Whole-array conversions between f32 and the 16-bit weight formats (raw words), round-to-nearest-
// even. The per-value arithmetic lives in kernels/dtype.ts, shared with the backends.

import { bf16ToF32Word, f16ToF32Word, f32ToBf16Word, f32ToF16Word } from '../../kernels/dtype.ts';

function mapWords(x: Float32Array, conv: (v: number) => number): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = conv(x[i]!);
  return out;
}

function widen(x: Uint16Array, conv: (w: number) => number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = conv(x[i]!);
  return out;
}

export const f32ToBf16 = (x: Float32Array): Uint16Array => mapWords(x, f32ToBf16Word);
export const f32ToF16 = (x: Float32Array): Uint16Array => mapWords(x, f32ToF16Word);
export const bf16ToF32 = (x: Uint16Array): Float32Array => widen(x, bf16ToF32Word);
export const f16ToF32 = (x: Uint16Array): Float32Array => widen(x, f16ToF32Word);
