// Encoder for elementwise.wgsl (residual adds).

import type { Tensor } from '../backend.ts';
import { numel } from '../backend.ts';
import type { Recorder } from './recorder.ts';
import { withConsts } from './shader.ts';
import { bindWhole, gpuHandle } from './tensor.ts';

const WG = 256;

export function encodeAdd(rec: Recorder, maxBinding: number, out: Tensor, a: Tensor, b: Tensor): void {
  const count = numel(out.shape);
  if (numel(a.shape) !== count || numel(b.shape) !== count) throw new Error('add: shape mismatch');
  const outBuf = gpuHandle(out).buffer;
  const aIsOut = gpuHandle(a).buffer === outBuf,
    bIsOut = gpuHandle(b).buffer === outBuf;
  const { key, code } = withConsts('elementwise.wgsl', { A_IS_OUT: aIsOut, B_IS_OUT: bIsOut });
  const pipeline = rec.pipeline(key, ['uniform', 'storage', 'read-only-storage', 'read-only-storage'], code);
  const outB = bindWhole(out, maxBinding, 'add out');
  const aB = aIsOut ? null : bindWhole(a, maxBinding, 'add a');
  const bB = bIsOut ? null : bindWhole(b, maxBinding, 'add b');
  const filler = aB ?? bB; // an aliased slot still needs some readable buffer bound
  const [params] = rec.stage([[count]]);
  if (!filler) {
    // out = out + out: no read-only buffer at all; bind the params word (never read as an operand).
    rec.dispatchLinear(pipeline, [params!, outB, params!, params!], Math.ceil(count / WG));
    return;
  }
  rec.dispatchLinear(pipeline, [params!, outB, aB ?? filler, bB ?? filler], Math.ceil(count / WG));
}
