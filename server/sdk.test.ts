// The real `openai` npm SDK against the real server (listening on an ephemeral port) around the fake
// engine: what OpenAI-style clients actually do must work, including the SDK's own stream parser.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AuthenticationError, NotFoundError, RateLimitError } from 'openai';
import { startTestServer, type TestServer } from './testing/harness.ts';
import { waitFor } from './testing/wait.ts';

const REPLY = 'Hello from the fake engine: ünïcødé 🙂 works.';

describe('openai SDK against the server', () => {
  let server: TestServer;
  let client: OpenAI;
  before(async () => {
    server = await startTestServer({ reply: REPLY, tokenIntervalMs: 1 }, { apiKeys: ['sk-test-1', 'sk-test-2'] });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-test-2', maxRetries: 0 });
  });
  after(async () => server.close());

  test('models.list shows the served model', async () => {
    const page = await client.models.list();
    assert.deepEqual(
      page.data.map((m) => m.id),
      ['fake-model'],
    );
    const one = await client.models.retrieve('fake-model');
    assert.equal(one.id, 'fake-model');
  });

  test('completions without stream: the scripted reply, finish stop, usage', async () => {
    const res = await client.completions.create({ model: 'fake-model', prompt: 'Say hi', max_tokens: 200 });
    assert.equal(res.object, 'text_completion');
    assert.equal(res.choices[0].text, REPLY);
    assert.equal(res.choices[0].finish_reason, 'stop');
    const replyTokens = Buffer.byteLength(REPLY);
    assert.deepEqual(res.usage, { prompt_tokens: 6, completion_tokens: replyTokens, total_tokens: 6 + replyTokens });
  });

  test('completions with stream: text chunks join to the reply; no usage chunk unless asked', async () => {
    const stream = await client.completions.create({ model: 'fake-model', prompt: 'Say hi', max_tokens: 10, stream: true });
    let text = '';
    const ids = new Set<string>();
    let finish: string | null = null;
    let usageChunks = 0;
    for await (const chunk of stream) {
      ids.add(chunk.id);
      if (chunk.usage) usageChunks++;
      for (const c of chunk.choices) {
        text += c.text;
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(text, REPLY.slice(0, 10));
    assert.equal(finish, 'length');
    assert.equal(ids.size, 1);
    assert.equal(usageChunks, 0);
  });

  test('chat without stream', async () => {
    const res = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices[0].message.role, 'assistant');
    assert.equal(res.choices[0].message.content, REPLY);
    assert.equal(res.choices[0].finish_reason, 'stop');
    // The default template renders "User: hi\n\nAssistant:" (byte tokenizer: one token per byte).
    assert.equal(res.usage?.prompt_tokens, Buffer.byteLength('User: hi\n\nAssistant:'));
  });

  test('chat stream: role chunk first, one id, finish chunk, usage only with include_usage', async () => {
    for (const includeUsage of [false, true]) {
      const stream = await client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.equal(chunks[0].choices[0].delta.role, 'assistant');
      assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
      assert.equal(new Set(chunks.map((c) => c.created)).size, 1);
      const content = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
      assert.equal(content, REPLY);
      const finishChunks = chunks.filter((c) => c.choices[0]?.finish_reason);
      assert.equal(finishChunks.length, 1);
      assert.deepEqual(finishChunks[0].choices[0].delta, {});
      const usage = chunks.filter((c) => c.usage);
      if (includeUsage) {
        assert.equal(usage.length, 1);
        assert.equal(chunks.at(-1), usage[0]);
        assert.deepEqual(usage[0].choices, []);
        assert.equal(usage[0].usage?.completion_tokens, Buffer.byteLength(REPLY));
      } else {
        assert.equal(usage.length, 0);
      }
    }
  });

  test('chat.completions.stream().finalChatCompletion()', async () => {
    const runner = client.chat.completions.stream({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    const deltas: string[] = [];
    runner.on('content', (delta) => deltas.push(delta));
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].message.content, REPLY);
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.equal(deltas.join(''), REPLY);
  });

  test('n > 1: n choices from n engine requests; completion tokens summed, prompt counted once', async () => {
    const before = server.engine.submitted.length;
    const res = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'hi' }],
      n: 3,
      max_tokens: 4,
      seed: 7,
    });
    assert.deepEqual(
      res.choices.map((c) => c.index),
      [0, 1, 2],
    );
    for (const c of res.choices) assert.equal(c.message.content, REPLY.slice(0, 4));
    assert.equal(res.usage?.completion_tokens, 12);
    assert.equal(res.usage?.prompt_tokens, Buffer.byteLength('User: hi\n\nAssistant:'));
    const subs = server.engine.submitted.slice(before);
    assert.equal(subs.length, 3);
    assert.deepEqual(
      subs.map((s) => s.sampling.seed),
      [7, 8, 9],
      'choices of one request get distinct seeds',
    );
  });

  test('n > 1 streamed: every choice index finishes', async () => {
    const stream = await client.completions.create({ model: 'fake-model', prompt: ['a', 'b'], n: 2, max_tokens: 3, stream: true });
    const finished = new Map<number, string>();
    const text = new Map<number, string>();
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text.set(c.index, (text.get(c.index) ?? '') + c.text);
        if (c.finish_reason) finished.set(c.index, c.finish_reason);
      }
    }
    assert.deepEqual([...finished.keys()].sort(), [0, 1, 2, 3]);
    for (const t of text.values()) assert.equal(t, REPLY.slice(0, 3));
  });

  test('unknown model -> NotFoundError with code model_not_found', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
      (e: unknown) => e instanceof NotFoundError && e.code === 'model_not_found' && e.param === 'model',
    );
  });

  test('bad key -> AuthenticationError; no key -> AuthenticationError', async () => {
    const bad = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e: unknown) => e instanceof AuthenticationError && e.code === 'invalid_api_key');
    const res = await fetch(`${server.url}/v1/models`);
    assert.equal(res.status, 401);
    // Health stays open for probes even with keys configured.
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });

  test('break mid-stream aborts the engine request', async () => {
    const aborts = server.engine.abortCount;
    // ignore_eos is a vLLM extension the SDK passes through untyped.
    const params = { model: 'fake-model', prompt: 'x', max_tokens: 400, ignore_eos: true, stream: true as const };
    const stream = await client.completions.create(params);
    let seen = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.text) seen++;
      if (seen === 3) break;
    }
    await waitFor(() => server.engine.abortCount > aborts && server.engine.inFlight === 0, 'engine abort after break');
    assert.equal(server.engine.abortCount, aborts + 1);
  });
});

describe('openai SDK: overload', () => {
  let server: TestServer;
  after(async () => server.close());

  test('a full server answers RateLimitError at once, with retry-after', async () => {
    // Admission is the engine's rule (engine/requests.ts): this engine admits 3 running + 0 waiting.
    server = await startTestServer({ tokenIntervalMs: 20, maxRunning: 3, maxQueue: 0 });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const long = { model: 'fake-model', prompt: 'x', max_tokens: 100, ignore_eos: true, stream: true } as const;
    const streams = await Promise.all([1, 2, 3].map(() => client.completions.create(long)));
    const t0 = performance.now();
    await assert.rejects(client.completions.create({ ...long, stream: false }), (e: unknown) => {
      assert.ok(e instanceof RateLimitError);
      assert.equal(e.code, 'rate_limit_exceeded');
      assert.equal(e.headers?.get('retry-after'), '1');
      return true;
    });
    assert.ok(performance.now() - t0 < 500, 'the 429 comes at once, not after queueing');
    for (const s of streams) s.controller.abort();
    await waitFor(() => server.engine.inFlight === 0, 'aborted streams drained');
  });
});
