// The TS tokenizer against golden values from HF `tokenizers` (tools/reference/tokenizer_golden.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IncrementalDetokenizer, loadTokenizer, type Tokenizer } from './tokenizer.ts';

const tokenizerPath = fileURLToPath(new URL('./gpt-neox-20b/tokenizer.json', import.meta.url));
const golden = JSON.parse(readFileSync(fileURLToPath(new URL('../../test/fixtures/tokenizer/golden.json', import.meta.url)), 'utf8')) as {
  tokenizer_sha256: string;
  vocab_size: number;
  encode: { text: string; ids: number[]; decoded: string }[];
  decode: { name: string; ids: number[]; text: string; text_skip_special: string }[];
};
const tok: Tokenizer = await loadTokenizer(tokenizerPath);
const label = (s: string) => JSON.stringify(s.length > 40 ? s.slice(0, 40) + '…' : s);

test('the golden values were made from this very tokenizer.json', () => {
  assert.equal(createHash('sha256').update(readFileSync(tokenizerPath)).digest('hex'), golden.tokenizer_sha256);
  assert.ok(golden.encode.length >= 40 && golden.decode.length >= 20);
});

test('vocabulary size and special ids', () => {
  assert.equal(tok.vocabSize, golden.vocab_size);
  assert.equal(tok.vocabSize, 50277);
  assert.equal(tok.eosTokenId, 0);
  assert.equal(tok.padTokenId, 1);
  assert.equal(tok.tokenText(0), '<|endoftext|>');
  assert.ok(tok.isSpecial(0) && tok.isSpecial(1) && !tok.isSpecial(50276) && !tok.isSpecial(12092));
});

test('encode equals HF tokenizers on every golden text', () => {
  for (const c of golden.encode) assert.deepEqual(tok.encode(c.text), c.ids, `encode ${label(c.text)}`);
});

test('decode equals HF tokenizers on every golden id list, with and without special tokens', () => {
  for (const c of golden.encode) assert.equal(tok.decode(c.ids), c.decoded, `decode of ${label(c.text)}`);
  for (const c of golden.decode) {
    assert.equal(tok.decode(c.ids), c.text, c.name);
    assert.equal(tok.decode(c.ids, { skipSpecialTokens: true }), c.text_skip_special, `${c.name} (skipping special tokens)`);
  }
});

const allIdLists = () => [
  ...golden.encode.map((c) => ({
    name: label(c.text),
    ids: c.ids,
    text: c.decoded,
    textSkip: c.decoded.replace(/<\|endoftext\|>|<\|padding\|>/g, ''),
  })),
  ...golden.decode.map((c) => ({ name: c.name, ids: c.ids, text: c.text, textSkip: c.text_skip_special })),
];

test('streaming decode token by token equals the full decode and never splits a character', () => {
  for (const skipSpecialTokens of [false, true]) {
    for (const c of allIdLists()) {
      const expected = skipSpecialTokens ? c.textSkip : c.text;
      const detok = new IncrementalDetokenizer(tok, { skipSpecialTokens });
      const chunks = c.ids.map((id) => detok.push([id]));
      chunks.push(detok.flush());
      assert.equal(chunks.join(''), expected, `${c.name} (skipSpecialTokens=${skipSpecialTokens})`);
      if (!expected.includes('\ufffd')) {
        for (const ch of chunks) assert.ok(!ch.includes('\ufffd'), `${c.name}: a chunk holds U+FFFD: ${JSON.stringify(ch)}`);
      }
      // No chunk may start with a lone low surrogate or end with a lone high one (half a code point).
      for (const ch of chunks) assert.ok(!/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(ch), `${c.name}: split surrogate pair`);
    }
  }
});

test('streaming holds back a split character and releases it when complete', () => {
  const euro = golden.decode.find((c) => c.name === 'euro sign byte by byte')!;
  const detok = new IncrementalDetokenizer(tok);
  assert.deepEqual(
    euro.ids.map((id) => detok.push([id])),
    ['', '', '€'],
  );
  assert.equal(detok.flush(), '');
  // An incomplete tail at the end of the stream becomes U+FFFD on flush, as decode() does.
  const cut = golden.decode.find((c) => c.name === 'first half of an emoji')!;
  const d2 = new IncrementalDetokenizer(tok);
  const out = d2.push(cut.ids);
  assert.ok(!out.includes('\ufffd'));
  assert.equal(out + d2.flush(), cut.text);
  assert.ok(cut.text.endsWith('\ufffd'));
});

test('streaming in uneven batches equals the full decode', () => {
  for (const c of allIdLists()) {
    const detok = new IncrementalDetokenizer(tok);
    let out = '';
    for (let i = 0, step = 1; i < c.ids.length; i += step, step = (step % 4) + 1) out += detok.push(c.ids.slice(i, i + step));
    assert.equal(out + detok.flush(), c.text, c.name);
  }
});

test('token bytes concatenate to the decoded text (the byte table is right for every id in use)', () => {
  for (const c of allIdLists()) {
    const bytes = Buffer.concat(c.ids.map((id) => tok.tokenBytes(id)));
    assert.equal(new TextDecoder().decode(bytes), c.text, c.name);
  }
  assert.deepEqual([...tok.tokenBytes(50276)], [0x20, 0x20], 'space-run added token is plain spaces');
  assert.equal(tok.tokenBytes(50300).length, 0, 'padded vocab rows decode to nothing');
});

test('tokenText shows one token as decode([id]) does', () => {
  const hello = tok.encode('Hello world');
  assert.deepEqual(
    hello.map((id) => tok.tokenText(id)),
    ['Hello', ' world'],
  );
  for (const c of golden.decode.filter((d) => d.ids.length === 1)) assert.equal(tok.tokenText(c.ids[0]!), c.text, c.name);
  assert.equal(tok.tokenText(50300), '');
});

test('round trip: decode(encode(s)) is the NFC form of s', () => {
  for (const c of golden.encode) assert.equal(tok.decode(tok.encode(c.text)), c.text.normalize('NFC'), label(c.text));
});

test('lone surrogates (possible in JSON strings, impossible in UTF-8) encode as U+FFFD', () => {
  assert.deepEqual(tok.encode('a\ud800b\udc00c'), tok.encode('a\ufffdb\ufffdc'));
  assert.equal(tok.decode(tok.encode('a\ud800b')), 'a\ufffdb');
});
