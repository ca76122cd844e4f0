// The model against fixtures written by the authors' own classes (tools/reference/make_authors_fixtures.py
// imports their BlockTransformer and lm-eval wrappers from a checkout of their repository): a token decoder
// narrower than the block decoder, block lengths 2 and 8, uneven depths, sequential residual. On every
// backend: their forward() logits, their generate() tokens and step logits, and the log-probs their
// lm-eval wrappers (padded and no-pad) give prompt tokens, which echo + logprobs must reproduce.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveModel } from '../engine/resolve.ts';
import { buildModel } from '../engine/model/load.ts';
import type { BlockModel } from '../engine/model/block-runner.ts';
import { driveOne } from '../engine/testing/drive-one.ts';
import type { BackendName } from '../engine/backends.ts';
import type { BlockModelSpec } from '../engine/config/spec.ts';
import { backendOrSkip, f32, maxAbsDiff } from './fixture-io.ts';

interface Expected {
  kind: 'block';
  vocab_size: number;
  score: { input_ids: number[]; logits: string; shape: [number, number] }[];
  generate: {
    pad_first_block: boolean;
    prompt_ids: number[];
    max_new_tokens: number;
    output_ids: number[];
    step_logits: string;
    step_logits_shape: [number, number];
  }[];
  authors_scoring: { wrapper: 'pad' | 'nopad'; input_ids: number[]; logprobs: string; shape: [number, number] }[];
}

const root = join(import.meta.dirname, 'fixtures', 'authors');
const FIXTURES = existsSync(root)
  ? readdirSync(root)
      .filter((n) => existsSync(join(root, n, 'expected.json')))
      .sort()
  : [];

function logSoftmaxRows(x: Float32Array, V: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / V; r++) {
    const row = x.subarray(r * V, (r + 1) * V);
    let m = -Infinity,
      z = 0;
    for (const v of row) m = Math.max(m, v);
    for (const v of row) z += Math.exp(v - m);
    const lz = m + Math.log(z);
    for (let j = 0; j < V; j++) out[r * V + j] = row[j]! - lz;
  }
  return out;
}

test('authors fixtures are present and cover the shapes issue 16 asks for', () => {
  assert.deepEqual(FIXTURES, ['l2_uneven_depth', 'l8_sequential_nopad', 'narrow_token_decoder']);
});

const report: string[] = [];

for (const backendName of ['reference', 'cpu', 'webgpu'] as BackendName[]) {
  const tol = backendName === 'reference' ? 1e-4 : 1e-3;
  for (const fixture of FIXTURES) {
    const dir = join(root, fixture);
    test(`authors' ${fixture} on ${backendName}`, async (t) => {
      const e = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;
      const backend = await backendOrSkip(backendName, t);
      if (!backend) return;
      try {
        const resolved = await resolveModel({ model: dir });
        assert.equal(resolved.spec.kind, 'block');
        if (resolved.spec.kind !== 'block') return;
        let worst = { score: 0, generate: 0, scoring: 0 };
        const model = buildModel(backend, resolved.spec, resolved.weights);
        for (const [i, c] of e.score.entries()) {
          const diff = maxAbsDiff(await model.score(c.input_ids), f32(dir, c.logits), 'value');
          worst.score = Math.max(worst.score, diff);
          assert.ok(diff < tol, `forward() case ${i}: max |logit error| ${diff}`);
        }
        for (const [i, g] of e.generate.entries()) {
          // The model's own padding rule (from its config.yaml) and default position mode.
          assert.equal(resolved.spec.padFirstBlock, g.pad_first_block, 'config and fixture disagree on padding');
          const res = await driveOne(model, g.prompt_ids, { maxNewTokens: g.max_new_tokens });
          const want = f32(dir, g.step_logits);
          const V = g.step_logits_shape[1];
          for (let r = 0; r < Math.min(res.stepLogits.length, g.step_logits_shape[0]); r++) {
            const diff = maxAbsDiff(res.stepLogits[r]!, want.subarray(r * V, (r + 1) * V), 'value');
            worst.generate = Math.max(worst.generate, diff);
            assert.ok(diff < tol, `generate() case ${i} (prompt ${g.prompt_ids.length}): step ${r} max |logit error| ${diff}`);
          }
          assert.deepEqual(res.outputIds, g.output_ids, `generate() case ${i}: greedy tokens differ`);
        }
        model.dispose();
        for (const wrapper of ['pad', 'nopad'] as const) {
          // Their padded wrapper is the one for models trained with first-block padding, the no-pad one for
          // the others: the spec's padFirstBlock picks which one echo + logprobs reproduces.
          const spec: BlockModelSpec = { ...resolved.spec, padFirstBlock: wrapper === 'pad', promptScoring: 'authors' };
          const m = buildModel(backend, spec, resolved.weights) as BlockModel;
          for (const c of e.authors_scoring.filter((x) => x.wrapper === wrapper)) {
            const { logits, first } = await m.scoreTokens(c.input_ids);
            assert.equal(first, wrapper === 'pad' ? 1 : spec.blockLength, 'first scored token');
            assert.equal(logits.length / e.vocab_size, c.shape[0], 'one row per scored token');
            const diff = maxAbsDiff(logSoftmaxRows(logits, e.vocab_size), f32(dir, c.logprobs), 'value');
            worst.scoring = Math.max(worst.scoring, diff);
            assert.ok(diff < tol, `${wrapper} wrapper, text of ${c.input_ids.length}: max |logprob error| ${diff}`);
          }
          m.dispose();
        }
        report.push(
          `${fixture} on ${backendName}: max |error| forward ${worst.score.toExponential(2)}, generate ${worst.generate.toExponential(2)}, wrapper logprobs ${worst.scoring.toExponential(2)}`,
        );
        worst = { score: 0, generate: 0, scoring: 0 };
      } finally {
        backend.dispose();
      }
    });
  }
}

test('authors parity summary', () => {
  for (const line of report) console.log(`# ${line}`);
});
