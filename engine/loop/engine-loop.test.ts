import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineRequestError } from '../api.ts';
import { collect, makeFakeEngine, randomPrompt, request } from '../testing/harness.ts';
import type { FakeRunnerOptions } from '../testing/fake-runner.ts';

const families: [string, FakeRunnerOptions][] = [
  ['vanilla', { kind: 'vanilla' }],
  ['block L=4 padded', { kind: 'block', blockLength: 4, padFirstBlock: true }],
  ['block L=4 unpadded', { kind: 'block', blockLength: 4, padFirstBlock: false }],
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Each prompt run alone (batch 1) on a fresh engine. */
async function alone(runnerOpts: FakeRunnerOptions, prompts: number[][], sampling: object) {
  const out = [];
  for (let i = 0; i < prompts.length; i++) {
    const { engine } = makeFakeEngine(runnerOpts);
    out.push(await collect(engine.submit(request(`r${i}`, prompts[i], sampling))));
    await engine.close();
  }
  return out;
}

/** All prompts on one engine, arriving `staggerMs` apart (0: all in the same tick). */
async function together(runnerOpts: FakeRunnerOptions, prompts: number[][], sampling: object, loopOpts = {}, staggerMs = 1) {
  const fe = makeFakeEngine(runnerOpts, loopOpts);
  const pending = [];
  for (let i = 0; i < prompts.length; i++) {
    pending.push(collect(fe.engine.submit(request(`r${i}`, prompts[i], sampling))));
    if (staggerMs > 0) await sleep(staggerMs);
  }
  const results = await Promise.all(pending);
  return { results, fe };
}

for (const [name, opts] of families) {
  test(`${name}: greedy output is the same at batch 1 and batch N with staggered arrivals`, async () => {
    const prompts = Array.from({ length: 10 }, (_, i) => randomPrompt(i, 3 + ((i * 7) % 23)));
    const sampling = { maxTokens: 24 };
    const ref = await alone(opts, prompts, sampling);
    const { results, fe } = await together({ ...opts, record: true, delayMs: 1 }, prompts, sampling, { maxNumSeqs: 6 });
    assert.ok(Math.max(...fe.runner.calls.map((c) => c.length)) >= 4, 'requests overlapped in steps');
    for (let i = 0; i < prompts.length; i++) {
      assert.deepEqual(results[i].tokens, ref[i].tokens, `request ${i}`);
      assert.equal(results[i].tokens.length, 24);
      assert.deepEqual(results[i].terminal, {
        type: 'finished',
        reason: 'length',
        usage: { promptTokens: prompts[i].length, completionTokens: 24 },
      });
      assert.equal(results[i].events[0].type, 'started');
    }
    assert.equal(fe.engine.stats().kvPagesUsed, 0);
    await fe.engine.close();
  });

  test(`${name}: seeded sampling is the same at batch 1 and batch N`, async () => {
    const prompts = Array.from({ length: 6 }, (_, i) => randomPrompt(100 + i, 5 + i * 3));
    const sampling = { maxTokens: 20, temperature: 1.3, topP: 0.9, topK: 40, seed: 1234 };
    const ref = await alone(opts, prompts, sampling);
    const { results, fe } = await together(opts, prompts, sampling);
    for (let i = 0; i < prompts.length; i++) assert.deepEqual(results[i].tokens, ref[i].tokens, `request ${i}`);
    // and the draws are random: different seeds give different tokens
    const other = await alone(opts, [prompts[0]], { ...sampling, seed: 99 });
    assert.notDeepEqual(other[0].tokens, ref[0].tokens);
    await fe.engine.close();
  });

  test(`${name}: preemption recomputes and yields the same tokens`, async () => {
    const prompts = Array.from({ length: 8 }, (_, i) => randomPrompt(200 + i, 10 + i));
    const sampling = { maxTokens: 40 };
    const ref = await alone(opts, prompts, sampling);
    // 4 entries per page; 8 sequences of up to ~57 tokens cannot all fit in 24 pages at once.
    const { results, fe } = await together(opts, prompts, sampling, { numPages: opts.kind === 'block' ? 6 : 24, maxNumSeqs: 8 }, 0);
    for (let i = 0; i < prompts.length; i++) assert.deepEqual(results[i].tokens, ref[i].tokens, `request ${i}`);
    assert.ok(fe.engine.stats().preemptedTotal > 0, 'the pool was small enough to force preemption');
    assert.equal(fe.engine.stats().kvPagesUsed, 0);
    await fe.engine.close();
  });
}

test('1,000 random aborts leave zero pages in use and every stream ends once', async () => {
  const { engine } = makeFakeEngine({ kind: 'block', padFirstBlock: true }, { numPages: 64, maxNumSeqs: 16 });
  let rand = 7;
  const next = () => (rand = (Math.imul(rand, 1103515245) + 12345) >>> 0) / 4294967296;
  const streams: Promise<unknown>[] = [];
  const ids: string[] = [];
  let aborted = 0;
  for (let i = 0; i < 1000; i++) {
    const id = `a${i}`;
    ids.push(id);
    streams.push(
      collect(engine.submit(request(id, randomPrompt(i, 1 + Math.floor(next() * 40)), { maxTokens: 1000, ignoreEos: true }))).then((c) => {
        assert.equal(c.terminal.type, 'finished');
        if (c.terminal.type === 'finished') assert.equal(c.terminal.reason, 'abort');
      }),
    );
    if (next() < 0.5) await new Promise((r) => setImmediate(r)); // let some steps run
    if (next() < 0.8) {
      const victim = ids.splice(Math.floor(next() * ids.length), 1)[0];
      engine.abort(victim);
      aborted++;
    }
  }
  for (const id of ids) {
    engine.abort(id);
    aborted++;
  }
  await Promise.all(streams);
  const s = engine.stats();
  assert.equal(aborted, 1000);
  assert.equal(s.kvPagesUsed, 0);
  assert.equal(s.running + s.waiting, 0);
  assert.equal(s.abortedTotal, 1000);
  assert.equal(engine.scheduler.localSlots!.used, 0);
  await engine.close();
});

test('prefix-cache hit: the second request skips the shared pages and produces the same tokens', async () => {
  const { engine, runner } = makeFakeEngine({ kind: 'block', padFirstBlock: true, record: true }, { pageSize: 2 });
  const prompt = randomPrompt(5, 37); // padded to 40 = 10 blocks = 5 pages of 2 blocks
  const first = await collect(engine.submit(request('p1', prompt, { maxTokens: 8 })));
  const callsBefore = runner.calls.length;
  const second = await collect(engine.submit(request('p2', prompt, { maxTokens: 8 })));
  assert.deepEqual(second.tokens, first.tokens);
  const firstFeed = runner.calls
    .slice(callsBefore)
    .flat()
    .find((it) => it.seqId === 'p2')!;
  // 10 blocks; the hit may not cover the last complete block: at most 9 blocks -> 4 full pages = 32 tokens.
  assert.equal(firstFeed.position, 32);
  assert.deepEqual(firstFeed.tokens, [0, 0, 0, ...prompt].slice(32));
  const p1First = runner.calls.flat().find((it) => it.seqId === 'p1' && it.position === 0)!;
  assert.deepEqual(firstFeed.kvSlots.slice(0, 8), p1First.kvSlots.slice(0, 8), "shared pages are the first request's");
  await engine.close();
});

test('stop strings split across tokens are held back and never emitted', async () => {
  const tok = makeFakeEngine().tokenizer;
  // the script writes "the</s> after" one piece at a time
  const pieces = ['th', 'e', '</', 's>', ' ', 'a', 'f'];
  const script = (h: readonly number[]) => tok.id(pieces[Math.min(h.length - 3, pieces.length - 1)]);
  const { engine } = makeFakeEngine({ script });
  const r = await collect(engine.submit(request('s', [1, 2, 3], { maxTokens: 20, stop: ['</s>'] })));
  assert.equal(r.text, 'the');
  assert.deepEqual(r.terminal, { type: 'finished', reason: 'stop', usage: { promptTokens: 3, completionTokens: 4 } });
  const texts = r.events.filter((e) => e.type === 'token').map((e) => (e.type === 'token' ? e.text : ''));
  assert.deepEqual(texts, ['th', 'e', '', '']); // '</' is held: it may start the stop string

  // a partial match that fails is released, in order
  const { engine: e2 } = makeFakeEngine({ script });
  const r2 = await collect(e2.submit(request('s2', [1, 2, 3], { maxTokens: 7, stop: ['</x>', 'e</s> b'] })));
  assert.equal(r2.text, 'the</s> af');
  assert.equal(r2.terminal.type === 'finished' && r2.terminal.reason, 'length');
  await engine.close();
  await e2.close();
});

test('stop token ids, eos, ignore_eos and max_tokens', async () => {
  const { engine, tokenizer: tok } = makeFakeEngine({ script: (h) => (h.length === 6 ? 0 : h.length === 4 ? tok.id('z') : undefined) });
  const eos = await collect(engine.submit(request('e', [1, 2, 3], { maxTokens: 10 })));
  assert.equal(eos.tokens.length, 4); // three tokens, then eos at history length 6
  assert.equal(eos.tokens[3], 0);
  assert.equal(eos.terminal.type === 'finished' && eos.terminal.reason, 'stop');
  const ign = await collect(engine.submit(request('i', [1, 2, 3], { maxTokens: 10, ignoreEos: true })));
  assert.equal(ign.tokens.length, 10);
  assert.equal(ign.terminal.type === 'finished' && ign.terminal.reason, 'length');
  const sid = await collect(engine.submit(request('t', [1, 2, 3], { maxTokens: 10, stopTokenIds: [tok.id('z')] })));
  assert.equal(sid.tokens.length, 2);
  assert.equal(sid.tokens[1], tok.id('z'));
  assert.ok(!sid.text.includes('z'), 'a stop token is not rendered');
  await engine.close();
});

test('context length ends generation with length; longer prompts are refused', async () => {
  const { engine } = makeFakeEngine({ kind: 'block', padFirstBlock: true, contextLength: 32 });
  // 21 + 11 = 32 passes checkRequest (padding is not counted against max_tokens, as OpenAI counts),
  // but 21 -> padded 24 leaves room for 8 tokens: generation ends with 'length' there.
  assert.throws(
    () => engine.submit(request('c0', randomPrompt(1, 21), { maxTokens: 12 })),
    (e) => e instanceof EngineRequestError && e.code === 'context_length_exceeded' && e.field === 'maxTokens',
  );
  const r = await collect(engine.submit(request('c', randomPrompt(1, 21), { maxTokens: 11 })));
  assert.equal(r.tokens.length, 8);
  assert.equal(r.terminal.type === 'finished' && r.terminal.reason, 'length');
  assert.throws(
    () => engine.submit(request('d', randomPrompt(1, 30))),
    (e) => e instanceof EngineRequestError && e.code === 'context_length_exceeded',
  );
  assert.throws(
    () => engine.submit(request('d', [])),
    (e) => e instanceof EngineRequestError && e.code === 'invalid_request',
  );
  assert.throws(
    () => engine.submit(request('d', [999])),
    (e) => e instanceof EngineRequestError && e.code === 'invalid_request',
  );
  await engine.close();
});

test('admission: at most maxNumSeqs + maxQueue requests in flight, whatever the scheduler is doing', async () => {
  const { engine } = makeFakeEngine({ delayMs: 5 }, { maxNumSeqs: 1, maxQueue: 2 });
  const streams = [0, 1, 2].map((i) => engine.submit(request(`q${i}`, [1], { maxTokens: 3 })));
  assert.throws(
    () => engine.submit(request('q3', [1])),
    (e) => e instanceof EngineRequestError && e.code === 'queue_full',
  );
  // One ends: one place frees up (and only one).
  const first = await collect(streams.shift()!);
  assert.equal(first.terminal.type, 'finished');
  streams.push(engine.submit(request('q3', [1], { maxTokens: 3 })));
  assert.throws(
    () => engine.submit(request('q4', [1])),
    (e) => e instanceof EngineRequestError && e.code === 'queue_full',
  );
  await Promise.all(streams.map(collect));
  await engine.close();
});

test('abort ends the stream with finished abort; breaking out of the stream aborts too', async () => {
  const { engine } = makeFakeEngine({ delayMs: 2 });
  const s = engine.submit(request('x', [1, 2], { maxTokens: 1000, ignoreEos: true }));
  setTimeout(() => engine.abort('x'), 20);
  const r = await collect(s);
  assert.equal(r.terminal.type === 'finished' && r.terminal.reason, 'abort');
  assert.ok(r.tokens.length > 0 && r.tokens.length < 1000);
  let n = 0;
  for await (const e of engine.submit(request('y', [1, 2], { maxTokens: 1000, ignoreEos: true })))
    if (e.type === 'token' && ++n === 3) break;
  await sleep(10);
  assert.equal(engine.stats().running, 0);
  assert.equal(engine.stats().kvPagesUsed, 0);
  assert.equal(engine.stats().abortedTotal, 2);
  await engine.close();
});

test('a runner failure fails in-flight requests with an error event and kills the engine', async () => {
  const { engine } = makeFakeEngine({ failOnCall: 3 });
  const a = collect(engine.submit(request('a', [1, 2], { maxTokens: 50 })));
  const b = collect(engine.submit(request('b', [3, 4], { maxTokens: 50 })));
  for (const r of await Promise.all([a, b])) {
    assert.equal(r.terminal.type, 'error');
    if (r.terminal.type === 'error') assert.match(r.terminal.message, /fake runner failure/);
  }
  assert.notEqual(engine.failure, null);
  assert.throws(
    () => engine.submit(request('c', [1])),
    (e) => e instanceof EngineRequestError && e.code === 'engine_dead',
  );
  await engine.close();
});

test('logprobs are the log-softmax of the model logits, top entries best first', async () => {
  const { engine, tokenizer } = makeFakeEngine();
  const { fakeLogits } = await import('../testing/fake-runner.ts');
  const r = await collect(engine.submit(request('l', [5, 6, 7], { maxTokens: 3, logprobs: 3 })));
  const history = [5, 6, 7];
  for (const e of r.events) {
    if (e.type !== 'token') continue;
    const row = new Float32Array(64);
    fakeLogits(history, 64, 0, -20, row, 0);
    const max = Math.max(...row);
    const logZ = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    const lp = e.logprobs![0];
    assert.equal(lp.tokenId, e.tokenIds[0]);
    assert.equal(lp.token, tokenizer.decode([lp.tokenId]));
    assert.ok(Math.abs(lp.logprob - (row[lp.tokenId] - logZ)) < 1e-5);
    const order = [...row.keys()].sort((x, y) => row[y] - row[x]).slice(0, 3);
    assert.deepEqual(
      lp.top.map((t) => t.tokenId),
      order,
    );
    for (const t of lp.top) assert.ok(Math.abs(t.logprob - (row[t.tokenId] - logZ)) < 1e-5);
    assert.equal(lp.top[0].tokenId, lp.tokenId, 'greedy picks the most likely token');
    history.push(e.tokenIds[0]);
  }
  await engine.close();
});

test('close() ends every open stream with finished abort and runs onClose', async () => {
  let closed = 0;
  const { engine } = makeFakeEngine({ delayMs: 2 }, { maxNumSeqs: 2, onClose: () => void closed++ });
  const streams = [0, 1, 2].map((i) => collect(engine.submit(request(`c${i}`, [1, 2, 3], { maxTokens: 1000, ignoreEos: true }))));
  await sleep(10);
  await engine.close();
  for (const r of await Promise.all(streams)) assert.equal(r.terminal.type === 'finished' && r.terminal.reason, 'abort');
  assert.equal(closed, 1);
  assert.equal(engine.stats().kvPagesUsed, 0);
  assert.throws(
    () => engine.submit(request('late', [1])),
    (e) => e instanceof EngineRequestError && e.code === 'engine_dead',
  );
});

test('block models report aligned block-decoder steps through the loop', async () => {
  const { engine } = makeFakeEngine({ kind: 'block', padFirstBlock: true, delayMs: 1 }, { maxNumSeqs: 8 });
  const streams = [];
  for (let i = 0; i < 8; i++) {
    streams.push(collect(engine.submit(request(`b${i}`, randomPrompt(i, 5 + 3 * i), { maxTokens: 30 }))));
    await sleep(3);
  }
  await Promise.all(streams);
  const m = engine.scheduler.metrics();
  assert.equal(m.blockSync, 1);
  assert.ok(engine.stats().stepFill > 0 && engine.stats().stepFill <= 1);
  await engine.close();
});

test('an id reused right after its abort starts a fresh request, untouched by the old in-flight step', async () => {
  const { engine } = makeFakeEngine({ delayMs: 5 });
  const seeded = { maxTokens: 6, temperature: 1, seed: 3 };
  const ref = await collect(engine.submit(request('ref', [9, 8, 7], seeded)));
  const first = collect(engine.submit(request('same', [1, 2, 3], { maxTokens: 100 })));
  await sleep(12); // a step is in flight
  engine.abort('same');
  const second = await collect(engine.submit(request('same', [9, 8, 7], seeded)));
  assert.equal((await first).terminal.type === 'finished' && ((await first).terminal as { reason: string }).reason, 'abort');
  assert.deepEqual(second.tokens, ref.tokens);
  await engine.close();
});

test('aborting everything while the loop yields between steps is not a stall', async () => {
  const { engine } = makeFakeEngine({ kind: 'block', padFirstBlock: true });
  for (let round = 0; round < 200; round++) {
    const s = collect(engine.submit(request(`y${round}`, [1, 2, 3], { maxTokens: 50 })));
    // the loop has been kicked and is waiting for setImmediate: abort now
    engine.abort(`y${round}`);
    assert.equal((await s).terminal.type, 'finished');
    await new Promise((r) => setImmediate(r));
    const t = collect(engine.submit(request(`z${round}`, [1, 2, 3], { maxTokens: 2 })));
    await new Promise((r) => setImmediate(r));
    engine.abort(`z${round}`);
    await t;
  }
  assert.equal(engine.failure, null);
  assert.equal(engine.stats().kvPagesUsed, 0);
  await engine.close();
});
