// Encoder for matmul.wgsl: picks the entry point for the row count, and splits N into row windows of W when
// the weight is larger than one storage binding (a 50304 x 768 f32 LM head is 154 MB; lavapipe binds
// at most 128 MiB).

import type { MatmulOptions, Tensor } from '../backend.ts';
import { rowsOf } from '../backend.ts';
import type { Recorder } from './recorder.ts';
import { withConsts } from './shader.ts';
import { DTYPE_CODE, bindWhole, gpuHandle } from './tensor.ts';

/** Output block per workgroup of each entry point (see matmul.wgsl). */
const TILED = { rows: 64, cols: 64 };
const GEMV = { rows: 4, cols: 4 };
/** Up to this many rows, gemv (W streamed once per 4 rows, K split across invocations) beats 64-row tiles. */
const GEMV_MAX_ROWS = 8;

const BINDING_ALIGN = 256;

export function encodeMatmul(
  rec: Recorder,
  maxBinding: number,
  windowBytes: number,
  out: Tensor,
  x: Tensor,
  w: Tensor,
  opts: MatmulOptions,
): void {
  const [N, K] = w.shape as [number, number];
  const { rows: M, width: xK } = rowsOf(x);
  if (w.shape.length !== 2) throw new Error(`matmul: weight must be [N, K], got [${w.shape}]`);
  if (xK !== K) throw new Error(`matmul: x width ${xK} != weight K ${K}`);
  if (rowsOf(out).rows * rowsOf(out).width !== M * N) throw new Error(`matmul: out [${out.shape}] is not ${M}x${N}`);
  const outH = gpuHandle(out);
  if (gpuHandle(x).buffer === outH.buffer) throw new Error('matmul: out may not alias x');
  const residualMode = !opts.residual ? 0 : gpuHandle(opts.residual).buffer === outH.buffer ? 2 : 1;

  const entry = M <= GEMV_MAX_ROWS ? 'gemv' : 'tiled';
  const block = entry === 'gemv' ? GEMV : TILED;
  const { key, code } = withConsts('matmul.wgsl', { W_DTYPE: DTYPE_CODE[w.dtype] });
  const pipeline = rec.pipeline(
    key,
    ['uniform', 'storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage'],
    code,
    entry,
  );

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
    const [params] = rec.stage([
      [M, N, K, nStart, nCount, (startByte - offset) / bytesPerElem, opts.bias ? 1 : 0, opts.gelu ? 1 : 0, residualMode],
    ]);
    rec.dispatch(pipeline, [params!, outB, xB, wB, biasB, resB], Math.ceil(nCount / block.cols), Math.ceil(M / block.rows));
  }
}
