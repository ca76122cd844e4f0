// The WebSocket protocol at /v1/ws with a real client (the `ws` package): several requests on one
// socket, chunks tagged with their request id, cancel, and socket close aborting everything.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import type { WsServerMessage } from '../protocol/types.ts';
import { startTestServer, type TestServer } from './testing/harness.ts';
import { waitFor } from './testing/wait.ts';

const REPLY = 'abcdefghij';

class WsClient {
  readonly messages: WsServerMessage[] = [];
  private waiters: (() => void)[] = [];
  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()));
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static async open(url: string, protocols?: string[], headers?: Record<string, string>): Promise<WsClient> {
    const socket = new WebSocket(url, protocols, { headers });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (req, res) => {
        req.destroy();
        reject(new Error(`HTTP ${res.statusCode}`));
      });
    });
    return new WsClient(socket);
  }
  send(msg: unknown): void {
    this.socket.send(JSON.stringify(msg));
  }
  async until(pred: (msgs: WsServerMessage[]) => boolean, timeoutMs = 3000): Promise<void> {
    const t0 = performance.now();
    while (!pred(this.messages)) {
      if (performance.now() - t0 > timeoutMs) throw new Error(`timeout; got ${JSON.stringify(this.messages.slice(-3))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
  of(id: string): WsServerMessage[] {
    return this.messages.filter((m) => m.id === id);
  }
}

const doneFor = (id: string) => (msgs: WsServerMessage[]) => msgs.some((m) => m.type === 'done' && m.id === id);
const textOf = (msgs: WsServerMessage[]) =>
  msgs
    .filter((m) => m.type === 'chunk')
    .map((m) => {
      const data = (m as { data: { choices: { text?: string; delta?: { content?: string } }[] } }).data;
      return data.choices.map((c) => c.text ?? c.delta?.content ?? '').join('');
    })
    .join('');

describe('WebSocket /v1/ws', () => {
  let server: TestServer;
  let wsUrl: string;
  before(async () => {
    server = await startTestServer({ reply: REPLY, tokenIntervalMs: 3 });
    wsUrl = server.url.replace('http', 'ws') + '/v1/ws';
  });
  after(async () => server.close());

  test('multiplexes concurrent requests, each tagged with its id', async () => {
    const c = await WsClient.open(wsUrl);
    c.send({
      type: 'chat.completion.create',
      id: 'chat-1',
      messages: [{ role: 'user', content: 'hi' }],
      stream_options: { include_usage: true },
    });
    c.send({ type: 'completion.create', id: 'cmp-2', prompt: 'x', max_tokens: 4 });
    c.send({ type: 'completion.create', id: 'cmp-3', prompt: [1, 2, 3], max_tokens: 7 });
    await c.until((m) => ['chat-1', 'cmp-2', 'cmp-3'].every((id) => doneFor(id)(m)));
    assert.equal(textOf(c.of('chat-1')), REPLY);
    assert.equal(textOf(c.of('cmp-2')), REPLY.slice(0, 4));
    assert.equal(textOf(c.of('cmp-3')), REPLY.slice(0, 7));
    // Same chunk objects as SSE: chat opens with the role, the usage chunk is last before done.
    const chat = c.of('chat-1');
    const first = chat[0] as { data: { object: string; choices: { delta: { role?: string } }[] } };
    assert.equal(first.data.object, 'chat.completion.chunk');
    assert.equal(first.data.choices[0].delta.role, 'assistant');
    const lastChunk = chat.at(-2) as { data: { usage?: { completion_tokens: number }; choices: unknown[] } };
    assert.equal(lastChunk.data.usage?.completion_tokens, REPLY.length);
    assert.deepEqual(lastChunk.data.choices, []);
    assert.equal(chat.at(-1)?.type, 'done');
    // The streams really interleaved on the socket (they ran concurrently, not one after another).
    const order = c.messages.map((m) => m.id);
    const firstDone = order.indexOf(c.messages.find((m) => m.type === 'done')!.id);
    assert.ok(order.slice(firstDone + 1).length > 0);
    const idsBeforeFirstDone = new Set(
      c.messages
        .slice(
          0,
          c.messages.findIndex((m) => m.type === 'done'),
        )
        .map((m) => m.id),
    );
    assert.ok(idsBeforeFirstDone.size >= 2, 'chunks of several requests arrived before the first finished');
    c.socket.close();
  });

  test('cancel stops one request (finish_reason abort) and leaves the others', async () => {
    const c = await WsClient.open(wsUrl);
    const aborts = server.engine.abortCount;
    c.send({ type: 'completion.create', id: 'long', prompt: 'x', max_tokens: 300, ignore_eos: true });
    c.send({ type: 'completion.create', id: 'short', prompt: 'x', max_tokens: 8 });
    await c.until((m) => m.filter((x) => x.id === 'long' && x.type === 'chunk').length >= 3);
    c.send({ type: 'cancel', id: 'long' });
    await c.until((m) => doneFor('long')(m) && doneFor('short')(m));
    const finishes = c
      .of('long')
      .flatMap((m) => (m.type === 'chunk' ? (m.data.choices as { finish_reason: string | null }[]).map((x) => x.finish_reason) : []))
      .filter(Boolean);
    assert.deepEqual(finishes, ['abort']);
    assert.ok(textOf(c.of('long')).length < 300);
    assert.equal(textOf(c.of('short')), REPLY.slice(0, 8));
    assert.equal(server.engine.abortCount, aborts + 1);
    c.socket.close();
  });

  test('closing the socket aborts every request on it', async () => {
    const c = await WsClient.open(wsUrl);
    const aborts = server.engine.abortCount;
    for (const id of ['a', 'b', 'c']) c.send({ type: 'completion.create', id, prompt: 'x', max_tokens: 400, ignore_eos: true });
    await c.until((m) => ['a', 'b', 'c'].every((id) => m.some((x) => x.id === id && x.type === 'chunk')));
    c.socket.close();
    await waitFor(() => server.engine.abortCount === aborts + 3 && server.engine.inFlight === 0, 'three aborts');
  });

  test('bad messages get errors tagged with their id; the socket stays usable', async () => {
    const c = await WsClient.open(wsUrl);
    c.socket.send('not json');
    c.send({ type: 'completion.create', id: 'bad-1', prompt: 'x', temperature: 'hot' });
    c.send({ type: 'chat.completion.create', id: 'bad-2', model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    c.send({ type: 'frobnicate', id: 'bad-3' });
    c.send({ type: 'completion.create', id: 'ok', prompt: 'x', max_tokens: 2 });
    await c.until((m) => ['bad-1', 'bad-2', 'bad-3', 'ok'].every((id) => doneFor(id)(m)));
    const err = (id: string | null) =>
      c.messages.find((m) => m.type === 'error' && m.id === id) as { error: { param: string | null; code: string } };
    assert.equal(err(null).error.code, 'invalid_json');
    assert.equal(err('bad-1').error.param, 'temperature');
    assert.equal(err('bad-2').error.code, 'model_not_found');
    assert.equal(err('bad-3').error.param, 'type');
    assert.equal(textOf(c.of('ok')), REPLY.slice(0, 2));
    c.socket.close();
  });
});

describe('WebSocket auth', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ reply: REPLY }, { apiKeys: ['sk-ws'] });
  });
  after(async () => server.close());

  test('needs the key: as a header or as the openai-insecure-api-key subprotocol', async () => {
    const url = server.url.replace('http', 'ws') + '/v1/ws';
    await assert.rejects(WsClient.open(url), /HTTP 401/);
    await assert.rejects(WsClient.open(url, ['blockserve.v1', 'openai-insecure-api-key.wrong']), /HTTP 401/);
    const viaHeader = await WsClient.open(url, undefined, { authorization: 'Bearer sk-ws' });
    viaHeader.socket.close();
    const viaProtocol = await WsClient.open(url, ['blockserve.v1', 'openai-insecure-api-key.sk-ws']);
    assert.equal(viaProtocol.socket.protocol, 'blockserve.v1', 'the key is not echoed back as the chosen protocol');
    viaProtocol.send({ type: 'completion.create', id: 'r', prompt: 'x', max_tokens: 3 });
    await viaProtocol.until(doneFor('r'));
    assert.equal(textOf(viaProtocol.of('r')), REPLY.slice(0, 3));
    viaProtocol.socket.close();
  });
});
