// The wire schemas compile under Ajv's strict mode (so no keyword is silently ignored), accept what
// OpenAI clients send, and reject what the server must refuse. The server validates with these very
// objects; the load tester may check responses with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import * as schemas from './schemas.ts';

// Ajv understands OpenAPI's `nullable` natively; strict mode rejects any other unknown keyword.
const ajv = new Ajv({ strict: true, allErrors: true });
const compile = (s: object) => ajv.compile(s);

test('every exported schema compiles in strict mode', () => {
  for (const [name, s] of Object.entries(schemas)) {
    if (name === 'LIMITS') continue;
    assert.doesNotThrow(() => compile(s as object), name);
  }
});

test('requests: valid ones pass, invalid ones fail', () => {
  const chat = compile(schemas.chatCompletionRequestSchema);
  assert.ok(chat({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } }));
  assert.ok(chat({ messages: [{ role: 'system', content: [{ type: 'text', text: 'a' }] }], logprobs: true, top_logprobs: 3, seed: -1 }));
  assert.ok(!chat({ messages: [{ role: 'user', content: 'hi' }], tools: [] }));
  assert.ok(!chat({ messages: [] }));
  const completion = compile(schemas.completionRequestSchema);
  for (const prompt of ['a', ['a', 'b'], [1, 2], [[1], [2, 3]]]) assert.ok(completion({ prompt }), JSON.stringify(prompt));
  for (const prompt of [1, [], [[]], [1.5], [-1], null]) assert.ok(!completion({ prompt }), JSON.stringify(prompt));
  assert.ok(!completion({ prompt: 'a', stop: ['1', '2', '3', '4', '5'] }));
  assert.ok(!completion({ prompt: 'a', logit_bias: { x: 1 } }));
  assert.ok(completion({ prompt: 'a', logit_bias: { '50256': -100 } }));
});

test('responses: a completion and a chat chunk as the server renders them', () => {
  const completion = compile(schemas.completionResponseSchema);
  assert.ok(
    completion({
      id: 'cmpl-1',
      object: 'text_completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, text: 'x', logprobs: null, finish_reason: 'length' }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    }),
  );
  assert.ok(!completion({ id: 'cmpl-1', object: 'chat.completion', created: 1, model: 'm', choices: [] }));
  const err = compile(schemas.errorBodySchema);
  assert.ok(err({ error: { message: 'm', type: 't', param: null, code: null } }));
  assert.ok(!err({ error: { message: 'm' } }));
});
