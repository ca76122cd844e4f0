// Encoder for layernorm.wgsl.

import type { Tensor } from '../backend.ts';
import { rowsOf } from '../backend.ts';
import type { Recorder } from './recorder.ts';
import { withConsts } from './shader.ts';
import { bindWhole, gpuHandle } from './tensor.ts';

export function encodeLayerNorm(rec: Recorder, maxBinding: number, out: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, eps: number): void {
  const { rows, width } = rowsOf(x);
  if (rowsOf(out).rows * rowsOf(out).width !== rows * width) throw new Error('layerNorm: out and x differ in size');
  const inPlace = gpuHandle(out).buffer === gpuHandle(x).buffer;
  const { key, code } = withConsts('layernorm.wgsl', { X_IS_OUT: inPlace }, ['reduce.wgsl']);
  const pipeline = rec.pipeline(key, ['uniform', 'storage', 'read-only-storage', 'read-only-storage', 'read-only-storage'], code);
  const outB = bindWhole(out, maxBinding, 'layerNorm out');
  const gB = bindWhole(gamma, maxBinding, 'layerNorm gamma');
  const xB = inPlace ? gB : bindWhole(x, maxBinding, 'layerNorm x');
  const [params] = rec.stage([[rows, width, { f32: eps }]]);
  rec.dispatchLinear(pipeline, [params!, outB, xB, gB, bindWhole(beta, maxBinding, 'layerNorm beta')], rows);
}
