// Malformed input never reaches the engine and never earns a 5xx: each case is a 400/413 (or 415)
// whose OpenAI error body names the offending parameter where there is one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './testing/harness.ts';

const chat = (extra: Record<string, unknown>) => ({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], ...extra });
const completion = (extra: Record<string, unknown>) => ({ model: 'fake-model', prompt: 'hi', ...extra });

interface Case {
  name: string;
  url: string;
  payload: unknown;
  status: number;
  param: string | null;
  code?: string;
  contentType?: string;
}

const CONTEXT = 512;

const cases: Case[] = [
  { name: 'messages null', url: '/v1/chat/completions', payload: chat({ messages: null }), status: 400, param: 'messages' },
  { name: 'messages a string', url: '/v1/chat/completions', payload: chat({ messages: 'hello' }), status: 400, param: 'messages' },
  { name: 'messages [123]', url: '/v1/chat/completions', payload: chat({ messages: [123] }), status: 400, param: 'messages[0]' },
  { name: 'messages [{}]', url: '/v1/chat/completions', payload: chat({ messages: [{}] }), status: 400, param: 'messages[0].role' },
  {
    name: 'numeric role',
    url: '/v1/chat/completions',
    payload: chat({ messages: [{ role: 5, content: 'x' }] }),
    status: 400,
    param: 'messages[0].role',
  },
  {
    name: 'unknown role',
    url: '/v1/chat/completions',
    payload: chat({ messages: [{ role: 'wizard', content: 'x' }] }),
    status: 400,
    param: 'messages[0].role',
  },
  { name: 'messages missing', url: '/v1/chat/completions', payload: { model: 'fake-model' }, status: 400, param: 'messages' },
  { name: 'messages empty', url: '/v1/chat/completions', payload: chat({ messages: [] }), status: 400, param: 'messages' },
  {
    name: 'image content part',
    url: '/v1/chat/completions',
    payload: chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }),
    status: 400,
    param: 'messages[0].content[0].type',
  },
  { name: 'negative max_tokens', url: '/v1/completions', payload: completion({ max_tokens: -5 }), status: 400, param: 'max_tokens' },
  { name: "temperature 'hot'", url: '/v1/chat/completions', payload: chat({ temperature: 'hot' }), status: 400, param: 'temperature' },
  { name: 'temperature 3', url: '/v1/completions', payload: completion({ temperature: 3 }), status: 400, param: 'temperature' },
  { name: 'n 0', url: '/v1/chat/completions', payload: chat({ n: 0 }), status: 400, param: 'n' },
  { name: 'n 1.5', url: '/v1/completions', payload: completion({ n: 1.5 }), status: 400, param: 'n' },
  {
    name: 'stop of 20 strings',
    url: '/v1/chat/completions',
    payload: chat({ stop: Array.from({ length: 20 }, (_, i) => `s${i}`) }),
    status: 400,
    param: 'stop',
  },
  { name: 'top_p 0', url: '/v1/completions', payload: completion({ top_p: 0 }), status: 400, param: 'top_p' },
  {
    name: 'unknown parameter',
    url: '/v1/completions',
    payload: completion({ best_of: 3 }),
    status: 400,
    param: 'best_of',
    code: 'unsupported_parameter',
  },
  {
    name: 'tools (unsupported)',
    url: '/v1/chat/completions',
    payload: chat({ tools: [] }),
    status: 400,
    param: 'tools',
    code: 'unsupported_parameter',
  },
  { name: 'logit_bias bad key', url: '/v1/completions', payload: completion({ logit_bias: { abc: 1 } }), status: 400, param: 'logit_bias' },
  {
    name: 'logit_bias outside vocab',
    url: '/v1/completions',
    payload: completion({ logit_bias: { '99999': 1 } }),
    status: 400,
    param: 'logit_bias',
  },
  {
    name: 'prompt token outside vocab',
    url: '/v1/completions',
    payload: completion({ prompt: [1, 2, 100000] }),
    status: 400,
    param: 'prompt[2]',
  },
  { name: 'prompt a number', url: '/v1/completions', payload: completion({ prompt: 123 }), status: 400, param: 'prompt' },
  { name: 'prompt empty', url: '/v1/completions', payload: completion({ prompt: '' }), status: 400, param: 'prompt' },
  {
    name: 'stream_options without stream',
    url: '/v1/chat/completions',
    payload: chat({ stream_options: { include_usage: true } }),
    status: 400,
    param: 'stream_options',
  },
  {
    name: 'top_logprobs without logprobs',
    url: '/v1/chat/completions',
    payload: chat({ top_logprobs: 2 }),
    status: 400,
    param: 'top_logprobs',
  },
  {
    name: 'prompt beyond context',
    url: '/v1/completions',
    payload: completion({ prompt: 'x'.repeat(CONTEXT + 10) }),
    status: 400,
    param: 'prompt',
    code: 'context_length_exceeded',
  },
  {
    name: 'messages beyond context',
    url: '/v1/chat/completions',
    payload: chat({ messages: [{ role: 'user', content: 'x'.repeat(CONTEXT) }] }),
    status: 400,
    param: 'messages',
    code: 'context_length_exceeded',
  },
  {
    name: 'max_tokens beyond context',
    url: '/v1/completions',
    payload: completion({ max_tokens: CONTEXT }),
    status: 400,
    param: 'max_tokens',
    code: 'context_length_exceeded',
  },
  {
    name: 'invalid JSON',
    url: '/v1/chat/completions',
    payload: '{"messages": [',
    status: 400,
    param: null,
    code: 'invalid_json',
    contentType: 'application/json',
  },
  { name: 'JSON array body', url: '/v1/completions', payload: '[1,2]', status: 400, param: null, contentType: 'application/json' },
  {
    name: 'not JSON content type',
    url: '/v1/completions',
    payload: 'prompt=hi',
    status: 415,
    param: null,
    contentType: 'application/x-www-form-urlencoded',
  },
  {
    name: '10 MB body',
    url: '/v1/completions',
    payload: JSON.stringify(completion({ prompt: 'x'.repeat(10 * 1024 * 1024) })),
    status: 413,
    param: null,
    code: 'request_too_large',
    contentType: 'application/json',
  },
  {
    name: 'more sequences than the server admits',
    url: '/v1/completions',
    payload: completion({ prompt: Array.from({ length: 40 }, () => 'p'), n: 16 }),
    status: 400,
    param: 'n',
  },
  { name: 'tokenize without prompt or messages', url: '/tokenize', payload: {}, status: 400, param: 'prompt' },
  { name: 'detokenize outside vocab', url: '/detokenize', payload: { tokens: [1, 300] }, status: 400, param: 'tokens[1]' },
];

describe('malformed input', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ contextLength: CONTEXT }, {}, { listen: false });
  });
  after(async () => server.close());

  for (const c of cases) {
    test(`${c.name} -> ${c.status} naming ${c.param ?? 'no parameter'}`, async () => {
      const submitted = server.engine.submitted.length;
      const res = await server.app.inject({
        method: 'POST',
        url: c.url,
        payload: typeof c.payload === 'string' ? c.payload : JSON.stringify(c.payload),
        headers: { 'content-type': c.contentType ?? 'application/json' },
      });
      assert.equal(res.statusCode, c.status, res.body);
      const body = res.json();
      assert.equal(typeof body.error.message, 'string');
      assert.ok(body.error.message.length > 0);
      assert.equal(body.error.type, 'invalid_request_error');
      assert.equal(body.error.param, c.param, body.error.message);
      if (c.code) assert.equal(body.error.code, c.code);
      if (c.param) assert.ok(body.error.message.includes(c.param.split('[')[0]), `message names ${c.param}: ${body.error.message}`);
      assert.equal(server.engine.submitted.length, submitted, 'nothing reached the engine');
    });
  }
});
