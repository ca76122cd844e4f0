// Smoke test of the op table itself: the reference against itself must agree exactly, every case must
// compare real data, and a deliberately wrong backend must be caught (so the runner can fail).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, MatmulOptions, Tensor } from '../backend.ts';
import { ReferenceBackend } from '../reference/backend.ts';
import { runOpCases } from './runner.ts';
import { opCases } from './table.ts';
import type { SamplingPasses } from '../sampling.ts';
import { expNeg } from '../fast-exp.ts';

test('every op case runs on the reference and agrees with itself exactly', async () => {
  const results = await runOpCases(() => new ReferenceBackend());
  assert.equal(results.length, opCases.length);
  for (const r of results) {
    assert.ok(r.compared > 0, `${r.name} compared nothing`);
    assert.equal(r.maxAbsErr, 0, r.name);
  }
  const ops = new Set(results.map((r) => r.op));
  for (const op of ['matmul', 'layerNorm', 'add', 'gatherRows', 'rotary', 'kvWrite', 'attention', 'sampling'])
    assert.ok(ops.has(op as never), op);
});

test('the runner catches a backend whose matmul forgets the bias', async () => {
  class NoBias extends ReferenceBackend {
    override matmul(out: Tensor, x: Tensor, w: Tensor, opts: MatmulOptions = {}): void {
      super.matmul(out, x, w, { ...opts, bias: undefined });
    }
  }
  const b: Backend = new NoBias();
  await assert.rejects(
    runOpCases(() => b, { filter: ['matmul f32 M=17 K=100 N=33 bias'] }),
    /op cases off the reference/,
  );
});

test('the sampling cases catch passes that sum in another order or skip the last histogram bin', async () => {
  class OneLane extends ReferenceBackend {
    override samplingPasses(): SamplingPasses {
      const p = super.samplingPasses();
      return Object.assign(Object.create(p) as SamplingPasses, {
        expSum(logits: Float32Array, offset: number, V: number, max: number): number {
          let s = 0; // one running sum: a different double than the four lanes' (s0 + s1) + (s2 + s3)
          for (let i = 0; i < V; i++) s += expNeg(max - logits[offset + i]!);
          return s;
        },
      });
    }
  }
  class ShortCounts extends ReferenceBackend {
    override samplingPasses(): SamplingPasses {
      const p = super.samplingPasses();
      return Object.assign(Object.create(p) as SamplingPasses, {
        binCounts(logits: Float32Array, offset: number, V: number, max: number, scale: number, floor: number, counts: Int32Array): void {
          const last = counts[counts.length - 1]!;
          p.binCounts(logits, offset, V, max, scale, floor, counts);
          counts[counts.length - 1] = last; // leaves the never-counted bin as it found it
        },
      });
    }
  }
  await assert.rejects(
    runOpCases(() => new OneLane(), { filter: ['sampling spread V=1027'] }),
    /sampling spread V=1027 offset=1: output \d+/,
  );
  await assert.rejects(
    runOpCases(() => new ShortCounts(), { filter: ['sampling specials V=100 '] }),
    /op cases off the reference/,
  );
});
