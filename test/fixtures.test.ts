// The parity fixtures (tools/reference/make_fixtures.py) are self-consistent: schema, .f32 sizes that
// match the declared shapes, greedy outputs that are the argmax of their recorded step logits, and
// checkpoints whose tensors are the ones the config describes. Catches a broken regeneration before
// the parity tests report confusing numbers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

const root = join(import.meta.dirname, 'fixtures');
const EOS = 0;

interface ScoreCase {
  input_ids: number[];
  logits: string;
  shape: number[];
}
interface GenCase {
  position_mode: string;
  pad_first_block: boolean;
  prompt_ids: number[];
  max_new_tokens: number;
  output_ids: number[];
  step_logits: string;
  step_logits_shape: number[];
}
interface Expected {
  kind: string;
  vocab_size: number;
  reference: string;
  score: ScoreCase[];
  generate: GenCase[];
}
interface TensorInfo {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function readExpected(dir: string): Expected {
  const e = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;
  assert.deepEqual(Object.keys(e).sort(), ['generate', 'kind', 'reference', 'score', 'vocab_size']);
  assert.match(e.reference, /^transformers \d+\.\d+\.\d+, torch \d+\.\d+/);
  return e;
}

function readF32(dir: string, file: string, shape: number[]): Float32Array {
  const path = join(dir, file);
  assert.ok(existsSync(path), `${path} missing`);
  assert.equal(statSync(path).size, shape.reduce((a, b) => a * b, 1) * 4, `${file}: size does not match ${shape}`);
  const buf = readFileSync(path);
  const out = new Float32Array(buf.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  for (const v of out) assert.ok(Number.isFinite(v), `${file}: non-finite logit`);
  return out;
}

function argmaxRow(data: Float32Array, row: number, width: number): number {
  let best = 0;
  for (let j = 1; j < width; j++) if (data[row * width + j]! > data[row * width + best]!) best = j;
  return best;
}

function safetensorsHeader(path: string): Record<string, TensorInfo> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, TensorInfo>;
  delete header.__metadata__;
  const bytes: Record<string, number> = { F32: 4, BF16: 2, F16: 2 };
  for (const [name, t] of Object.entries(header)) {
    const size = t.shape.reduce((a, b) => a * b, 1) * bytes[t.dtype]!;
    assert.equal(t.data_offsets[1] - t.data_offsets[0], size, `${name}: byte range does not match shape`);
    assert.ok(8 + n + t.data_offsets[1] <= buf.byteLength, `${name}: past end of file`);
  }
  return header;
}

function checkCommon(dir: string, e: Expected, scoreRows: (t: number) => number): void {
  assert.equal(e.vocab_size, 512);
  assert.ok(e.score.length >= 1 && e.generate.length >= 1);
  for (const s of e.score) {
    assert.deepEqual(s.shape, [scoreRows(s.input_ids.length), e.vocab_size]);
    for (const id of s.input_ids) assert.ok(Number.isInteger(id) && id >= 0 && id < e.vocab_size);
    readF32(dir, s.logits, s.shape);
  }
  for (const g of e.generate) {
    assert.ok(['reference', 'contiguous'].includes(g.position_mode));
    assert.equal(typeof g.pad_first_block, 'boolean');
    assert.ok(g.prompt_ids.length >= 1);
    assert.deepEqual(g.step_logits_shape, [g.output_ids.length, e.vocab_size]);
    // a run is either the full max_new_tokens, or it ends at its first (and only) EOS
    const eos = g.output_ids.indexOf(EOS);
    if (eos === -1) assert.equal(g.output_ids.length, g.max_new_tokens);
    else assert.equal(eos, g.output_ids.length - 1, 'tokens recorded after EOS');
    const logits = readF32(dir, g.step_logits, g.step_logits_shape);
    g.output_ids.forEach((id, i) => {
      assert.equal(argmaxRow(logits, i, e.vocab_size), id, `${g.step_logits} row ${i}`);
    });
  }
}

for (const name of ['block_tiny', 'block_tiny_bf16']) {
  test(`fixture ${name}: block checkpoint, config and expected values agree`, () => {
    const dir = join(root, name);
    const cfg = parseYaml(readFileSync(join(dir, 'config.yaml'), 'utf8'));
    const L: number = cfg.block_length;
    const d: number = cfg.block_decoder.config.hidden_size;
    const R: number = cfg.token_decoder.expansion_ratio;
    assert.equal(cfg.embedder.config.hidden_size * L, d, 'concat embedder width * L must equal d');
    const e = readExpected(dir);
    assert.equal(e.kind, 'block');
    assert.equal(cfg.embedder.config.vocab_size, e.vocab_size);

    const header = safetensorsHeader(join(dir, 'model.safetensors'));
    const dtype = name.endsWith('bf16') ? 'BF16' : 'F32';
    for (const t of Object.values(header)) assert.equal(t.dtype, dtype);
    assert.deepEqual(header['embedder.embeddings.weight']!.shape, [e.vocab_size, d / L]);
    assert.deepEqual(header['block_decoder.gpt_neox.embed_in.weight']!.shape, [e.vocab_size, d]);
    assert.deepEqual(header['token_decoder.expansion_layer.weight']!.shape, [R * d, d, 1]);
    assert.deepEqual(header['token_decoder.embed_out.weight']!.shape, [e.vocab_size, d]);
    const perLayer = 12;
    const layers = cfg.block_decoder.config.num_hidden_layers + cfg.token_decoder.config.num_hidden_layers;
    // embedder + 2 embed_in + embed_out + expansion (2) + 2 final LN (2 each) + 12 per layer
    assert.equal(Object.keys(header).length, 1 + 2 + 1 + 2 + 4 + perLayer * layers);

    checkCommon(dir, e, (t) => {
      assert.equal(t % L, 0, 'block score inputs are whole blocks');
      return t - L;
    });
    const modes = new Set(e.generate.map((g) => `${g.position_mode}/${g.pad_first_block}`));
    assert.ok(modes.has('reference/true') && modes.has('contiguous/true'), 'both position modes recorded');
    for (const g of e.generate) {
      if (!g.pad_first_block) assert.equal(g.prompt_ids.length % L, 0, 'unpadded prompts are whole blocks');
    }
  });
}

test('fixture vanilla_tiny and its sharded copy: same tensors, same numbers', () => {
  const dir = join(root, 'vanilla_tiny');
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'gpt_neox');
  const e = readExpected(dir);
  assert.equal(e.kind, 'vanilla');
  assert.equal(cfg.vocab_size, e.vocab_size);
  checkCommon(dir, e, (t) => t);
  const whole = safetensorsHeader(join(dir, 'model.safetensors'));

  const sdir = join(root, 'vanilla_tiny_sharded');
  const index = JSON.parse(readFileSync(join(sdir, 'model.safetensors.index.json'), 'utf8'));
  const shardFiles = [...new Set(Object.values(index.weight_map as Record<string, string>))];
  assert.ok(shardFiles.length >= 2, 'really sharded');
  const sharded: Record<string, TensorInfo> = {};
  for (const f of shardFiles) {
    for (const [k, v] of Object.entries(safetensorsHeader(join(sdir, f)))) {
      assert.equal(index.weight_map[k], f, `${k} indexed to the wrong shard`);
      sharded[k] = v;
    }
  }
  assert.deepEqual(Object.keys(sharded).sort(), Object.keys(whole).sort());
  for (const k of Object.keys(whole)) assert.deepEqual(sharded[k]!.shape, whole[k]!.shape);

  const se = readExpected(sdir);
  checkCommon(sdir, se, (t) => t);
  for (const s of se.score) {
    const twin = e.score.find((x) => JSON.stringify(x.input_ids) === JSON.stringify(s.input_ids));
    assert.ok(twin, 'sharded score case copied from vanilla_tiny');
    assert.deepEqual(readF32(sdir, s.logits, s.shape), readF32(dir, twin.logits, twin.shape));
  }
  for (const g of se.generate) {
    const twin = e.generate.find((x) => JSON.stringify(x.prompt_ids) === JSON.stringify(g.prompt_ids));
    assert.ok(twin, 'sharded generate case copied from vanilla_tiny');
    assert.deepEqual(g.output_ids, twin.output_ids);
  }
});
