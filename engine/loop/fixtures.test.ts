// The engine loop over the real models (engine/model) on the parity fixtures, reference backend: every
// greedy generation the Python reference recorded (HF transformers, each prompt alone) must come out
// token for token when all prompts of a configuration run together in one engine with staggered
// arrivals, after preemption in a cache too small for them, and through prefix-cache hits.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TokenizerLike } from '../api.ts';
import { makeBackend } from '../backends.ts';
import { buildModel } from '../model/load.ts';
import { resolveModel } from '../resolve.ts';
import { defaultSamplingParams } from '../sampler/sampler.ts';
import { collect } from '../testing/harness.ts';
import { EngineLoop } from './engine-loop.ts';

interface GenerateCase {
  position_mode?: 'reference' | 'contiguous';
  pad_first_block?: boolean;
  prompt_ids: number[];
  max_new_tokens: number;
  output_ids: number[];
}

const root = join(import.meta.dirname, '..', '..', 'test', 'fixtures');

/** Token ids as text: the fixtures have no tokenizer, and the loop only needs decode for deltas. */
const idTokenizer = (vocabSize: number): TokenizerLike => ({
  vocabSize,
  encode: () => {
    throw new Error('not used');
  },
  decode: (ids) => ids.map((i) => `<${i}>`).join(''),
});

async function engineFor(dir: string, g: GenerateCase, opts: { numPages: number; pageSize: number; maxNumSeqs: number }) {
  const resolved = await resolveModel({ model: dir });
  const spec = resolved.spec.kind === 'block'
    ? { ...resolved.spec, positionMode: g.position_mode === 'contiguous' ? ('contiguous' as const) : resolved.spec.positionMode, padFirstBlock: g.pad_first_block ?? resolved.spec.padFirstBlock }
    : resolved.spec;
  const backend = await makeBackend('reference');
  const model = buildModel(backend, spec, resolved.weights);
  model.allocateCache(opts.numPages * opts.pageSize, opts.maxNumSeqs);
  const tok = idTokenizer(spec.vocabSize);
  const engine = new EngineLoop(model, {
    info: { modelName: 'fixture', kind: model.info.kind, contextLength: model.info.contextLength, vocabSize: model.info.vocabSize, eosTokenId: model.info.eosTokenId, demo: false },
    tokenizer: tok,
    detokenizer: () => ({ push: (ids) => tok.decode(ids), flush: () => '' }),
    ...opts,
    maxQueue: 64,
    maxBatchTokens: 64,
    onClose: () => {
      model.dispose();
      backend.dispose();
    },
  });
  return engine;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const fixture of ['block_tiny', 'vanilla_tiny']) {
  const dir = join(root, fixture);
  const present = existsSync(join(dir, 'expected.json'));
  const cases: GenerateCase[] = present ? JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')).generate : [];
  // Position mode and padding are per model, so cases are grouped by them.
  const groups = new Map<string, GenerateCase[]>();
  for (const g of cases) {
    const key = `${g.position_mode ?? '-'} pad=${g.pad_first_block ?? '-'}`;
    groups.set(key, [...(groups.get(key) ?? []), g]);
  }
  for (const [key, group] of groups) {
    test(`${fixture} (${key}): the engine reproduces the reference greedy runs at batch N`, { skip: !present && 'fixture missing' }, async () => {
      for (const [label, opts] of [
        ['roomy cache', { numPages: 64, pageSize: 4, maxNumSeqs: 8 }],
        ['tight cache (preemption)', { numPages: fixture === 'block_tiny' ? 4 : 22, pageSize: 4, maxNumSeqs: 8 }],
        ['one-entry pages (prefix hits)', { numPages: 256, pageSize: 1, maxNumSeqs: 8 }],
      ] as const) {
        const engine = await engineFor(dir, group[0], opts);
        const runs = [];
        // Each prompt twice (the second run can hit the prefix cache), arrivals staggered.
        for (const [i, g] of [...group, ...group].entries()) {
          runs.push(collect(engine.submit({ id: `${i}`, promptIds: g.prompt_ids, sampling: defaultSamplingParams({ maxTokens: g.max_new_tokens }) })));
          await sleep(i % 3);
        }
        const results = await Promise.all(runs);
        results.forEach((r, i) => {
          const g = group[i % group.length];
          assert.deepEqual(r.tokens, g.output_ids, `${label}: prompt of ${g.prompt_ids.length} tokens (run ${i})`);
          const reason = r.terminal.type === 'finished' ? r.terminal.reason : r.terminal.type;
          assert.equal(reason, g.output_ids.at(-1) === 0 ? 'stop' : 'length');
        });
        const s = engine.stats();
        assert.equal(s.kvPagesUsed, 0);
        if (label.startsWith('tight')) assert.ok(s.preemptedTotal > 0, `${label}: expected preemptions`);
        if (label.startsWith('one-entry') && group.some((g) => g.prompt_ids.length >= 8)) assert.ok(engine.scheduler.prefixHitTokens > 0, `${label}: expected prefix-cache hits`);
        await engine.close();
      }
    });
  }

  test(`${fixture}: seeded sampling is identical at batch 1 and batch N`, { skip: !present && 'fixture missing' }, async () => {
    const g = cases[0];
    const sampling = defaultSamplingParams({ maxTokens: 24, temperature: 1, topP: 0.95, seed: 2024, ignoreEos: true });
    const opts = { numPages: 64, pageSize: 4, maxNumSeqs: 8 };
    const alone = await engineFor(dir, g, opts);
    const ref = await collect(alone.submit({ id: 'a', promptIds: g.prompt_ids, sampling }));
    await alone.close();
    const batch = await engineFor(dir, g, opts);
    const runs = [0, 1, 2, 3].map((i) => collect(batch.submit({ id: `b${i}`, promptIds: i === 2 ? g.prompt_ids : cases[i % cases.length].prompt_ids.concat([7, 9, 11]), sampling: i === 2 ? sampling : { ...sampling, seed: i } })));
    const out = await Promise.all(runs);
    assert.deepEqual(out[2].tokens, ref.tokens);
    await batch.close();
  });
}
