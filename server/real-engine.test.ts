// Integration: the server around the real engine (engine/create.ts, the built-in demo model on the
// reference backend, in its worker thread), driven by the openai SDK. The fake engine proves the HTTP
// layer; this proves the two halves agree on the Engine interface: token counts, finish reasons,
// token ids, the tokenizer and template behind /tokenize, abort on disconnect, and metrics.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine/api.ts';
import { buildApp } from './app.ts';
import { defaultConfig } from './config.ts';
import { waitFor } from './testing/wait.ts';

describe('server + real engine (demo model, reference backend)', () => {
  let engine: Engine;
  let app: FastifyInstance;
  let client: OpenAI;
  let base: string;
  before(async () => {
    const config = defaultConfig({ port: 0, engine: { backend: 'reference', kvCacheMb: 64, maxNumSeqs: 8, maxQueue: 8 } });
    const { createEngine } = await import(new URL('../engine/create.ts', import.meta.url).href);
    engine = await createEngine(config.engine);
    const built = await buildApp(config);
    built.state.engine = engine;
    app = built.app;
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', maxRetries: 0 });
  });
  after(async () => {
    await app?.close();
    await engine?.close();
  });

  test('models.list shows the demo flag', async () => {
    const models = await client.models.list();
    assert.equal(models.data.length, 1);
    assert.equal((models.data[0] as unknown as { demo: boolean }).demo, true);
  });

  test('completion: max_tokens honoured, token ids and usage agree, greedy is repeatable', async () => {
    const params = {
      model: engine.info.modelName,
      prompt: 'The quick brown fox',
      max_tokens: 6,
      temperature: 0,
      ignore_eos: true,
      return_token_ids: true,
    };
    const a = await client.completions.create(params);
    const b = await client.completions.create(params);
    const choice = a.choices[0] as (typeof a.choices)[0] & { token_ids: number[]; prompt_token_ids: number[] };
    assert.equal(choice.finish_reason, 'length');
    assert.equal(a.usage?.completion_tokens, 6);
    assert.equal(choice.token_ids.length, 6);
    const tok = await (
      await fetch(`${base}/tokenize`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'The quick brown fox' }),
      })
    ).json();
    assert.deepEqual(choice.prompt_token_ids, tok.tokens);
    assert.equal(a.usage?.prompt_tokens, tok.count);
    assert.equal(choice.text, b.choices[0].text, 'temperature 0 gives the same text twice');
  });

  test('echo + logprobs (what evaluation harnesses send): every prompt token scored, the unpredictable ones null', async () => {
    const prompt = 'The quick brown fox jumps';
    const res = await client.completions.create({
      model: engine.info.modelName,
      prompt,
      max_tokens: 1,
      temperature: 0,
      echo: true,
      logprobs: 2,
    });
    const lp = res.choices[0]!.logprobs!;
    const promptTokens = res.usage!.prompt_tokens;
    assert.equal(lp.tokens!.length, promptTokens + 1);
    assert.ok(res.choices[0]!.text.startsWith(prompt));
    // The first token always lacks a logprob; a block model cannot predict any token of its first block
    // of 4 (how many prompt tokens that holds depends on first-block padding).
    const values = lp.token_logprobs!;
    const unpredictable = values.findIndex((v) => v !== null);
    assert.ok(
      engine.info.kind === 'block' ? unpredictable >= 1 && unpredictable <= 4 : unpredictable === 1,
      `${unpredictable} leading nulls`,
    );
    values.forEach((v, i) => {
      if (i < unpredictable) assert.equal(v, null, `token ${i}`);
      else assert.ok(typeof v === 'number' && v <= 0, `token ${i}: ${v}`);
    });
    lp.top_logprobs!.forEach((t, i) => {
      assert.equal(t === null, i < unpredictable, `top_logprobs[${i}]`);
    });
  });

  test('chat stream: role first, finish chunk, usage matches /tokenize of the templated prompt', async () => {
    const messages = [{ role: 'user' as const, content: 'Hello' }];
    const stream = await client.chat.completions.create({
      model: engine.info.modelName,
      messages,
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.ok(chunks.some((c) => c.choices[0]?.finish_reason));
    const usage = chunks.at(-1)?.usage;
    const tok = await (
      await fetch(`${base}/tokenize`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages }),
      })
    ).json();
    assert.equal(usage?.prompt_tokens, tok.count);
    assert.ok(usage!.completion_tokens >= 1 && usage!.completion_tokens <= 5);
  });

  test('break mid-stream aborts in the real engine', async () => {
    const before = engine.stats().abortedTotal;
    const params = { model: engine.info.modelName, prompt: 'x', max_tokens: 200, ignore_eos: true, stream: true as const };
    const stream = await client.completions.create(params);
    let n = 0;
    for await (const c of stream) {
      if (c.choices[0]?.text !== undefined) n++;
      if (n === 2) break;
    }
    await waitFor(() => engine.stats().abortedTotal > before && engine.stats().running === 0, 'abort reached the engine', 10_000);
  });

  test('metrics reflect the real engine', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const gen = text.split('\n').find((l) => l.startsWith('blockserve:generation_tokens_total{'));
    assert.ok(gen && Number(gen.split(' ')[1]) >= 12, gen);
    assert.match(text, /blockserve:kv_cache_usage_perc\{model="[^"]+"\} [0-9.]+/);
  });
});
