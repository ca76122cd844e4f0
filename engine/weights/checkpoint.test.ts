import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTensors, isHfNeoxBuffer, loadCheckpoint, resolveCheckpoint } from './checkpoint.ts';
import { WeightsError, writeSafetensors, type TensorView } from './safetensors.ts';

const root = mkdtempSync(join(tmpdir(), 'blockserve-ckpt-'));
const t = (name: string, shape: number[], fill = 1): TensorView => ({
  name,
  dtype: 'f32',
  shape,
  data: new Float32Array(shape.reduce((a, s) => a * s, 1)).fill(fill),
});

function errorOf(fn: () => unknown): WeightsError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof WeightsError, `expected a WeightsError, got ${String(e)}`);
    return e;
  }
  assert.fail('no error thrown');
}

/** A sharded checkpoint: two shards and an index. */
function sharded(name: string, indexMap?: Record<string, string>): string {
  const d = join(root, name);
  mkdirSync(d);
  writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), [t('a', [2], 1), t('b', [3], 2)]);
  writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), [t('c', [4], 3), t('unused', [100], 4)]);
  const map = indexMap ?? {
    a: 'model-00001-of-00002.safetensors',
    b: 'model-00001-of-00002.safetensors',
    c: 'model-00002-of-00002.safetensors',
    unused: 'model-00002-of-00002.safetensors',
  };
  writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 436 }, weight_map: map }));
  return d;
}

test('a file, or a directory holding model.safetensors', () => {
  const d = join(root, 'single');
  mkdirSync(d);
  writeSafetensors(join(d, 'model.safetensors'), [t('w', [2, 2], 5)]);
  for (const p of [d, join(d, 'model.safetensors')]) {
    const m = loadCheckpoint(p);
    assert.deepEqual([...m.keys()], ['w']);
    assert.deepEqual([...m.get('w')!.data], [5, 5, 5, 5]);
  }
});

test('a sharded checkpoint loads every shard; skipped tensors are not read; progress spans shards', () => {
  const d = sharded('sharded');
  const progress: number[][] = [];
  const m = loadCheckpoint(d, { skip: (n) => n === 'unused', onProgress: (done, total) => progress.push([done, total]) });
  assert.deepEqual([...m.keys()].sort(), ['a', 'b', 'c']);
  assert.deepEqual([...m.get('c')!.data], [3, 3, 3, 3]);
  assert.deepEqual(progress, [
    [8, 36],
    [20, 36],
    [36, 36],
  ]);
  assert.equal(resolveCheckpoint(d).shards.length, 2);
  // The index file itself may be given.
  assert.equal(loadCheckpoint(join(d, 'model.safetensors.index.json')).size, 4);
});

test('index and shards that disagree are one error listing each disagreement', () => {
  const d = sharded('disagree', {
    a: 'model-00002-of-00002.safetensors', // wrong shard
    c: 'model-00002-of-00002.safetensors',
    unused: 'model-00002-of-00002.safetensors',
    ghost: 'model-00001-of-00002.safetensors', // in no shard
  }); // b: not listed
  const e = errorOf(() => loadCheckpoint(d));
  assert.match(e.message, /model\.safetensors\.index\.json: index and shards disagree/);
  assert.match(e.message, /"a" is in .*model-00001-of-00002\.safetensors but the index says .*model-00002/);
  assert.match(e.message, /"b" is in .* but the index does not list it/);
  assert.match(e.message, /"ghost" is listed for .* but not in it/);
});

test('bad input: missing checkpoint, empty directory, missing shard', () => {
  const missing = join(root, 'absent');
  assert.match(errorOf(() => loadCheckpoint(missing)).message, new RegExp(`${missing}: file not found`));
  const empty = join(root, 'empty');
  mkdirSync(empty);
  assert.match(errorOf(() => loadCheckpoint(empty)).message, /no model\.safetensors or model\.safetensors\.index\.json/);
  const d = sharded('lost-shard', { a: 'model-00003-of-00003.safetensors' });
  assert.match(errorOf(() => loadCheckpoint(d)).message, /shard file\(s\) not found: .*model-00003-of-00003/);
});

test('checkTensors lists every missing, mis-shaped and unexpected tensor in one error', () => {
  const found = new Map(
    [t('ok', [2, 3]), t('transposed', [3, 2]), t('extra', [7]), t('rotary.inv_freq', [4]), t('rank', [6])].map((x) => [x.name, x]),
  );
  const expected = [
    { name: 'ok', shape: [2, 3] },
    { name: 'transposed', shape: [2, 3] },
    { name: 'rank', shape: [6, 1] },
    { name: 'gone.one', shape: [5] },
    { name: 'gone.two', shape: [1, 2] },
  ];
  const e = errorOf(() => checkTensors(found, expected, { ignore: (n) => n.endsWith('inv_freq'), source: '/ckpt/model.safetensors' }));
  assert.match(
    e.message,
    /^\/ckpt\/model\.safetensors: does not match the model \(2 missing, 2 of the wrong shape, 1 unexpected tensors\)/,
  );
  assert.match(e.message, /missing: gone\.one \[5\]/);
  assert.match(e.message, /missing: gone\.two \[1, 2\]/);
  assert.match(e.message, /wrong shape: transposed is \[3, 2\] in the file, the model expects \[2, 3\]/);
  assert.match(e.message, /wrong shape: rank is \[6\] in the file, the model expects \[6, 1\]/);
  assert.match(e.message, /unexpected: extra \[7\]/);
  assert.doesNotMatch(e.message, /inv_freq|\bok\b/);
  // And a perfect match passes.
  assert.doesNotThrow(() => checkTensors(new Map([['ok', found.get('ok')!]]), [{ name: 'ok', shape: [2, 3] }]));
});

test('bad input: a directory of PyTorch pickles says to convert them', () => {
  const d = join(root, 'pickles');
  mkdirSync(d);
  writeFileSync(join(d, 'pytorch_model.bin'), 'not read');
  assert.match(errorOf(() => loadCheckpoint(d)).message, /only PyTorch pickle weights here \(pytorch_model\.bin\).*convert/);
});

test('HF GPT-NeoX buffers are recognised, parameters are not', () => {
  for (const n of [
    'gpt_neox.layers.0.attention.bias',
    'gpt_neox.layers.11.attention.masked_bias',
    'gpt_neox.layers.3.attention.rotary_emb.inv_freq',
  ]) {
    assert.ok(isHfNeoxBuffer(n), n);
  }
  for (const n of [
    'gpt_neox.layers.0.attention.query_key_value.bias',
    'gpt_neox.layers.0.attention.dense.bias',
    'token_decoder.expansion_layer.bias',
  ]) {
    assert.ok(!isHfNeoxBuffer(n), n);
  }
});
