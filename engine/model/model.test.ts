import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../../kernels/reference/backend.ts';
import { blockSpecFromAuthors, vanillaSpecFromHf } from '../config/authors.ts';
import { randomWeights } from './random.ts';
import { buildModel } from './load.ts';
import type { BlockModel } from './block-runner.ts';
import type { VanillaModel } from './vanilla.ts';
import { driveOne } from '../testing/drive-one.ts';

const tinyBlock = (positionMode: 'reference' | 'contiguous') =>
  blockSpecFromAuthors(
    {
      block_length: 4,
      random_pad_first_block: true,
      embedder: { config: { vocab_size: 97, hidden_size: 8 } },
      block_decoder: { config: { num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 4 } },
      token_decoder: { expansion_ratio: 2, config: { num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 4 } },
    },
    { positionMode, name: 'tiny' },
  );

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('block model: step-by-step decoding in contiguous mode reproduces teacher-forced scores', async () => {
  const spec = tinyBlock('contiguous');
  const model = buildModel(new ReferenceBackend(), spec, randomWeights(spec, { seed: 7, std: 0.3 })) as BlockModel;
  const ids = Array.from({ length: 16 }, (_, i) => (i * 37 + 5) % 97);
  const scores = await model.score(ids);
  // Feed block 0 at once, then one token per step; logits after feeding position p predict p+1.
  model.allocateCache(8, 1);
  const kvSlots = [0, 1, 2, 3, 4, 5, 6, 7];
  let out = await model.execute([{ seqId: 'a', tokens: ids.slice(0, 4), position: 0, kvSlots, localSlot: 0, wantLogits: true }]);
  for (let p = 4; p < 16; p++) {
    const row = scores.subarray((p - 4) * 97, (p - 3) * 97);
    assert.ok(maxDiff(out.logits, row) < 1e-4, `position ${p}: ${maxDiff(out.logits, row)}`);
    out = await model.execute([{ seqId: 'a', tokens: [ids[p]!], position: p, kvSlots, localSlot: 0, wantLogits: true }]);
  }
});

test('block model: one batched step equals separate steps, and chunked prefill equals one-shot', async () => {
  const spec = tinyBlock('reference');
  const weights = randomWeights(spec, { seed: 3, std: 0.3 });
  const model = buildModel(new ReferenceBackend(), spec, weights) as BlockModel;
  const a = Array.from({ length: 9 }, (_, i) => (i * 13 + 1) % 97);
  const b = Array.from({ length: 6 }, (_, i) => (i * 29 + 3) % 97);
  const soloA = await driveOne(model, a, { maxNewTokens: 10, stopToken: null });
  const soloB = await driveOne(model, b, { maxNewTokens: 10, stopToken: null, chunkSize: 4 });
  const soloB2 = await driveOne(model, b, { maxNewTokens: 10, stopToken: null });
  assert.deepEqual(soloB.outputIds, soloB2.outputIds);
  // Both sequences in the same steps, with interleaved (non-contiguous) KV slots.
  model.allocateCache(16, 2);
  const slotsA = [0, 2, 4, 6, 8, 10],
    slotsB = [1, 3, 5, 7, 9, 11];
  const padded = (p: number[]) => [...new Array((4 - (p.length % 4)) % 4).fill(0), ...p];
  const seqs = [
    { id: 'a', fed: padded(a), slots: slotsA, out: [] as number[] },
    { id: 'b', fed: padded(b), slots: slotsB, out: [] as number[] },
  ];
  let pos = [0, 0];
  let feeds = seqs.map((s) => s.fed);
  for (let step = 0; step < 10; step++) {
    const res = await model.execute(
      seqs.map((s, i) => ({ seqId: s.id, tokens: feeds[i]!, position: pos[i]!, kvSlots: s.slots, localSlot: i, wantLogits: true })),
    );
    pos = pos.map((p, i) => p + feeds[i]!.length);
    feeds = seqs.map((s, i) => {
      const row = res.logits.subarray(i * 97, (i + 1) * 97);
      let best = 0;
      for (let v = 1; v < 97; v++) if (row[v]! > row[best]!) best = v;
      s.out.push(best);
      return [best];
    });
  }
  assert.deepEqual(seqs[0]!.out, soloA.outputIds);
  assert.deepEqual(seqs[1]!.out, soloB.outputIds);
});

test('block model: feeding inside a block the window never saw is an error, not garbage', async () => {
  const spec = tinyBlock('reference');
  const model = buildModel(new ReferenceBackend(), spec, randomWeights(spec)) as BlockModel;
  model.allocateCache(4, 1);
  await assert.rejects(
    model.execute([{ seqId: 'x', tokens: [5], position: 6, kvSlots: [0, 1], localSlot: 0, wantLogits: true }]),
    /never saw/,
  );
});

test('vanilla model: incremental decoding equals a one-shot forward', async () => {
  const spec = vanillaSpecFromHf(
    { model_type: 'gpt_neox', hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, vocab_size: 50 },
    'v',
  );
  const model = buildModel(new ReferenceBackend(), spec, randomWeights(spec, { seed: 5, std: 0.3 })) as VanillaModel;
  const ids = [3, 14, 15, 9, 26, 5, 35];
  const one = await driveOne(model, ids, { maxNewTokens: 6, stopToken: null });
  const chunked = await driveOne(model, ids, { maxNewTokens: 6, stopToken: null, chunkSize: 2 });
  assert.deepEqual(one.outputIds, chunked.outputIds);
  for (let i = 0; i < one.stepLogits.length; i++) assert.ok(maxDiff(one.stepLogits[i]!, chunked.stepLogits[i]!) < 1e-5);
});

test('teacher-forced scores past one 64-row head chunk equal the last-row logits of a prefill', async () => {
  const spec = vanillaSpecFromHf(
    { model_type: 'gpt_neox', hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, vocab_size: 50 },
    'v',
  );
  const model = buildModel(new ReferenceBackend(), spec, randomWeights(spec, { seed: 9, std: 0.3 })) as VanillaModel;
  const ids = Array.from({ length: 150 }, (_, i) => (i * 17 + 3) % 50);
  const scores = await model.score(ids); // rows 0..149, computed as three head chunks
  // Prefill the first p + 1 tokens (a fresh sequence each time): its logits row must equal score row p.
  model.allocateCache(160);
  const kvSlots = Array.from({ length: 160 }, (_, i) => i);
  for (const p of [0, 63, 64, 65, 127, 128, 149]) {
    const out = await model.execute([
      { seqId: `p${p}`, tokens: ids.slice(0, p + 1), position: 0, kvSlots, localSlot: 0, wantLogits: true },
    ]);
    assert.ok(maxDiff(out.logits, scores.subarray(p * 50, (p + 1) * 50)) < 1e-4, `row ${p}`);
  }
});
