// Encoders for attention.wgsl: attention over slot-addressed KV caches, and kvWrite. The plan's host
// arrays are validated here (same checks as the reference) and uploaded per call through the arena.

import type { AttentionPlan, Tensor } from '../backend.ts';
import { numel } from '../backend.ts';
import type { Recorder } from './recorder.ts';
import { withConsts } from './shader.ts';
import { bindWhole, gpuHandle } from './tensor.ts';

const WG = 64;
const MAX_HEAD_DIM = 256; // attention.wgsl's MAX_HD

export function encodeKvWrite(
  rec: Recorder,
  maxBinding: number,
  kCache: Tensor,
  vCache: Tensor,
  qkv: Tensor,
  slots: Int32Array,
  numHeads: number,
  headDim: number,
): void {
  const width = numHeads * headDim;
  const numSlots = numel(kCache.shape) / width;
  if (numel(vCache.shape) !== numel(kCache.shape)) throw new Error('kvWrite: k and v caches differ in size');
  if (gpuHandle(kCache).buffer === gpuHandle(vCache).buffer) throw new Error('kvWrite: k and v caches must be separate tensors');
  for (const s of slots) if (s < 0 || s >= numSlots) throw new Error(`kvWrite: slot ${s} out of range`);
  if (numel(qkv.shape) < slots.length * 3 * width) throw new Error('kvWrite: qkv smaller than [T, H, 3, hd]');
  if (slots.length === 0) return;
  const { key, code } = withConsts('attention.wgsl', {}, ['reduce.wgsl']);
  const pipeline = rec.pipeline(key, ['uniform', 'storage', 'storage', 'read-only-storage', 'read-only-storage'], code, 'kvWrite');
  const [params, slotList] = rec.stage([[slots.length, numHeads, headDim], slots]);
  rec.dispatchLinear(
    pipeline,
    [
      params!,
      bindWhole(kCache, maxBinding, 'kvWrite kCache'),
      bindWhole(vCache, maxBinding, 'kvWrite vCache'),
      bindWhole(qkv, maxBinding, 'kvWrite qkv'),
      slotList!,
    ],
    Math.ceil((slots.length * width) / WG),
  );
}

export function encodeAttention(
  rec: Recorder,
  maxBinding: number,
  out: Tensor,
  qkv: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  plan: AttentionPlan,
  numHeads: number,
  headDim: number,
  scale: number,
): void {
  const T = plan.rowSeq.length;
  const width = numHeads * headDim;
  if (headDim > MAX_HEAD_DIM) throw new Error(`attention: headDim ${headDim} > ${MAX_HEAD_DIM}`);
  if (numel(out.shape) < T * width) throw new Error('attention: out smaller than [T, H*hd]');
  if (numel(qkv.shape) < T * 3 * width) throw new Error('attention: qkv smaller than [T, H, 3, hd]');
  const numSlots = numel(kCache.shape) / width;
  const S = plan.seqSlotOffsets.length - 1;
  for (let t = 0; t < T; t++) {
    const s = plan.rowSeq[t]!,
      ctx = plan.rowCtxLen[t]!;
    if (s < 0 || s >= S) throw new Error(`attention: row ${t} names sequence ${s} of ${S}`);
    const base = plan.seqSlotOffsets[s]!;
    if (ctx < 1 || base + ctx > plan.seqSlotOffsets[s + 1]!) throw new Error(`attention: row ${t} context ${ctx} exceeds its sequence`);
  }
  for (const slot of plan.seqSlots) if (slot < 0 || slot >= numSlots) throw new Error(`attention: slot ${slot} out of range`);
  if (T === 0) return;

  const packed = new Int32Array(2 * T + S + 1 + plan.seqSlots.length);
  packed.set(plan.rowSeq, 0);
  packed.set(plan.rowCtxLen, T);
  packed.set(plan.seqSlotOffsets, 2 * T);
  packed.set(plan.seqSlots, 2 * T + S + 1);
  const { key, code } = withConsts('attention.wgsl', {}, ['reduce.wgsl']);
  const pipeline = rec.pipeline(
    key,
    ['uniform', 'storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage'],
    code,
    'main',
  );
  const [params, planB] = rec.stage([[T, numHeads, headDim, { f32: scale }, T, 2 * T, 2 * T + S + 1], packed]);
  rec.dispatchLinear(
    pipeline,
    [
      params!,
      bindWhole(out, maxBinding, 'attention out'),
      bindWhole(qkv, maxBinding, 'attention qkv'),
      bindWhole(kCache, maxBinding, 'attention kCache'),
      bindWhole(vCache, maxBinding, 'attention vCache'),
      planB!,
    ],
    T * numHeads,
  );
}
