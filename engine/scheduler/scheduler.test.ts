// The scheduler alone: hand-written sampled tokens, no runner, no model.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StepPlan } from './plan.ts';
import { Scheduler, type SchedulerConfig } from './scheduler.ts';
import { SeqState } from './sequence.ts';

function make(over: Partial<SchedulerConfig> = {}): Scheduler {
  return new Scheduler({
    tokensPerEntry: 4,
    padFirstBlock: true,
    contextLength: 4096,
    numPages: 256,
    pageSize: 4,
    maxNumSeqs: 16,
    maxBatchTokens: 64,
    ...over,
  });
}

const prompt = (n: number, base = 1) => Array.from({ length: n }, (_, i) => base + (i % 50));

interface DriveOptions {
  maxTokens: number;
  /** step -> requests arriving before that step's schedule() */
  arrivals?: Map<number, [string, number[]][]>;
  onPlan?: (plan: StepPlan, step: number) => void;
  maxSteps?: number;
}

/** Runs schedule/update until everything finished, sampling token 7 and finishing at maxTokens. */
function drive(s: Scheduler, o: DriveOptions): { firstTokenStep: Map<string, number>; admittedStep: Map<string, number>; steps: number } {
  const firstTokenStep = new Map<string, number>();
  const admittedStep = new Map<string, number>();
  let step = 0;
  for (; step < (o.maxSteps ?? 10000); step++) {
    for (const [id, p] of o.arrivals?.get(step) ?? []) s.add(id, p);
    if (!s.hasWork && ![...(o.arrivals?.keys() ?? [])].some((k) => k > step)) break;
    const plan = s.schedule();
    for (const id of plan.started) admittedStep.set(id, step);
    o.onPlan?.(plan, step);
    const sampled = new Array(plan.numLogitsRows).fill(7);
    for (const { seqId } of s.update(plan, sampled)) {
      if (!firstTokenStep.has(seqId)) firstTokenStep.set(seqId, step);
      const seq = s.get(seqId)!;
      if (seq.numGenerated >= o.maxTokens) s.finish(seqId);
    }
  }
  return { firstTokenStep, admittedStep, steps: step };
}

test('block-synchronous packing: late arrivals join the batch phase, so block-decoder steps are shared', () => {
  const arrivals = new Map<number, [string, number[]][]>([
    [
      0,
      [
        ['a', prompt(8)],
        ['b', prompt(5)],
        ['c', prompt(16)],
      ],
    ],
    [3, [['d', prompt(7)]]],
    [
      6,
      [
        ['e', prompt(12)],
        ['f', prompt(3)],
      ],
    ],
    [9, [['g', prompt(21)]]],
    [14, [['h', prompt(30)]]],
  ]);
  const aligned = make();
  const r = drive(aligned, { maxTokens: 40, arrivals });
  const m = aligned.metrics();
  assert.ok(m.blockSteps > 5);
  assert.equal(m.blockSync, 1, 'every block-decoder step ran for all decoding sequences');
  // the hold-back costs at most L-1 steps before the first token
  for (const [id, first] of r.firstTokenStep)
    assert.ok(first - r.admittedStep.get(id)! <= 3, `${id} waited ${first - r.admittedStep.get(id)!} steps`);

  const free = make({ alignPhases: false });
  drive(free, { maxTokens: 40, arrivals });
  assert.ok(free.metrics().blockSync < 0.8, `without alignment phases spread (blockSync ${free.metrics().blockSync})`);
  // aligned, the block decoder runs in far fewer steps
  assert.ok(m.blockDecoderStepFraction < 0.45, `aligned: block decoder in ${m.blockDecoderStepFraction} of steps`);
  assert.ok(
    free.metrics().blockDecoderStepFraction > 0.6,
    `unaligned: block decoder in ${free.metrics().blockDecoderStepFraction} of steps`,
  );
});

test('unpadded prompts of any length are aligned too', () => {
  const arrivals = new Map<number, [string, number[]][]>();
  for (let i = 0; i < 12; i++) arrivals.set(i * 2, [[`s${i}`, prompt(3 + i * 5)]]);
  const s = make({ padFirstBlock: false });
  const r = drive(s, { maxTokens: 30, arrivals });
  assert.equal(s.metrics().blockSync, 1);
  // whole blocks wait for a block step (< L steps), then the tail for its phase (< L steps)
  for (const [id, first] of r.firstTokenStep)
    assert.ok(first - r.admittedStep.get(id)! <= 6, `${id} waited ${first - r.admittedStep.get(id)!} steps`);
  assert.ok(s.metrics().blockDecoderStepFraction < 0.4, `block decoder in ${s.metrics().blockDecoderStepFraction} of steps`);
});

test('chunked prefill: a long prompt never delays decoding, steps stay within the token budget', () => {
  const s = make({ maxBatchTokens: 32 });
  const arrivals = new Map<number, [string, number[]][]>([
    [
      0,
      [
        ['d1', prompt(4)],
        ['d2', prompt(8)],
        ['d3', prompt(6)],
      ],
    ],
    [5, [['long', prompt(501)]]],
  ]);
  let longSteps = 0;
  const r = drive(s, {
    maxTokens: 50,
    arrivals,
    onPlan: (plan, step) => {
      assert.ok(plan.numTokens <= 32, `step ${step} fed ${plan.numTokens} tokens`);
      const decoding = ['d1', 'd2', 'd3'].filter((id) => s.get(id)?.state === SeqState.Decoding);
      for (const id of decoding)
        assert.ok(
          plan.items.some((it) => it.seqId === id),
          `step ${step}: ${id} was not fed`,
        );
      for (const it of plan.items) {
        if (it.seqId !== 'long' || s.get('long')!.state !== SeqState.Prefilling) continue;
        longSteps++;
        assert.equal(it.position % 4, 0, 'chunks start on block boundaries');
        if (!it.wantLogits) assert.equal(it.tokens.length % 4, 0, 'non-final chunks are whole blocks');
      }
    },
  });
  assert.ok(longSteps >= Math.ceil(504 / 32), `the long prompt was split (${longSteps} chunks)`);
  // alignment holds back only the last block: prefill still advances every step (28 tokens beside 3 decodes)
  const ttft = r.firstTokenStep.get('long')! - r.admittedStep.get('long')!;
  assert.ok(ttft <= Math.ceil(504 / 28) + 4, `long prompt's first token after ${ttft} steps`);
});

test('FCFS admission: the head is never skipped, and everyone finishes', () => {
  // 6 pages of 16 tokens: the 60-token head needs 4 pages at once while r0 holds 3; the small ones
  // behind it would fit but must wait their turn.
  const s = make({ numPages: 6, maxNumSeqs: 4, maxBatchTokens: 256, admissionReservePages: 0 });
  s.add('r0', prompt(40));
  s.add('big', prompt(60));
  s.add('r1', prompt(4));
  s.add('r2', prompt(4));
  const order: string[] = [];
  drive(s, { maxTokens: 24, onPlan: (plan) => order.push(...plan.started) });
  assert.deepEqual(order, ['r0', 'big', 'r1', 'r2']);
});

test('preemption takes the newest sequence, frees its pages, and requeues it ahead of later arrivals', () => {
  // 4 pages x 4 entries x 4 tokens: each sequence grows to 2 pages; three cannot all fit.
  const s = make({ numPages: 4, pageSize: 4, admissionReservePages: 0 });
  s.add('old', prompt(4));
  s.add('mid', prompt(4));
  s.add('new', prompt(4));
  const preempted: string[] = [];
  const restarts: string[] = []; // first prefill feed of 'new' after its preemption, and of 'late'
  let lateAdded = false;
  drive(s, {
    maxTokens: 60,
    onPlan: (plan) => {
      preempted.push(...plan.preempted);
      if (plan.preempted.length && !lateAdded) {
        s.add('late', prompt(4));
        lateAdded = true;
      }
      for (const it of plan.items) {
        const isPrefill = s.get(it.seqId)?.state === SeqState.Prefilling;
        if (isPrefill && lateAdded && (it.seqId === 'new' || it.seqId === 'late') && !restarts.includes(it.seqId)) restarts.push(it.seqId);
      }
      assert.ok(s.pool.usedPages <= 4);
    },
  });
  assert.equal(preempted[0], 'new');
  assert.ok(s.preemptedTotal >= 1);
  assert.deepEqual(restarts, ['new', 'late'], 'the preempted sequence is readmitted before the later arrival');
  assert.equal(s.pool.usedPages, 0);
});

test('abort frees pages and the local slot at once, in any state', () => {
  const s = make();
  s.add('a', prompt(40));
  s.add('b', prompt(40));
  s.add('w', prompt(40));
  const plan = s.schedule();
  assert.equal(plan.items.length, 2); // budget 64: a (40), b (24 of its 40); w waits
  const used = s.pool.usedPages;
  assert.ok(used > 0);
  const aPages = s.get('a')!.pages.length;
  assert.equal(s.abort('a'), true);
  assert.equal(s.pool.usedPages, used - aPages);
  assert.equal(s.abort('w'), true);
  assert.equal(s.abort('w'), false, 'a second abort is a no-op');
  s.update(plan, [7]); // a step that ran while they were aborted is applied to the others only
  assert.equal(s.abort('b'), true);
  assert.equal(s.pool.usedPages, 0);
  assert.equal(s.localSlots!.used, 0);
  assert.equal(s.hasWork, false);
});

test('prefix cache: equal prompts share pages; the last complete block is always recomputed', () => {
  const s = make({ pageSize: 2, alignPhases: false }); // a page = 2 blocks = 8 tokens
  const p = prompt(32); // 8 blocks = 4 pages
  s.add('x', p);
  let plan = s.schedule();
  s.update(plan, [7]);
  s.add('y', p);
  plan = s.schedule();
  const y = plan.items.find((it) => it.seqId === 'y')!;
  // the hit may cover at most 7 of 8 blocks -> 3 full pages = 24 tokens
  assert.equal(y.position, 24);
  assert.deepEqual(y.tokens, p.slice(24));
  const xs = s.get('x')!.pages;
  const ys = s.get('y')!.pages;
  assert.deepEqual(ys.slice(0, 3), xs.slice(0, 3));
  for (const page of xs.slice(0, 3)) assert.equal(s.pool.refs(page), 2);
  assert.notEqual(ys[3], xs[3]);
  // a different prefix with the same later tokens does not hit
  s.add('z', [99, ...p.slice(1)]);
  plan = s.schedule();
  assert.equal(plan.items.find((it) => it.seqId === 'z')!.position, 0);
});

test('prefix cache: released pages stay cached until the pool needs them (LRU), and are not counted as used', () => {
  const s = make({ pageSize: 1, numPages: 12, admissionReservePages: 0 }); // a page = one block of 4
  s.add('a', prompt(16, 1));
  s.update(s.schedule(), [7]);
  s.finish('a');
  assert.equal(s.pool.usedPages, 0);
  assert.ok(s.pool.cachedPages >= 4);
  // a second prompt fills the pool: cached pages are evicted instead of failing
  s.add('b', prompt(44, 100));
  const plan = s.schedule();
  assert.equal(plan.items.find((it) => it.seqId === 'b')!.position, 0);
  assert.equal(s.get('b')!.pages.length, 11);
  s.update(plan, [7]);
  s.finish('b');
  // 'a' was (partly) evicted: its prompt now hits fewer than its 3 cacheable blocks
  s.add('a2', prompt(16, 1));
  const hit = s.schedule().items.find((it) => it.seqId === 'a2')!.position;
  assert.ok(hit < 12, `hit ${hit} tokens after eviction`);
});

test('step fill: a full batch of decoders fills every step', () => {
  const s = make({ maxNumSeqs: 4, padFirstBlock: true });
  for (let i = 0; i < 4; i++) s.add(`s${i}`, prompt(8));
  drive(s, { maxTokens: 30 });
  const m = s.metrics();
  assert.ok(m.stepFill > 0.95, `stepFill ${m.stepFill}`);
  assert.equal(m.blockSync, 1);
});

test('vanilla models: one entry per token, no local slots, no block metrics', () => {
  const s = make({ tokensPerEntry: 1, padFirstBlock: false });
  s.add('v', prompt(10));
  const plan = s.schedule();
  assert.equal(plan.items[0].kvSlots.length, 10);
  assert.equal(plan.items[0].localSlot, undefined);
  s.update(plan, [7]);
  const next = s.schedule();
  assert.deepEqual(next.items[0].tokens, [7]);
  assert.equal(next.items[0].position, 10);
  assert.equal(next.items[0].kvSlots.length, 11);
  assert.ok(Number.isNaN(s.metrics().blockSync));
});

test('a sequence that fills the whole pool alone is reported out of cache', () => {
  const s = make({ numPages: 2, pageSize: 2, tokensPerEntry: 1, padFirstBlock: false, maxBatchTokens: 64 });
  s.add('solo', prompt(3));
  const out: string[] = [];
  drive(s, {
    maxTokens: 100,
    maxSteps: 50,
    onPlan: (plan) => {
      out.push(...plan.outOfCache);
      for (const id of plan.outOfCache) s.finish(id);
    },
  });
  assert.deepEqual(out, ['solo']);
  assert.equal(s.pool.usedPages, 0);
});

test('padding: to a multiple of L with first-block padding; otherwise only prompts shorter than a block', () => {
  const padded = make({ padFirstBlock: true });
  assert.deepEqual(
    [1, 3, 4, 5, 8].map((n) => padded.padFor(n)),
    [3, 1, 0, 3, 0],
  );
  const unpadded = make({ padFirstBlock: false });
  assert.deepEqual(
    [1, 3, 4, 5, 8].map((n) => unpadded.padFor(n)),
    [3, 1, 0, 0, 0],
  );
  unpadded.add('short', [5, 6]);
  const item = unpadded.schedule().items[0];
  assert.deepEqual(item.tokens, [0, 0, 5, 6]);
  assert.equal(unpadded.get('short')!.numPromptTokens, 2);
  const vanilla = make({ tokensPerEntry: 1, padFirstBlock: false });
  assert.equal(vanilla.padFor(1), 0);
});

test('sequences decoding in lockstep each keep a contiguous run of KV pages', () => {
  // distinct prompts: a prefix-cache hit would start a sequence on another one's pages
  const s = make({ numPages: 256, pageSize: 4, padFirstBlock: false });
  const ids = ['a', 'b', 'c', 'd'];
  const arrivals = new Map<number, [string, number[]][]>([
    [0, ids.map((id, i) => [id, prompt(20 + i, 100 * (i + 1))] as [string, number[]])],
  ]);
  const pagesSeen = new Map<string, number[]>();
  drive(s, {
    maxTokens: 120,
    arrivals,
    onPlan: () => {
      for (const id of ids) {
        const seq = s.get(id);
        if (seq?.pages.length) pagesSeen.set(id, [...seq.pages]);
      }
    },
  });
  for (const id of ids) {
    const pages = pagesSeen.get(id)!;
    assert.ok(pages.length >= 8, `${id} held ${pages.length} pages`);
    for (let i = 1; i < pages.length; i++) assert.equal(pages[i], pages[i - 1]! + 1, `${id}: pages ${pages.join(',')}`);
  }
});
