// Random arrivals, aborts, finishes and tiny caches, with the scheduler's bookkeeping checked after
// every step: page reference counts equal the sequences holding them, nobody writes a page someone
// else reads, local slots are unique, budgets hold, and everything is freed at the end.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../sampler/rng.ts';
import { checkPromptFits } from '../requests.ts';
import { Scheduler } from './scheduler.ts';
import { SeqState } from './sequence.ts';

function checkInvariants(s: Scheduler, tpe: number): void {
  const ids = s.liveIds();
  const holders = new Map<number, number>();
  const slots = new Set<number>();
  let running = 0;
  for (const id of ids) {
    const seq = s.get(id)!;
    if (seq.state === SeqState.Waiting) {
      assert.equal(seq.pages.length, 0, `${id} waits holding pages`);
      assert.equal(seq.localSlot, -1);
      continue;
    }
    running++;
    const entries = Math.floor(seq.numComputed / tpe);
    assert.ok(seq.pages.length * s.pool.pageSize >= entries, `${id}: ${entries} entries in ${seq.pages.length} pages`);
    for (const p of seq.pages) holders.set(p, (holders.get(p) ?? 0) + 1);
    if (tpe > 1) {
      assert.ok(!slots.has(seq.localSlot), `local slot ${seq.localSlot} shared`);
      slots.add(seq.localSlot);
    }
  }
  assert.equal(running, s.numRunning);
  for (const [p, n] of holders) assert.equal(s.pool.refs(p), n, `page ${p}: refs ${s.pool.refs(p)} vs holders ${n}`);
  assert.equal(s.pool.usedPages, holders.size);
}

for (const tpe of [1, 4]) {
  test(`fuzz (tokensPerEntry ${tpe}): bookkeeping stays consistent through arrivals, aborts and preemptions`, () => {
    const rng = new Rng(tpe * 1000 + 1);
    const int = (n: number) => Math.floor(rng.next() * n);
    const maxBatchTokens = 48;
    const s = new Scheduler({
      tokensPerEntry: tpe,
      padFirstBlock: tpe > 1,
      contextLength: 4096,
      numPages: 24,
      pageSize: 2,
      maxNumSeqs: 6,
      maxBatchTokens,
    });
    // The engine's rule for prompts that can ever run (engine/requests.ts), as the loop applies it.
    const limits = {
      vocabSize: 1000,
      contextLength: 4096,
      tokensPerEntry: tpe,
      padFirstBlock: tpe > 1,
      numPages: 24,
      pageSize: 2,
      canScorePrompt: false,
      maxInFlight: 1e9,
    };
    const fits = (n: number) => {
      try {
        checkPromptFits(n, limits);
        return true;
      } catch {
        return false;
      }
    };
    const maxTokens = new Map<string, number>();
    // Shared stems make prefix-cache hits (and shared pages) common.
    const stems = [Array.from({ length: 40 }, (_, i) => 1 + i), Array.from({ length: 40 }, (_, i) => 100 + i)];
    let next = 0;
    let preemptions = 0;
    for (let step = 0; step < 3000; step++) {
      if (rng.next() < 0.3) {
        const id = `s${next++}`;
        const stem = stems[int(2)].slice(0, int(40));
        const prompt = [...stem, ...Array.from({ length: 1 + int(12) }, () => 1 + int(500))];
        if (fits(prompt.length)) {
          s.add(id, prompt);
          maxTokens.set(id, 1 + int(40));
        }
      }
      if (rng.next() < 0.05) {
        const live = s.liveIds();
        if (live.length) s.abort(live[int(live.length)]);
      }
      const plan = s.schedule();
      preemptions += plan.preempted.length;
      assert.ok(plan.numTokens <= maxBatchTokens);
      assert.ok(plan.items.length <= 6);
      const seen = new Set<string>();
      const written = new Map<number, string>();
      for (const it of plan.items) {
        assert.ok(!seen.has(it.seqId), 'one item per sequence');
        seen.add(it.seqId);
        const after = Math.floor((it.position + it.tokens.length) / tpe);
        assert.equal(it.kvSlots.length, after);
        // slots this step writes belong to this sequence alone
        for (let e = Math.floor(it.position / tpe); e < after; e++) {
          const slot = it.kvSlots[e];
          assert.ok(!written.has(slot), `slot ${slot} written by ${written.get(slot)} and ${it.seqId}`);
          written.set(slot, it.seqId);
          assert.equal(s.pool.refs(Math.floor(slot / s.pool.pageSize)), 1, `${it.seqId} writes into a shared page`);
        }
      }
      for (const id of plan.outOfCache) s.finish(id);
      // randomly abort one of the sequences in flight before the step's results come back
      if (rng.next() < 0.05 && plan.items.length) s.abort(plan.items[int(plan.items.length)].seqId);
      const sampled = Array.from({ length: plan.numLogitsRows }, () => 1 + int(500));
      for (const { seqId } of s.update(plan, sampled)) {
        if (s.get(seqId)!.numGenerated >= maxTokens.get(seqId)!) s.finish(seqId);
      }
      checkInvariants(s, tpe);
    }
    assert.ok(preemptions > 0, 'the cache was tight enough to preempt');
    assert.ok(s.prefixHitTokens > 0, 'shared stems hit the prefix cache');
    for (const id of s.liveIds()) s.abort(id);
    assert.equal(s.pool.usedPages, 0);
    assert.equal(s.hasWork, false);
  });
}
