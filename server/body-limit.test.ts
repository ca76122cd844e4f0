// A 12 MB body (limit 4 MiB) sent by a client that is still uploading when the server decides: the
// client must read 413 request_too_large, not a broken pipe. The upload is slowed as on any real
// network, where the server knows before the client is done (on loopback with one write the race
// hides the bug): by a body stream for fetch, and for the openai SDK (whose fetch carries an abort
// signal, which changes how undici reports the error) by a TCP hop that forwards the upload slowly and,
// like a kernel, answers data sent to a socket the server has closed with a reset.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { APIError } from 'openai';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { startTestServer, type TestServer } from './testing/harness.ts';

const BIG = 12 * 1024 * 1024;

/** A body stream that hands out `data` in 256 KiB pieces, 2 ms apart. */
function slowBody(data: Uint8Array): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    async pull(c) {
      if (off >= data.length) return c.close();
      await new Promise((r) => setTimeout(r, 2));
      c.enqueue(data.subarray(off, off + 256 * 1024));
      off += 256 * 1024;
    },
  });
}

/** fetch over a slow uplink: the same request, its body trickled with its Content-Length declared. */
const slowFetch: typeof fetch = async (input, init) => {
  const raw = init?.body;
  if (typeof raw !== 'string') return fetch(input, init);
  const data = new TextEncoder().encode(raw);
  const headers = new Headers(init?.headers);
  headers.set('content-length', String(data.length));
  return fetch(input, { ...init, headers, body: slowBody(data), duplex: 'half' } as RequestInit);
};

/** A slow uplink to `port`: 64 KiB per 2 ms upstream; data after the server closed resets the client. */
async function slowLink(port: number): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const proxy: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let serverClosed = false;
    upstream.on('data', (d) => client.write(d));
    upstream.on('end', () => {
      serverClosed = true;
      client.end();
    });
    upstream.on('close', () => {
      serverClosed = true;
    });
    upstream.on('error', () => client.resetAndDestroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    client.on('data', (chunk) => {
      if (serverClosed) return void client.resetAndDestroy(); // what the server's kernel does
      client.pause();
      let off = 0;
      const step = () => {
        if (serverClosed) return void client.resetAndDestroy();
        if (off >= chunk.length) return void client.resume();
        upstream.write(chunk.subarray(off, off + 65536));
        off += 65536;
        setTimeout(step, 2);
      };
      step();
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const addr = proxy.address();
  return {
    url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => proxy.close(() => r()));
    },
  };
}

describe('413 reaches a client that is still uploading', () => {
  let server: TestServer;
  let link: Awaited<ReturnType<typeof slowLink>>;
  before(async () => {
    server = await startTestServer();
    link = await slowLink(Number(new URL(server.url).port));
  });
  after(async () => {
    await link.close();
    await server.close();
  });

  const bigBody = () => JSON.stringify({ model: 'fake-model', prompt: 'x'.repeat(BIG) });

  test('Node fetch (undici), slow upload with Content-Length: 413 request_too_large', async () => {
    const res = await slowFetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bigBody(),
    });
    assert.equal(res.status, 413);
    const body = await res.json();
    assert.equal(body.error.code, 'request_too_large');
    assert.match(body.error.message, /--body-limit-mb/);
  });

  test('Node fetch (undici), chunked upload without Content-Length: 413', async () => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: slowBody(new TextEncoder().encode(bigBody())),
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, 'request_too_large');
  });

  test('Node fetch, the whole body in one write: 413', async () => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bigBody(),
    });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, 'request_too_large');
  });

  test('openai SDK over a slow uplink: an APIError 413 request_too_large at once, not a retried connection error', async () => {
    const client = new OpenAI({ baseURL: `${link.url}/v1`, apiKey: 'none', maxRetries: 2 });
    const submitted = server.engine.submitted.length;
    const t0 = performance.now();
    await assert.rejects(client.completions.create({ model: 'fake-model', prompt: 'x'.repeat(BIG) }), (e: unknown) => {
      assert.ok(e instanceof APIError, `${(e as Error).constructor.name}: ${(e as Error).message}`);
      assert.equal(e.status, 413);
      assert.equal(e.code, 'request_too_large');
      return true;
    });
    assert.ok(performance.now() - t0 < 10_000, 'no retries: a 4xx is final');
    assert.equal(server.engine.submitted.length, submitted);
    // The server is still healthy and serving.
    const ok = await client.completions.create({ model: 'fake-model', prompt: 'hi', max_tokens: 2 });
    assert.equal(ok.choices[0].finish_reason, 'length');
  });
});
