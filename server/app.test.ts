// The HTTP layer through Fastify's inject() (and a listening server where streaming timing matters):
// parameter mapping to SamplingParams, logprobs / echo / return_token_ids / stop rendering, SSE
// keep-alives and error events, readiness, CORS, metrics, tokenize, the chat template override.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './testing/harness.ts';

const REPLY = 'Hello from the fake engine: ünïcødé 🙂 works.';
const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
async function server(...args: Parameters<typeof startTestServer>): Promise<TestServer> {
  const s = await startTestServer(...args);
  servers.push(s);
  return s;
}

/** The `data:` payloads of an SSE body, in order; comments returned apart. */
function parseSse(body: string): { data: string[]; comments: string[] } {
  const data: string[] = [];
  const comments: string[] = [];
  for (const frame of body.split('\n\n')) {
    if (!frame) continue;
    for (const line of frame.split('\n')) {
      if (line.startsWith('data: ')) data.push(line.slice(6));
      else if (line.startsWith(':')) comments.push(line);
      else assert.fail(`unexpected SSE line ${JSON.stringify(line)}`);
    }
  }
  return { data, comments };
}

describe('request -> engine mapping', () => {
  test('every sampling parameter reaches SamplingParams', async () => {
    const s = await server({}, {}, { listen: false });
    const res = await s.app.inject({
      method: 'POST',
      url: '/v1/completions',
      payload: {
        model: 'fake-model',
        prompt: 'abc',
        max_tokens: 7,
        temperature: 0.3,
        top_p: 0.9,
        top_k: 40,
        min_p: 0.05,
        frequency_penalty: 0.5,
        presence_penalty: -0.5,
        repetition_penalty: 1.2,
        stop: ['xyz', 'q'],
        stop_token_ids: [5],
        seed: 42,
        logit_bias: { '65': 5, '66': -100 },
        ignore_eos: true,
        logprobs: 2,
        user: 'u1',
      },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(s.engine.submitted.at(-1), {
      id: `${res.json().id}-0`,
      promptIds: [97, 98, 99],
      sampling: {
        temperature: 0.3,
        topP: 0.9,
        topK: 40,
        minP: 0.05,
        frequencyPenalty: 0.5,
        presencePenalty: -0.5,
        repetitionPenalty: 1.2,
        logitBias: { 65: 5, 66: -100 },
        stop: ['xyz', 'q'],
        stopTokenIds: [5],
        maxTokens: 7,
        ignoreEos: true,
        seed: 42,
        logprobs: 2,
      },
    });
  });

  test('defaults: completions 16 tokens, chat the rest of the context; max_completion_tokens wins in chat', async () => {
    const s = await server({ contextLength: 100 }, {}, { listen: false });
    await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'abc' } });
    const c = s.engine.submitted.at(-1)!.sampling;
    assert.deepEqual(
      [c.maxTokens, c.temperature, c.topP, c.topK, c.repetitionPenalty, c.ignoreEos, c.seed, c.logprobs, c.stop],
      [16, 1, 1, 0, 1, false, undefined, undefined, []],
    );
    await s.app.inject({ method: 'POST', url: '/v1/chat/completions', payload: { messages: [{ role: 'user', content: 'hi' }] } });
    assert.equal(s.engine.submitted.at(-1)!.sampling.maxTokens, 100 - Buffer.byteLength('User: hi\n\nAssistant:'));
    await s.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      payload: { messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 9 },
    });
    assert.equal(s.engine.submitted.at(-1)!.sampling.maxTokens, 9);
    await s.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      payload: { messages: [{ role: 'user', content: 'hi' }], logprobs: true, top_logprobs: 3, stop: 'x' },
    });
    assert.equal(s.engine.submitted.at(-1)!.sampling.logprobs, 3);
    assert.deepEqual(s.engine.submitted.at(-1)!.sampling.stop, ['x']);
  });

  test('prompt forms: text, texts, ids, lists of ids; choices ordered prompt-major', async () => {
    const s = await server({ reply: 'xy' }, {}, { listen: false });
    const before = s.engine.submitted.length;
    const res = await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: [[1, 2], [3]], n: 2, max_tokens: 2 } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(
      s.engine.submitted.slice(before).map((r) => r.promptIds),
      [[1, 2], [1, 2], [3], [3]],
    );
    assert.deepEqual(
      res.json().choices.map((c: { index: number }) => c.index),
      [0, 1, 2, 3],
    );
    assert.equal(res.json().usage.prompt_tokens, 3, 'each prompt counted once');
    const texts = await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: ['ab', 'c'], max_tokens: 1 } });
    assert.equal(texts.json().choices.length, 2);
  });
});

describe('response rendering', () => {
  test('completions logprobs, echo, return_token_ids', async () => {
    const s = await server({ reply: 'abc' }, {}, { listen: false });
    const lp = (
      await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'P', max_tokens: 3, logprobs: 2 } })
    ).json();
    const l = lp.choices[0].logprobs;
    assert.deepEqual(l.tokens, ['a', 'b', 'c']);
    assert.equal(l.token_logprobs.length, 3);
    assert.deepEqual(l.text_offset, [0, 1, 2]);
    assert.deepEqual(Object.keys(l.top_logprobs[0]), ['a', 'b']);
    const echo = (
      await s.app.inject({
        method: 'POST',
        url: '/v1/completions',
        payload: { prompt: 'P: ', max_tokens: 3, echo: true, return_token_ids: true },
      })
    ).json();
    assert.equal(echo.choices[0].text, 'P: abc');
    assert.deepEqual(echo.choices[0].token_ids, [97, 98, 99]);
    assert.deepEqual(echo.choices[0].prompt_token_ids, [80, 58, 32]);
  });

  test("completions echo with logprobs: the prompt's entries first (the first token's null), then the generated ones", async () => {
    const s = await server({ reply: 'ab' }, {}, { listen: false });
    const payload = { prompt: 'PQ', max_tokens: 2, echo: true, logprobs: 1 };
    const res = (await s.app.inject({ method: 'POST', url: '/v1/completions', payload })).json();
    assert.equal(res.choices[0].text, 'PQab');
    const l = res.choices[0].logprobs;
    assert.deepEqual(l.tokens, ['P', 'Q', 'a', 'b']);
    assert.equal(l.token_logprobs[0], null);
    assert.equal(l.top_logprobs[0], null);
    assert.ok(l.token_logprobs.slice(1).every((v: unknown) => typeof v === 'number' && v < 0));
    assert.deepEqual(Object.keys(l.top_logprobs[1]), ['Q']);
    assert.deepEqual(l.text_offset, [0, 1, 2, 3]);
    // Streamed: the same entries, the prompt's in the chunk after the echoed text.
    const sse = await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { ...payload, stream: true } });
    const chunks = parseSse(sse.body)
      .data.slice(0, -1)
      .map((d) => JSON.parse(d));
    const streamed = chunks.flatMap((c) => c.choices[0]?.logprobs?.tokens ?? []);
    assert.deepEqual(streamed, ['P', 'Q', 'a', 'b']);
    assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), 'PQab');
  });

  test('chat logprobs and return_token_ids', async () => {
    const s = await server({ reply: 'é!' }, {}, { listen: false });
    const res = (
      await s.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: { messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 1, return_token_ids: true },
      })
    ).json();
    assert.equal(res.choices[0].message.content, 'é!');
    assert.deepEqual(res.choices[0].token_ids, [0xc3, 0xa9, 0x21]);
    assert.deepEqual(res.prompt_token_ids, Array.from(Buffer.from('User: x\n\nAssistant:')));
    assert.equal(res.choices[0].logprobs.content.length, 3);
    assert.equal(res.choices[0].logprobs.content[2].token, '!');
    assert.deepEqual(res.choices[0].logprobs.content[2].bytes, [0x21]);
    assert.equal(res.choices[0].logprobs.content[2].top_logprobs.length, 1);
  });

  test('stop strings end the text before them with finish_reason stop', async () => {
    const s = await server({ reply: 'one two three' }, {}, { listen: false });
    const res = (
      await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'x', max_tokens: 50, stop: [' thr', 'zzz'] } })
    ).json();
    assert.equal(res.choices[0].text, 'one two');
    assert.equal(res.choices[0].finish_reason, 'stop');
  });

  test('SSE: UTF-8 characters arrive whole; frames are data lines, [DONE] last', async () => {
    const s = await server({ reply: REPLY }, {}, { listen: false });
    const res = await s.app.inject({
      method: 'POST',
      url: '/v1/completions',
      payload: { prompt: 'x', max_tokens: 200, stream: true },
      headers: { accept: 'application/json' },
    });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    const { data } = parseSse(res.body);
    assert.equal(data.at(-1), '[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    for (const c of chunks) assert.ok(!c.choices[0].text.includes('\uFFFD'), 'no broken character in any chunk');
    assert.equal(chunks.map((c) => c.choices[0].text).join(''), REPLY);
    assert.ok(chunks.every((c) => c.object === 'text_completion'));
  });

  test('SSE echo and return_token_ids: the prompt comes first', async () => {
    const s = await server({ reply: 'ab' }, {}, { listen: false });
    const res = await s.app.inject({
      method: 'POST',
      url: '/v1/completions',
      payload: { prompt: 'Q', max_tokens: 2, stream: true, echo: true, return_token_ids: true },
    });
    const chunks = parseSse(res.body)
      .data.slice(0, -1)
      .map((d) => JSON.parse(d));
    assert.equal(chunks[0].choices[0].text, 'Q');
    assert.deepEqual(chunks[0].choices[0].prompt_token_ids, [81]);
    assert.deepEqual(
      chunks.flatMap((c) => c.choices[0].token_ids ?? []),
      [97, 98],
    );
  });

  test('an engine error mid-stream becomes an error frame followed by [DONE]', async () => {
    const s = await server({ errorAfterTokens: 3 }, {}, { listen: false });
    const res = await s.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      payload: { messages: [{ role: 'user', content: 'x' }], stream: true },
    });
    const { data } = parseSse(res.body);
    assert.equal(data.at(-1), '[DONE]');
    const err = JSON.parse(data.at(-2)!);
    assert.equal(err.error.type, 'server_error');
    assert.equal(err.error.message, 'scripted failure');
    assert.equal(
      data
        .slice(0, -2)
        .map((d) => JSON.parse(d).choices[0].delta.content ?? '')
        .join(''),
      REPLY.slice(0, 3),
    );
    const plain = await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'x' } });
    assert.equal(plain.statusCode, 500);
    assert.equal(plain.json().error.type, 'server_error');
  });

  test('keep-alive comments flow while a streamed request waits in the queue', async () => {
    // One sequence at a time: the second request queues behind the first (~0.3 s).
    const s = await server({ reply: 'abc', maxRunning: 1, tokenIntervalMs: 10 }, { sseKeepaliveS: 0.05 });
    const first = fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', max_tokens: 30, ignore_eos: true }),
    });
    await new Promise((r) => setTimeout(r, 20));
    const second = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', max_tokens: 2, stream: true }),
    });
    const body = await second.text();
    await first;
    const firstData = body.indexOf('data: ');
    const { comments } = parseSse(body.slice(0, firstData));
    assert.ok(comments.length >= 2, `keep-alives before the first chunk: ${JSON.stringify(body.slice(0, 200))}`);
    assert.equal(parseSse(body).data.at(-1), '[DONE]');
  });
});

describe('operations', () => {
  test('while loading: /health ok, /ready 503, API 503 model_loading; then ready', async () => {
    const s = await server({}, {}, { listen: false });
    const engine = s.state.engine;
    s.state.engine = null;
    s.state.loadProgress = { done: 3, total: 10, what: 'weights' };
    assert.equal((await s.app.inject('/health')).statusCode, 200);
    const ready = await s.app.inject('/ready');
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(ready.json(), { status: 'loading', ready: false, loading: { done: 3, total: 10, what: 'weights' } });
    const api = await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'x' } });
    assert.equal(api.statusCode, 503);
    assert.equal(api.json().error.code, 'model_loading');
    s.state.engine = engine;
    assert.equal((await s.app.inject('/ready')).statusCode, 200);
  });

  test('a dead engine: in-flight requests end with engine_dead, /health and /ready 503, counted in /metrics', async () => {
    const s = await server({ tokenIntervalMs: 10 }, {}, { listen: false });
    const before = await s.app.inject('/metrics');
    assert.match(before.body, /blockserve:engine_dead\{model="fake-model"\} 0/);
    assert.match(before.body, /blockserve:engine_failures_total\{model="fake-model"\} 0/);
    const body = { prompt: 'x', max_tokens: 400, ignore_eos: true };
    const plain = s.app.inject({ method: 'POST', url: '/v1/completions', payload: body });
    const streamed = s.app.inject({ method: 'POST', url: '/v1/completions', payload: { ...body, stream: true } });
    await new Promise((r) => setTimeout(r, 50));
    s.engine.kill('scripted death');
    const [p, st] = await Promise.all([plain, streamed]);
    assert.equal(p.statusCode, 503, p.body);
    assert.equal(p.json().error.code, 'engine_dead');
    assert.match(p.json().error.message, /scripted death/);
    assert.equal(st.statusCode, 200);
    assert.match(st.body, /"code":"engine_dead"/);
    assert.ok(st.body.trimEnd().endsWith('data: [DONE]'), st.body.slice(-200));
    const res = await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'x' } });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'engine_dead');
    const health = await s.app.inject('/health');
    assert.equal(health.statusCode, 503);
    assert.deepEqual(health.json(), { status: 'engine_dead', reason: 'scripted death' });
    const ready = await s.app.inject('/ready');
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json().status, 'engine_dead');
    const after = await s.app.inject('/metrics');
    assert.match(after.body, /blockserve:engine_dead\{model="fake-model"\} 1/);
    assert.match(after.body, /blockserve:engine_failures_total\{model="fake-model"\} 1/);
  });

  test('CORS: allowed origins get the SDK headers through preflight; others get nothing', async () => {
    const s = await server({}, { corsOrigins: ['https://app.example'], apiKeys: ['k'] }, { listen: false });
    const pre = await s.app.inject({
      method: 'OPTIONS',
      url: '/v1/chat/completions',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,x-stainless-os,x-stainless-retry-count',
      },
    });
    assert.equal(pre.statusCode, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
    const allowed = String(pre.headers['access-control-allow-headers']).toLowerCase();
    for (const h of ['authorization', 'x-stainless-os', 'x-stainless-retry-count']) assert.ok(allowed.includes(h), allowed);
    const other = await s.app.inject({
      method: 'OPTIONS',
      url: '/v1/chat/completions',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    const get = await s.app.inject({
      method: 'GET',
      url: '/v1/models',
      headers: { origin: 'https://app.example', authorization: 'Bearer k' },
    });
    assert.equal(get.headers['access-control-allow-origin'], 'https://app.example');
    assert.match(String(get.headers['access-control-expose-headers']), /retry-after/);
  });

  test('API keys guard /v1, /tokenize, and (when asked) /metrics; health stays open', async () => {
    const s = await server({}, { apiKeys: ['k1'], protectMetrics: true }, { listen: false });
    for (const url of ['/v1/models', '/metrics', '/openapi.json']) assert.equal((await s.app.inject(url)).statusCode, 401, url);
    assert.equal((await s.app.inject({ method: 'POST', url: '/tokenize', payload: { prompt: 'a' } })).statusCode, 401);
    assert.equal((await s.app.inject({ url: '/v1/models', headers: { authorization: 'Bearer k1' } })).statusCode, 200);
    assert.equal((await s.app.inject({ url: '/v1/models', headers: { authorization: 'Bearer k1x' } })).statusCode, 401);
    assert.equal((await s.app.inject({ url: '/v1/models', headers: { authorization: 'Basic k1' } })).statusCode, 401);
    assert.equal((await s.app.inject('/health')).statusCode, 200);
    assert.equal((await s.app.inject('/ready')).statusCode, 200);
  });

  test('/metrics: vLLM-style names with the model label, fed by requests', async () => {
    const s = await server({ reply: 'abcd' }, { servedModelName: 'my-model' }, { listen: false });
    await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { model: 'my-model', prompt: 'xyz', max_tokens: 2 } });
    await s.app.inject({ method: 'POST', url: '/v1/completions', payload: { model: 'my-model', prompt: 'xy', max_tokens: 10 } });
    const text = (await s.app.inject('/metrics')).body;
    const value = (line: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(line + ' '))
          ?.split(' ')[1],
      );
    assert.equal(value('blockserve:prompt_tokens_total{model="my-model"}'), 5);
    assert.equal(value('blockserve:generation_tokens_total{model="my-model"}'), 6);
    assert.equal(value('blockserve:request_success_total{model="my-model",finished_reason="length"}'), 1);
    assert.equal(value('blockserve:request_success_total{model="my-model",finished_reason="stop"}'), 1);
    assert.equal(value('blockserve:time_to_first_token_seconds_count{model="my-model"}'), 2);
    assert.equal(value('blockserve:e2e_request_latency_seconds_count{model="my-model"}'), 2);
    assert.equal(value('blockserve:request_queue_time_seconds_count{model="my-model"}'), 2);
    assert.equal(value('blockserve:inter_token_latency_seconds_count{model="my-model"}'), 1 + 3);
    for (const name of ['num_requests_running', 'num_requests_waiting', 'kv_cache_usage_perc', 'num_preemptions_total']) {
      assert.ok(Number.isFinite(value(`blockserve:${name}{model="my-model"}`)), name);
    }
  });

  test('/tokenize and /detokenize round-trip; chat messages use the template', async () => {
    const s = await server({}, {}, { listen: false });
    const tok = (await s.app.inject({ method: 'POST', url: '/tokenize', payload: { prompt: 'héllo' } })).json();
    assert.deepEqual(tok, { count: 6, max_model_len: 512, tokens: [104, 195, 169, 108, 108, 111] });
    const detok = (await s.app.inject({ method: 'POST', url: '/detokenize', payload: { tokens: tok.tokens } })).json();
    assert.deepEqual(detok, { prompt: 'héllo' });
    const chat = (
      await s.app.inject({
        method: 'POST',
        url: '/tokenize',
        payload: {
          messages: [
            { role: 'system', content: 'S' },
            { role: 'user', content: 'U' },
          ],
        },
      })
    ).json();
    assert.equal(Buffer.from(chat.tokens).toString(), 'S\n\nUser: U\n\nAssistant:');
    const noGen = (
      await s.app.inject({
        method: 'POST',
        url: '/tokenize',
        payload: { messages: [{ role: 'user', content: 'U' }], add_generation_prompt: false },
      })
    ).json();
    assert.equal(Buffer.from(noGen.tokens).toString(), 'User: U\n\n');
  });

  test('--chat-template replaces the default template', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blockserve-tpl-'));
    const file = join(dir, 'template.jinja');
    writeFileSync(
      file,
      '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}',
    );
    const s = await server({}, { chatTemplateFile: file }, { listen: false });
    const res = await s.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      payload: {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'a' },
              { type: 'text', text: 'b' },
            ],
          },
        ],
        max_tokens: 1,
      },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(Buffer.from(s.engine.submitted.at(-1)!.promptIds).toString(), '<|user|>ab<|assistant|>');
  });

  test('/v1/models flags the demo model; /openapi.json documents the validating schemas', async () => {
    const s = await server({ demo: true, modelName: 'demo-tiny' }, {}, { listen: false });
    const models = (await s.app.inject('/v1/models')).json();
    assert.equal(models.data[0].id, 'demo-tiny');
    assert.equal(models.data[0].demo, true);
    assert.equal(models.data[0].owned_by, 'blockserve-demo');
    const spec = (await s.app.inject('/openapi.json')).json();
    const body = spec.paths['/v1/completions'].post.requestBody.content['application/json'].schema;
    assert.equal(body.properties.temperature.maximum, 2);
    assert.equal(body.additionalProperties, false);
    assert.ok(spec.paths['/v1/chat/completions'].post.responses['200'].content['text/event-stream']);
    assert.ok(spec.paths['/v1/chat/completions'].post.responses['429']);
    assert.equal(spec.paths['/v1/ws'], undefined);
  });

  test('x-request-id is echoed (or made up)', async () => {
    const s = await server({}, {}, { listen: false });
    assert.equal((await s.app.inject({ url: '/health', headers: { 'x-request-id': 'abc-123' } })).headers['x-request-id'], 'abc-123');
    assert.match(String((await s.app.inject('/health')).headers['x-request-id']), /^[0-9a-f]{16}$/);
  });
});
