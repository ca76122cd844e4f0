import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './convert.ts';

const words = (xs: number[], conv: (x: Float32Array) => Uint16Array) => [...conv(new Float32Array(xs))];

test('f32 -> bf16 rounds to nearest, ties to even', () => {
  // bf16 keeps 7 mantissa bits: the ulp at 1 is 2^-7.
  assert.deepEqual(words([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -2], f32ToBf16), [
    0x3f80, // 1
    0x3f80, // halfway 1 | 1+2^-7: even is 1
    0x3f82, // halfway 1+2^-7 | 1+2^-6: even is 1+2^-6
    0x3f81, // just above halfway: up
    0xc000,
  ]);
  assert.deepEqual(words([Infinity, -Infinity, 3.4028234663852886e38], f32ToBf16), [0x7f80, 0xff80, 0x7f80]); // max f32 rounds to inf
  const nan = f32ToBf16(new Float32Array([NaN]))[0]!;
  assert.ok((nan & 0x7f80) === 0x7f80 && (nan & 0x7f) !== 0, 'NaN stays NaN');
});

test('f32 -> f16 rounds to nearest even, overflows to inf, handles subnormals', () => {
  assert.deepEqual(
    words([1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 65520, -0], f32ToF16),
    [0x3c00, 0x3c00, 0x3c02, 0x7bff, 0x7bff, 0x7c00, 0x8000],
  );
  // Smallest subnormal 2^-24; 2^-25 is a tie with 0 (even), 3*2^-26 rounds up to 2^-24.
  assert.deepEqual(words([2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14 - 2 ** -24], f32ToF16), [0x0001, 0x0000, 0x0001, 0x03ff]);
});

test('16-bit -> f32 widening is exact and round trips', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  for (const [narrow, widen] of [
    [f32ToBf16, bf16ToF32],
    [f32ToF16, f16ToF32],
  ] as const) {
    const back = narrow(widen(all));
    for (let i = 0; i < 65536; i++) {
      const w = widen(all.subarray(i, i + 1))[0]!;
      if (Number.isNaN(w)) continue; // NaN payloads need not survive
      assert.equal(back[i], i, `word 0x${i.toString(16)} (${w}) does not round trip`);
    }
  }
  assert.deepEqual([...f16ToF32(new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00]))], [1, -2, 2 ** -24, Infinity]);
  assert.deepEqual([...bf16ToF32(new Uint16Array([0x3f80, 0x4049]))], [1, 3.140625]);
});
