// Smoke test of the op table itself: the reference against itself must agree exactly, every case must
// compare real data, and a deliberately wrong backend must be caught (so the runner can fail).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, MatmulOptions, Tensor } from '../backend.ts';
import { ReferenceBackend } from '../reference/backend.ts';
import { runOpCases } from './runner.ts';
import { opCases } from './table.ts';

test('every op case runs on the reference and agrees with itself exactly', async () => {
  const results = await runOpCases(() => new ReferenceBackend());
  assert.equal(results.length, opCases.length);
  for (const r of results) {
    assert.ok(r.compared > 0, `${r.name} compared nothing`);
    assert.equal(r.maxAbsErr, 0, r.name);
  }
  const ops = new Set(results.map((r) => r.op));
  for (const op of ['matmul', 'layerNorm', 'add', 'gatherRows', 'rotary', 'kvWrite', 'attention']) assert.ok(ops.has(op as never), op);
});

test('the runner catches a backend whose matmul forgets the bias', async () => {
  class NoBias extends ReferenceBackend {
    override matmul(out: Tensor, x: Tensor, w: Tensor, opts: MatmulOptions = {}): void {
      super.matmul(out, x, w, { ...opts, bias: undefined });
    }
  }
  const b: Backend = new NoBias();
  await assert.rejects(runOpCases(() => b, { filter: ['matmul f32 M=17 K=100 N=33 bias'] }), /op cases off the reference/);
});
