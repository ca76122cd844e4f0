// The engine in its worker thread (the demo model): the request rules answer synchronously on the
// calling thread, and its streams behave like the loop's (one stream class): leaving early aborts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineRequestError, type Engine, type EngineEvent } from '../api.ts';
import { createEngine } from '../create.ts';
import { defaultSamplingParams } from '../sampler/sampler.ts';

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('WorkerEngine (demo model, reference backend)', () => {
  let engine: Engine;
  before(async () => {
    engine = await createEngine({ backend: 'reference', kvCacheMb: 16, maxNumSeqs: 2, maxQueue: 1 });
  });
  after(async () => engine?.close());

  const req = (id: string, promptIds: number[], maxTokens: number) => ({
    id,
    promptIds,
    sampling: { ...defaultSamplingParams(), maxTokens, ignoreEos: true },
  });

  test('a break out of the stream aborts the request in the worker and frees its pages', async () => {
    const before = engine.stats().abortedTotal;
    let tokens = 0;
    for await (const e of engine.submit(req('b', [1, 2, 3, 4, 5], 500)) as AsyncIterable<EngineEvent>) {
      if (e.type === 'token') tokens++;
      if (tokens === 2) break;
    }
    await until(
      () => engine.stats().abortedTotal > before && engine.stats().running === 0 && engine.stats().kvPagesUsed === 0,
      'the abort to reach the worker',
    );
    // The slot is free again: all three places can be taken.
    const streams = ['x', 'y', 'z'].map((id) => engine.submit(req(id, [1, 2, 3, 4, 5], 2)));
    for (const s of streams)
      for await (const _ of s) {
        /* drain */
      }
  });

  test('every request rule answers synchronously, naming the field (never a late error event)', () => {
    const C = engine.limits.contextLength;
    const refuse = (r: ReturnType<typeof req>, code: string, field: string | undefined) =>
      assert.throws(
        () => engine.submit(r),
        (e) => e instanceof EngineRequestError && e.code === code && e.field === field,
        `${code} ${field}`,
      );
    refuse(req('p', [], 1), 'invalid_request', 'promptIds');
    refuse(req('p', [engine.limits.vocabSize], 1), 'invalid_request', 'promptIds');
    refuse(
      req(
        'p',
        Array.from({ length: C }, () => 1),
        1,
      ),
      'context_length_exceeded',
      'promptIds',
    );
    refuse(req('p', [1, 2], C), 'context_length_exceeded', 'maxTokens');
    refuse({ ...req('p', [1], 1), sampling: { ...req('p', [1], 1).sampling, topP: 0 } }, 'invalid_request', 'topP');
    refuse({ ...req('p', [1], 1), sampling: { ...req('p', [1], 1).sampling, topP: 1.5 } }, 'invalid_request', 'topP');
    refuse({ ...req('p', [1], 1), sampling: { ...req('p', [1], 1).sampling, maxTokens: 0 } }, 'invalid_request', 'maxTokens');
  });

  test('admission: the fourth request in flight is queue_full at submit', async () => {
    const streams = ['a1', 'a2', 'a3'].map((id) => engine.submit(req(id, [1, 2, 3], 300)));
    assert.throws(
      () => engine.submit(req('a4', [1, 2, 3], 1)),
      (e) => e instanceof EngineRequestError && e.code === 'queue_full',
    );
    for (const id of ['a1', 'a2', 'a3']) engine.abort(id);
    for (const s of streams)
      for await (const _ of s) {
        /* drain */
      }
  });
});
