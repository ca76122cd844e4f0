// Overload against the real engine (demo model, in its worker thread): the scenario of issue 13, a
// small queue, streams aborted after a few chunks, then a burst of concurrent non-streamed requests.
// Every answer is a 200 or a 429 with retry-after: never a 500, and a streamed request that is refused
// gets its 429 before any byte of a 200 (never an error inside the stream).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine/api.ts';
import { buildApp } from './app.ts';
import { defaultConfig } from './config.ts';
import { waitFor } from './testing/wait.ts';

const DEMO_CONFIG = fileURLToPath(new URL('../models/demo/config.yaml', import.meta.url));

const MAX_NUM_SEQS = 8;
const MAX_QUEUE = 16;

describe('overload: a full queue is always 429 with retry-after (real engine, --max-queue 16 --max-num-seqs 8)', () => {
  let engine: Engine;
  let app: FastifyInstance;
  let base: string;
  before(async () => {
    const { cpuBackendAvailable } = await import('../kernels/cpu/backend.ts');
    const backend = cpuBackendAvailable() ? 'cpu' : 'reference';
    // The random-weight demo (block_main_b4_5's shape, a 50,304-token head), not the trained default: the
    // trained 2M model finishes 500-token requests faster than the test can fill the engine with them.
    const config = defaultConfig({
      port: 0,
      engine: { config: DEMO_CONFIG, backend, kvCacheMb: 64, maxNumSeqs: MAX_NUM_SEQS, maxQueue: MAX_QUEUE },
    });
    const { createEngine } = await import(new URL('../engine/create.ts', import.meta.url).href);
    engine = await createEngine(config.engine);
    const built = await buildApp(config);
    built.state.engine = engine;
    app = built.app;
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  after(async () => {
    await app?.close();
    await engine?.close();
  });

  const post = (body: object, signal?: AbortSignal) =>
    fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });

  test('aborted streams, then a burst of concurrent non-streamed requests: only 200 and 429', async () => {
    // Streams aborted after 1-3 chunks, 20 at a time (each batch leaves aborts in flight in the worker).
    const statuses = new Map<number, number>();
    const count = (s: number) => statuses.set(s, (statuses.get(s) ?? 0) + 1);
    for (let batch = 0; batch < 4; batch++) {
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const ac = new AbortController();
          const res = await post({ prompt: `stream ${batch}-${i}`, max_tokens: 200, ignore_eos: true, stream: true }, ac.signal);
          count(res.status);
          if (res.status !== 200) return void (await res.text());
          const reader = res.body!.getReader();
          const stopAfter = 1 + (i % 3);
          for (let chunks = 0; chunks < stopAfter; chunks++) if ((await reader.read()).done) break;
          ac.abort();
          await reader.cancel().catch(() => {});
        }),
      );
    }
    // At once, while those aborts are still reaching the engine: many more than it admits, each client
    // retrying its 429s after a short jittered wait (as the openai SDK does), so refused requests keep
    // arriving while admitted ones finish at staggered block phases (max_tokens 4..16).
    const results: {
      status: number;
      retryAfter: string | null;
      body: { error: { code: string; type: string }; choices: { finish_reason: string }[] };
    }[] = [];
    await Promise.all(
      Array.from({ length: 150 }, async (_, i) => {
        for (let attempt = 0; attempt < 6; attempt++) {
          const res = await post({ prompt: `burst ${i}`, max_tokens: 4 + (i % 13), ignore_eos: true });
          const r = { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
          results.push(r);
          if (r.status !== 429) return;
          await new Promise((resolve) => setTimeout(resolve, 5 + ((i * 7 + attempt * 13) % 40)));
        }
      }),
    );
    for (const r of results) {
      count(r.status);
      assert.ok(r.status === 200 || r.status === 429, `status ${r.status}: ${JSON.stringify(r.body)}`);
      if (r.status === 429) {
        assert.equal(r.body.error.code, 'rate_limit_exceeded');
        assert.equal(r.body.error.type, 'rate_limit_error');
        assert.equal(r.retryAfter, '1');
      } else {
        assert.equal(r.body.choices[0].finish_reason, 'length');
      }
    }
    assert.ok(
      results.some((r) => r.status === 429),
      'the burst overflowed the queue',
    );
    assert.ok(results.filter((r) => r.status === 200).length >= MAX_NUM_SEQS, `at least a batch was served: ${[...statuses]}`);
    await waitFor(
      () => engine.stats().running === 0 && engine.stats().waiting === 0 && engine.stats().kvPagesUsed === 0,
      'the engine to drain',
      60_000,
    );
  });

  test('a streamed request over capacity gets 429 before any byte of a 200', async () => {
    // Fill the engine with long requests, then ask for streams.
    const ac = new AbortController();
    const fill = Array.from({ length: MAX_NUM_SEQS + MAX_QUEUE }, (_, i) =>
      post({ prompt: `fill ${i}`, max_tokens: 500, ignore_eos: true }, ac.signal).catch(() => null),
    );
    await waitFor(() => engine.stats().running + engine.stats().waiting >= MAX_NUM_SEQS + MAX_QUEUE, 'the engine to fill', 30_000);
    const refused = await Promise.all(Array.from({ length: 10 }, () => post({ prompt: 'late', max_tokens: 3, stream: true })));
    for (const r of refused) {
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('retry-after'), '1');
      assert.match(r.headers.get('content-type') ?? '', /application\/json/);
      assert.equal((await r.json()).error.code, 'rate_limit_exceeded');
    }
    ac.abort();
    await Promise.all(fill);
    await waitFor(
      () => engine.stats().running === 0 && engine.stats().waiting === 0 && engine.stats().kvPagesUsed === 0,
      'the engine to drain',
      60_000,
    );
  });
});
