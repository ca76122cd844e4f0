// Issue 2's bad-input list, end to end through model resolution and the CLI: each case gets its
// own clear error that names the problem.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { resolveModel, resolveTokenizer, BUILTIN_TOKENIZER } from '../engine/resolve.ts';
import { blockSpecFromAuthors } from '../engine/config/authors.ts';
import { randomWeights } from '../engine/model/random.ts';
import { writeSafetensors } from '../engine/weights/safetensors.ts';
import { runGenerate } from '../cli/generate.ts';

const tree = {
  block_length: 4,
  max_length: 64,
  embedder: { config: { vocab_size: 64, hidden_size: 8 } },
  block_decoder: { config: { num_hidden_layers: 1, hidden_size: 32, num_attention_heads: 2 } },
  token_decoder: { expansion_ratio: 2, config: { num_hidden_layers: 1, hidden_size: 32, num_attention_heads: 2 } },
};
const spec = blockSpecFromAuthors(tree, { name: 'tiny' });

/** A valid checkpoint dir (config.yaml + model.safetensors) with optional edits to the tensor list. */
function makeCheckpoint(edit?: (t: ReturnType<typeof tensors>) => ReturnType<typeof tensors>): string {
  const dir = mkdtempSync(join(tmpdir(), 'bs-bad-'));
  writeFileSync(join(dir, 'config.yaml'), stringify(tree));
  writeSafetensors(join(dir, 'model.safetensors'), (edit ?? ((x) => x))(tensors()));
  return dir;
}
function tensors() {
  return [...randomWeights(spec).values()];
}

test('a valid checkpoint with its config beside it loads', async () => {
  const r = await resolveModel({ model: makeCheckpoint() });
  assert.equal(r.spec.kind, 'block');
  assert.equal(r.weights.size, randomWeights(spec).size);
});

test('missing model path', async () => {
  await assert.rejects(resolveModel({ model: '/nonexistent/model-dir' }), /model path not found: \/nonexistent\/model-dir/);
});

test('missing config beside the weights', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bs-bad-'));
  writeSafetensors(join(dir, 'model.safetensors'), tensors());
  await assert.rejects(resolveModel({ model: dir }), /no config for .*config\.yaml/);
});

test('truncated safetensors file', async () => {
  const dir = makeCheckpoint();
  const file = join(dir, 'model.safetensors');
  truncateSync(file, Math.floor(readFileSync(file).length / 2));
  await assert.rejects(
    resolveModel({ model: dir }),
    (e: Error) => e.message.includes('model.safetensors') && /truncat|beyond|exceeds|end of file|shorter/i.test(e.message),
  );
});

test('corrupt safetensors header', async () => {
  const dir = makeCheckpoint();
  const file = join(dir, 'model.safetensors');
  const buf = readFileSync(file);
  buf.write('{{{{', 8, 'latin1'); // break the JSON header
  writeFileSync(file, buf);
  await assert.rejects(
    resolveModel({ model: dir }),
    (e: Error) => e.message.includes('model.safetensors') && /header|JSON/i.test(e.message),
  );
});

test('unsupported dtype in the file', async () => {
  const dir = makeCheckpoint();
  const file = join(dir, 'model.safetensors');
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = buf
    .subarray(8, 8 + len)
    .toString('utf8')
    .replace('"F32"', '"I32"');
  const patched = Buffer.concat([buf.subarray(0, 8), Buffer.from(header.padEnd(len, ' ')), buf.subarray(8 + len)]);
  writeFileSync(file, patched);
  await assert.rejects(resolveModel({ model: dir }), /I32/);
});

test('a tensor of the wrong shape, a missing and an unexpected one are all listed in one error', async () => {
  const dir = makeCheckpoint((ts) => {
    const out = ts.filter((t) => t.name !== 'token_decoder.embed_out.weight');
    const qkv = out.find((t) => t.name === 'block_decoder.gpt_neox.layers.0.attention.query_key_value.weight')!;
    qkv.shape = [qkv.shape[1]!, qkv.shape[0]!];
    out.push({ name: 'extra.weight', dtype: 'f32', shape: [2], data: new Float32Array(2) });
    return out;
  });
  await assert.rejects(
    resolveModel({ model: dir }),
    (e: Error) =>
      /missing: token_decoder\.embed_out\.weight/.test(e.message) &&
      /wrong shape: block_decoder\.gpt_neox\.layers\.0\.attention\.query_key_value\.weight/.test(e.message) &&
      /unexpected: extra\.weight/.test(e.message),
  );
});

test('the unused block_decoder.gpt_neox.embed_in is accepted and not loaded', async () => {
  const dir = makeCheckpoint((ts) => [
    ...ts,
    { name: 'block_decoder.gpt_neox.embed_in.weight', dtype: 'f32', shape: [64, 32], data: new Float32Array(64 * 32) },
  ]);
  const r = await resolveModel({ model: dir });
  assert.equal(r.weights.has('block_decoder.gpt_neox.embed_in.weight'), false);
});

test('a preset that does not match the file', async () => {
  const dir = makeCheckpoint();
  await assert.rejects(
    resolveModel({ model: join(dir, 'model.safetensors'), preset: 'block_main_b4_5' }),
    /does not match preset 'block_main_b4_5'.*wrong shape: embedder\.embeddings\.weight/s,
  );
});

test('an unknown preset names the known ones', async () => {
  await assert.rejects(
    resolveModel({ preset: 'block_main_b4_7' }),
    /unknown preset 'block_main_b4_7'; known presets: .*block_main_b4_85.*vanilla_160/,
  );
});

test('a config with an inconsistent embedder width', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bs-bad-'));
  writeFileSync(join(dir, 'c.yaml'), stringify({ ...tree, embedder: { config: { vocab_size: 64, hidden_size: 10 } } }));
  await assert.rejects(
    resolveModel({ config: join(dir, 'c.yaml') }),
    /embedder\.config\.hidden_size 10 x block_length 4 must equal block_decoder hidden_size 32/,
  );
});

test('a tokenizer whose vocabulary does not fit the model', async () => {
  await assert.rejects(resolveTokenizer(BUILTIN_TOKENIZER, spec), /vocab|vocabulary/i);
});

test('a prompt longer than the model context', async () => {
  const dir = makeCheckpoint();
  const ids = Array.from({ length: 70 }, (_, i) => i % 60).join(',');
  // The tiny model's vocabulary (64) is smaller than the GPT-NeoX tokenizer's, so give one that fits.
  const tokDir = mkdtempSync(join(tmpdir(), 'bs-tok-'));
  writeFileSync(join(tokDir, 'tokenizer.json'), JSON.stringify(tinyTokenizer()));
  await assert.rejects(
    runGenerate(['--model', dir, '--tokenizer', join(tokDir, 'tokenizer.json'), '--prompt-ids', ids, '--max-tokens', '4']),
    /--prompt-ids: This model's maximum context length is 64 tokens, but the prompt has 70 tokens/,
  );
});

/** A byte-level BPE tokenizer.json with 64 entries (no merges): small enough for the tiny model. */
function tinyTokenizer() {
  const vocab: Record<string, number> = { '<|endoftext|>': 0, '<|padding|>': 1 };
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789Ġ.';
  for (let i = 0; i < 62; i++) vocab[chars[i]!] = i + 2;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
}
