// The LM head shared by both families: pick the rows that need logits, final LayerNorm, embed_out.
// Only picked rows are normalised and projected: the head is as big as a whole token decoder.

import type { Backend, Tensor } from '../../kernels/backend.ts';
import type { NeoxStack } from './neox.ts';
import type { ScratchCache } from './scratch.ts';

export async function lmHead(
  b: Backend,
  scratch: ScratchCache,
  x: Tensor,
  rows: number[],
  stack: NeoxStack,
  embedOut: Tensor,
  vocab: number,
): Promise<Float32Array> {
  if (rows.length === 0) return new Float32Array(0);
  const d = stack.spec.hiddenSize;
  const picked = scratch.get('head.picked', [rows.length, d]);
  const normed = scratch.get('head.normed', [rows.length, d]);
  const logits = scratch.get('head.logits', [rows.length, vocab]);
  b.gatherRows(picked, x, Int32Array.from(rows));
  b.layerNorm(normed, picked, stack.finalNormW, stack.finalNormB, stack.spec.layerNormEps);
  b.matmul(logits, normed, embedOut);
  return b.read(logits, rows.length * vocab, scratch.host(rows.length * vocab));
}

/**
 * Logits of many rows (a teacher-forced pass over a whole prompt) in a new array of their own, computed
 * 64 rows at a time: a 2,048-token prompt would otherwise need a 400 MB logits tensor and leave a host
 * buffer that size in the scratch cache for good.
 */
export async function lmHeadAll(
  b: Backend,
  scratch: ScratchCache,
  x: Tensor,
  rows: number[],
  stack: NeoxStack,
  embedOut: Tensor,
  vocab: number,
): Promise<Float32Array> {
  const CHUNK = 64;
  const out = new Float32Array(rows.length * vocab);
  for (let i = 0; i < rows.length; i += CHUNK) {
    const part = rows.slice(i, i + CHUNK);
    out.set(await lmHead(b, scratch, x, part, stack, embedOut, vocab), i * vocab);
  }
  return out;
}
