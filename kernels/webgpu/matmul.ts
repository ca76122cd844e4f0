// Encoder for matmul.wgsl: picks a tile for the row count, and splits N into row windows of W when
// the weight is larger than one storage binding (a 50304 x 768 f32 LM head is 154 MB; lavapipe binds
// at most 128 MiB).

import type { MatmulOptions, Tensor } from '../backend.ts';
import { rowsOf } from '../backend.ts';
import type { Recorder } from './recorder.ts';
import { withConsts } from './shader.ts';
import { DTYPE_CODE, bindWhole, gpuHandle } from './tensor.ts';

/** Few rows (decode): one row of 64 invocations, 4 rows x 1 column each. Many rows: 64 x 64 tiles. */
const TILES = {
  small: { WG_M: 1, WG_N: 64, TM: 4, TN: 1, KT: 32 },
  large: { WG_M: 16, WG_N: 16, TM: 4, TN: 4, KT: 16 },
} as const;

const BINDING_ALIGN = 256;

export function encodeMatmul(rec: Recorder, maxBinding: number, windowBytes: number, out: Tensor, x: Tensor, w: Tensor, opts: MatmulOptions): void {
  const [N, K] = w.shape as [number, number];
  const { rows: M, width: xK } = rowsOf(x);
  if (w.shape.length !== 2) throw new Error(`matmul: weight must be [N, K], got [${w.shape}]`);
  if (xK !== K) throw new Error(`matmul: x width ${xK} != weight K ${K}`);
  if (rowsOf(out).rows * rowsOf(out).width !== M * N) throw new Error(`matmul: out [${out.shape}] is not ${M}x${N}`);
  const outH = gpuHandle(out);
  if (gpuHandle(x).buffer === outH.buffer) throw new Error('matmul: out may not alias x');
  const residualMode = !opts.residual ? 0 : gpuHandle(opts.residual).buffer === outH.buffer ? 2 : 1;

  const tile = M <= 16 ? TILES.small : TILES.large;
  const tileM = tile.WG_M * tile.TM, tileN = tile.WG_N * tile.TN;
  const { key, code } = withConsts('matmul.wgsl', { ...tile, W_DTYPE: DTYPE_CODE[w.dtype] });
  const pipeline = rec.pipeline(key, ['uniform', 'storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage'], code);

  const outB = bindWhole(out, maxBinding, 'matmul out');
  const xB = bindWhole(x, maxBinding, 'matmul x');
  const biasB = opts.bias ? bindWhole(opts.bias, maxBinding, 'matmul bias') : xB; // unused slot: any readable buffer
  const resB = residualMode === 1 ? bindWhole(opts.residual!, maxBinding, 'matmul residual') : xB;

  // Rows of W per window: as many as fit in one binding after up to BINDING_ALIGN bytes of lead-in.
  const wH = gpuHandle(w);
  const bytesPerElem = w.dtype === 'f32' ? 4 : 2;
  const rowBytes = K * bytesPerElem;
  const rowsPerWindow = wH.bytes <= windowBytes ? N : Math.floor((windowBytes - BINDING_ALIGN) / rowBytes);
  if (rowsPerWindow < 1) throw new Error(`matmul: one weight row (${rowBytes} bytes) exceeds the binding limit`);

  for (let nStart = 0; nStart < N; nStart += rowsPerWindow) {
    const nCount = Math.min(rowsPerWindow, N - nStart);
    const startByte = nStart * rowBytes;
    const offset = Math.floor(startByte / BINDING_ALIGN) * BINDING_ALIGN;
    const end = Math.min(wH.bytes, Math.ceil(((nStart + nCount) * rowBytes) / 4) * 4);
    const wB: GPUBufferBinding = { buffer: wH.buffer, offset, size: end - offset };
    const [params] = rec.stage([[M, N, K, nStart, nCount, (startByte - offset) / bytesPerElem, opts.bias ? 1 : 0, opts.gelu ? 1 : 0, residualMode]]);
    rec.dispatch(pipeline, [params!, outB, xB, wB, biasB, resB], Math.ceil(nCount / tileN), Math.ceil(M / tileM));
  }
}
