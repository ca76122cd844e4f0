// Bad input for the tokenizer, and proof that loading needs no network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkTokenizerFitsModel, loadTokenizer, TokenizerError } from './tokenizer.ts';

const builtinDir = fileURLToPath(new URL('./gpt-neox-20b/', import.meta.url));
const builtin = join(builtinDir, 'tokenizer.json');
const dir = mkdtempSync(join(tmpdir(), 'blockserve-tok-'));
const json = JSON.parse(readFileSync(builtin, 'utf8'));

async function rejectsWith(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TokenizerError, `expected a TokenizerError, got ${String(e)}`);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

test('loads from the file or from its directory, without touching the network', async () => {
  const realFetch = globalThis.fetch;
  globalThis.fetch = () => {
    throw new Error('network used');
  };
  try {
    for (const p of [builtin, builtinDir]) {
      const tok = await loadTokenizer(p);
      assert.equal(tok.path, builtin);
      assert.deepEqual(tok.encode('Hello world'), [12092, 1533]);
    }
  } finally {
    globalThis.fetch = realFetch;
  }
});

test('bad input: tokenizer file missing', async () => {
  const missing = join(dir, 'nope', 'tokenizer.json');
  await rejectsWith(loadTokenizer(missing), /tokenizer file not found/, new RegExp(missing.replace(/[.]/g, '\\.')));
  const emptyDir = join(dir, 'empty');
  mkdirSync(emptyDir);
  await rejectsWith(loadTokenizer(emptyDir), /tokenizer file not found: no tokenizer\.json in .*empty/);
});

test('bad input: not a tokenizer.json, or not a byte-level one', async () => {
  const garbage = join(dir, 'garbage.json');
  writeFileSync(garbage, '{"model": ');
  await rejectsWith(loadTokenizer(garbage), /garbage\.json: not a tokenizer\.json/);
  const metaspace = join(dir, 'metaspace.json');
  writeFileSync(metaspace, JSON.stringify({ ...json, decoder: { type: 'Metaspace', replacement: '▁' } }));
  await rejectsWith(loadTokenizer(metaspace), /decoder is Metaspace, expected ByteLevel/);
  const noEos = join(dir, 'no-eos.json');
  writeFileSync(
    noEos,
    JSON.stringify({
      ...json,
      added_tokens: json.added_tokens.slice(1),
      model: { ...json.model, vocab: Object.fromEntries(Object.entries(json.model.vocab).filter(([k]) => k !== '<|endoftext|>')) },
    }),
  );
  await rejectsWith(loadTokenizer(noEos), /no <\|endoftext\|> token/);
});

test('bad input: a tokenizer whose vocabulary is larger than the model', async () => {
  const tok = await loadTokenizer(builtin);
  // Pythia pads 50277 tokens to 50304 embedding rows: fine. Equal: fine.
  assert.doesNotThrow(() => checkTokenizerFitsModel(tok, 50304));
  assert.doesNotThrow(() => checkTokenizerFitsModel(tok, 50277));
  assert.throws(
    () => checkTokenizerFitsModel(tok, 50276),
    (e: unknown) =>
      e instanceof TokenizerError &&
      /does not fit the model/.test(e.message) &&
      /50277 tokens/.test(e.message) &&
      /50276 rows/.test(e.message),
  );
  // A tokenizer with extra added tokens (ChatML markers, as some GPT-NeoX derivatives ship) is bigger.
  const bigger = join(dir, 'bigger.json');
  const extra = ['<|im_start|>', '<|im_end|>'].map((content, i) => ({
    id: 50277 + i,
    special: true,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
  }));
  writeFileSync(bigger, JSON.stringify({ ...json, added_tokens: [...json.added_tokens, ...extra] }));
  const big = await loadTokenizer(bigger);
  assert.equal(big.vocabSize, 50279);
  assert.deepEqual(big.encode('<|im_end|>'), [50278]);
  assert.throws(
    () => checkTokenizerFitsModel(big, 50277),
    /bigger\.json does not fit the model: its vocabulary has 50279 tokens \(ids up to 50278\)/,
  );
});
