// Encoder for gather.wgsl (embedding lookup, concat embedder, picking rows of an activation).

import type { Tensor } from '../backend.ts';
import { numel } from '../backend.ts';
import type { Recorder } from './recorder.ts';
import { withConsts } from './shader.ts';
import { DTYPE_CODE, bindWhole, gpuHandle } from './tensor.ts';

const WG = 64;
const BINDING_ALIGN = 256;

export function encodeGatherRows(
  rec: Recorder,
  maxBinding: number,
  windowBytes: number,
  out: Tensor,
  src: Tensor,
  rows: Int32Array,
  outRowOffset: number,
  width: number,
): void {
  const srcRows = numel(src.shape) / width;
  if (!Number.isInteger(srcRows)) throw new Error(`gatherRows: width ${width} does not divide src [${src.shape}]`);
  for (const r of rows) if (r < 0 || r >= srcRows) throw new Error(`gatherRows: row ${r} out of range [0, ${srcRows})`);
  if ((outRowOffset + rows.length) * width > numel(out.shape)) throw new Error('gatherRows: output too small');
  if (rows.length === 0) return;
  const srcH = gpuHandle(src);
  if (srcH.buffer === gpuHandle(out).buffer) throw new Error('gatherRows: out may not alias src');
  const { key, code } = withConsts('gather.wgsl', { SRC_DTYPE: DTYPE_CODE[src.dtype] });
  const pipeline = rec.pipeline(key, ['uniform', 'storage', 'read-only-storage', 'read-only-storage'], code);
  const outB = bindWhole(out, maxBinding, 'gatherRows out');
  const bytesPerElem = src.dtype === 'f32' ? 4 : 2;
  const rowBytes = width * bytesPerElem;
  const rowsPerWindow = srcH.bytes <= windowBytes ? srcRows : Math.floor((windowBytes - BINDING_ALIGN) / rowBytes);
  if (rowsPerWindow < 1) throw new Error('gatherRows: one row exceeds the binding limit');
  const groups = Math.ceil((rows.length * width) / WG);
  for (let rowStart = 0; rowStart < srcRows; rowStart += rowsPerWindow) {
    const rowEnd = Math.min(srcRows, rowStart + rowsPerWindow);
    if (rowsPerWindow < srcRows && !rows.some((r) => r >= rowStart && r < rowEnd)) continue;
    const startByte = rowStart * rowBytes;
    const offset = Math.floor(startByte / BINDING_ALIGN) * BINDING_ALIGN;
    const end = Math.min(srcH.bytes, Math.ceil((rowEnd * rowBytes) / 4) * 4);
    const [params, rowList] = rec.stage([[rows.length, width, outRowOffset, rowStart, rowEnd, (startByte - offset) / bytesPerElem], rows]);
    rec.dispatchLinear(pipeline, [params!, outB, { buffer: srcH.buffer, offset, size: end - offset }, rowList!], groups);
  }
}
