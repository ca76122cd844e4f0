// 16-bit float formats as raw words: bf16 is the top half of an f32; f16 is IEEE binary16.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bf16ToF32Word(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}

export function f16ToF32Word(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Round-to-nearest-even f32 -> bf16 word (NaN stays NaN). */
export function f32ToBf16Word(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Round-to-nearest-even f32 -> f16 word. */
export function f32ToF16Word(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

export function toF32Array(data: Float32Array | Uint16Array, dtype: 'f32' | 'f16' | 'bf16'): Float32Array {
  if (dtype === 'f32') return data as Float32Array;
  const out = new Float32Array(data.length);
  const conv = dtype === 'bf16' ? bf16ToF32Word : f16ToF32Word;
  for (let i = 0; i < data.length; i++) out[i] = conv(data[i]!);
  return out;
}

export function fromF32Array(data: Float32Array, dtype: 'f32' | 'f16' | 'bf16'): Float32Array | Uint16Array {
  if (dtype === 'f32') return data;
  const out = new Uint16Array(data.length);
  const conv = dtype === 'bf16' ? f32ToBf16Word : f32ToF16Word;
  for (let i = 0; i < data.length; i++) out[i] = conv(data[i]!);
  return out;
}
