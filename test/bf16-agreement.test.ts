// bf16 compute (--compute-dtype bf16 with a bf16 KV cache) against the same parity fixtures the f32
// paths must match exactly (test/parity.test.ts keeps f32). bf16 rounds every GEMM input, so logits
// move by about 2^-8 of their size and a greedy token can flip where two logits are that close; the
// test bounds the logit error where the paths agree, and prints the greedy-agreement figure: the share
// of reference tokens reproduced before the first divergence, and how many cases ran to the end
// unchanged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveModel } from '../engine/resolve.ts';
import { buildModel } from '../engine/model/load.ts';
import type { Model } from '../engine/model/load.ts';
import { driveOne } from '../engine/testing/drive-one.ts';
import { specForFixtureCase } from '../engine/testing/fixture-spec.ts';
import { CpuBackend, cpuBackendAvailable } from '../kernels/cpu/backend.ts';
import { f32, maxAbsDiff } from './fixture-io.ts';

interface Expected {
  score: { input_ids: number[]; logits: string; shape: [number, number] }[];
  generate: {
    position_mode?: 'reference' | 'contiguous';
    pad_first_block?: boolean;
    prompt_ids: number[];
    max_new_tokens: number;
    output_ids: number[];
    step_logits: string;
    step_logits_shape: [number, number];
  }[];
}

const FIXTURES = ['block_tiny', 'block_tiny_bf16', 'vanilla_tiny'];
const root = join(import.meta.dirname, 'fixtures');

/**
 * Bound on max |logit - reference| in bf16, relative to the largest |reference logit| of the case (about
 * 7 in these fixtures). Every GEMM input is rounded to 8 significant bits (2^-9 relative) and a logit
 * passes through some ten GEMMs and the attention of each layer; measured on Zen 4: 0.7-2.0 %. 4 %
 * leaves twice that as headroom, and a kernel that drops or mis-indexes a term is off by O(1): > 15 %.
 */
const BF16_LOGIT_REL_TOL = 0.04;

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

const report: string[] = [];

for (const fixture of FIXTURES) {
  test(`${fixture} in bf16 compute: logits near the reference, greedy agreement printed`, async (t) => {
    if (!cpuBackendAvailable()) return t.skip('the native CPU backend is not built');
    const backend = new CpuBackend({ computeDtype: 'bf16', kvDtype: 'bf16' });
    if (backend.computeDtype() !== 'bf16') return t.skip(`this CPU cannot run bf16 compute (best path: ${backend.info().cpuIsa})`);
    const dir = join(root, fixture);
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;
    const resolved = await resolveModel({ model: dir });
    let worstScore = 0,
      worstGen = 0,
      agreed = 0,
      total = 0,
      whole = 0;
    for (const c of expected.score) {
      const got = await buildModel(backend, resolved.spec, resolved.weights).score(c.input_ids);
      const want = f32(dir, c.logits);
      worstScore = Math.max(worstScore, maxAbsDiff(got, want) / maxAbs(want));
    }
    for (const g of expected.generate) {
      const model: Model = buildModel(backend, specForFixtureCase(resolved.spec, g), resolved.weights);
      const res = await driveOne(model, g.prompt_ids, { maxNewTokens: g.max_new_tokens });
      let same = 0;
      while (same < g.output_ids.length && res.outputIds[same] === g.output_ids[same]) same++;
      // Step logits are comparable up to and including the first divergent step (same context so far).
      const want = f32(dir, g.step_logits),
        V = g.step_logits_shape[1];
      for (let r = 0; r <= Math.min(same, g.step_logits_shape[0] - 1, res.stepLogits.length - 1); r++) {
        const row = want.subarray(r * V, (r + 1) * V);
        worstGen = Math.max(worstGen, maxAbsDiff(res.stepLogits[r]!, row) / maxAbs(row));
      }
      agreed += same;
      total += g.output_ids.length;
      if (same === g.output_ids.length) whole++;
    }
    backend.dispose();
    new CpuBackend(); // default pool and path for later tests
    report.push(
      `${fixture} bf16: max |logit error| / max |logit|: score ${(100 * worstScore).toFixed(2)}%, generate ${(100 * worstGen).toFixed(2)}%; ` +
        `greedy agreement ${agreed}/${total} tokens before the first divergence (${((100 * agreed) / total).toFixed(1)}%), ${whole}/${expected.generate.length} cases identical`,
    );
    assert.ok(worstScore < BF16_LOGIT_REL_TOL, `score logits off by ${(100 * worstScore).toFixed(2)}% of the largest logit in bf16`);
    assert.ok(worstGen < BF16_LOGIT_REL_TOL, `generation step logits off by ${(100 * worstGen).toFixed(2)}% of the largest logit in bf16`);
    // bf16 must really be in use: f32-exact logits (parity: 1e-3 absolute) would mean the path never ran.
    assert.ok(worstScore > 1e-3, `bf16 score logits match the f32 reference to ${worstScore}: bf16 compute did not run`);
  });
}

test('bf16 agreement summary', () => {
  for (const line of report) console.log(`# ${line}`);
});
