import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser } from './sse.ts';

const enc = (s: string) => new TextEncoder().encode(s);

test('one event per blank line; comments and other fields ignored', () => {
  const p = new SseParser();
  const out = p.push(enc(': keep-alive\n\nevent: x\nid: 3\ndata: {"a":1}\n\ndata: [DONE]\n\n'));
  assert.deepEqual(out, ['{"a":1}', '[DONE]']);
  assert.equal(p.end().danglingBytes, false);
});

test('events split at every byte boundary, CRLF and CR line ends, multi-line data', () => {
  const text = 'data: {"x":"é€"}\r\n\r\ndata:no-space\rdata: second\r\r: c\n\ndata: last\n\n';
  const bytes = enc(text);
  const whole = new SseParser().push(bytes);
  assert.deepEqual(whole, ['{"x":"é€"}', 'no-space\nsecond', 'last']);
  for (let cut = 1; cut < bytes.length; cut++) {
    const p = new SseParser();
    const got = [...p.push(bytes.slice(0, cut)), ...p.push(bytes.slice(cut))];
    assert.deepEqual(got, whole, `cut at ${cut}`);
  }
});

test('an event without its final blank line is not dispatched and is reported dangling', () => {
  const p = new SseParser();
  assert.deepEqual(p.push(enc('data: {"a":1}\n')), []);
  assert.equal(p.end().danglingBytes, true);
});
