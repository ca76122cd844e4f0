import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Agent } from 'undici';
import { countTokens, createFakeServer, listen } from './testing/fake-server.ts';
import { buildWorkItems, loadDataset, parseLengthSpec, Tokenizer } from './workload.ts';
import { Rng } from './rng.ts';

let server: http.Server;
let noTokServer: http.Server;
let url: string;
let noTokUrl: string;
const agent = new Agent();

before(async () => {
  server = createFakeServer({ ttftMs: 1, itlMs: 1 });
  url = await listen(server);
  noTokServer = createFakeServer({ ttftMs: 1, itlMs: 1, tokenize: false });
  noTokUrl = await listen(noTokServer);
});
after(async () => {
  await agent.close();
  for (const s of [server, noTokServer]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

test('random prompts are exact in the server tokens (its tokenizer is not one token per word)', async () => {
  const tok = await Tokenizer.probe(url, 'fake-model', agent, {});
  assert.ok(tok, '/tokenize found');
  const spec = { kind: 'random' as const, inputLen: parseLengthSpec('uniform:5:200'), outputLen: parseLengthSpec('normal:50:10') };
  const items = await buildWorkItems(spec, 40, 11, tok, false);
  let wordsDifferFromTokens = 0;
  for (const it of items) {
    assert.equal(countTokens(it.prompt!), it.targetPromptTokens, `prompt of ${it.targetPromptTokens} tokens`);
    assert.ok(it.targetPromptTokens! >= 5 && it.targetPromptTokens! <= 200);
    assert.ok(it.maxTokens >= 1);
    if (it.prompt!.split(' ').length !== it.targetPromptTokens) wordsDifferFromTokens++;
  }
  assert.ok(wordsDifferFromTokens > 20, 'the correction was really needed');
  const again = await buildWorkItems(spec, 40, 11, tok, false);
  assert.deepEqual(again, items, 'same seed, same workload');
  assert.notDeepEqual(await buildWorkItems(spec, 40, 12, tok, false), items);
});

test('shared-prefix workload: every prompt starts with one of G prefixes and has prefix + input tokens', async () => {
  const tok = await Tokenizer.probe(url, 'fake-model', agent, {});
  const spec = {
    kind: 'random' as const,
    inputLen: parseLengthSpec('16'),
    outputLen: parseLengthSpec('8'),
    sharedPrefixTokens: 100,
    prefixGroups: 2,
  };
  const items = await buildWorkItems(spec, 10, 5, tok, false);
  const prefixes = new Set(items.map((it) => it.prompt!.split(' ').slice(0, 30).join(' ')));
  assert.equal(prefixes.size, 2);
  for (const it of items) assert.equal(countTokens(it.prompt!), 116);
  assert.equal(new Set(items.map((it) => it.prompt)).size, 10, 'suffixes differ');
});

test('without /tokenize the probe says so and prompts fall back to one short word per token', async () => {
  assert.equal(await Tokenizer.probe(noTokUrl, 'fake-model', agent, {}), null);
  const items = await buildWorkItems(
    { kind: 'random', inputLen: parseLengthSpec('64'), outputLen: parseLengthSpec('4') },
    5,
    1,
    null,
    false,
  );
  for (const it of items) assert.equal(it.prompt!.split(' ').length, 64);
});

test('JSONL dataset: prompts, texts, chats, per-line max_tokens; messages need the chat endpoint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lt-ds-'));
  const path = join(dir, 'd.jsonl');
  writeFileSync(
    path,
    [
      '{"prompt": "hello", "max_tokens": 7}',
      '',
      '{"text": "plain"}',
      '{"messages": [{"role": "user", "content": "hi"}], "output_len": 3}',
    ].join('\n'),
  );
  const items = loadDataset({ kind: 'dataset', path, outputLen: parseLengthSpec('5') }, 4, new Rng(0), true);
  assert.deepEqual(
    items.map((i) => i.maxTokens),
    [7, 5, 3, 7],
  );
  assert.equal(items[1].prompt, 'plain');
  assert.deepEqual(items[2].messages, [{ role: 'user', content: 'hi' }]);
  assert.equal(items[3].prompt, 'hello', 'cycled');
  assert.throws(() => loadDataset({ kind: 'dataset', path, outputLen: parseLengthSpec('5') }, 1, new Rng(0), false), /use --endpoint chat/);
  writeFileSync(path, '{"prompt": 1}\n');
  assert.throws(() => loadDataset({ kind: 'dataset', path, outputLen: parseLengthSpec('5') }, 1, new Rng(0), true), /:1: needs "prompt"/);
});
