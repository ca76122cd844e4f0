// The trained demo pair shipped in models/ (tools/train): the engine must reproduce the training
// script's own evaluation (tools/train/export.py wrote it to eval.json beside each model) and its
// greedy continuation of a fixed prompt, so a silent numerics change in either shows up here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalEngine } from '../engine/create.ts';
import type { Engine } from '../engine/api.ts';
import { enginePerplexity, greedy, validationWindows } from '../engine/bench/quality.ts';
import { shippedModelDir } from '../engine/shipped.ts';
import { blockSpecFromAuthors } from '../engine/config/authors.ts';
import { ConfigError } from '../engine/config/spec.ts';
import { resolveSpec, ResolveError } from '../engine/resolve.ts';
import { parse as parseYaml } from 'yaml';
import type { PromptScoring } from '../engine/config/padding.ts';

interface Figure {
  tokens: number;
  nll_sum: number;
  ppl: number;
}
interface EvalJson {
  model: string;
  /** Block: positions 4..255 of each window, unpadded. Vanilla: positions 1..255. */
  subset: Figure & { windows: number; ids: number[][] };
  /** Block only: each window after L-1 pad tokens (the authors' lm-eval rule), positions 1..255. */
  authors_padded?: { subset: Figure };
  prompt: string;
  prompt_ids: number[];
  greedy_ids: number[];
}

const EOS = 0;

async function open(name: string, promptScoring: PromptScoring = 'authors'): Promise<{ engine: Engine; expected: EvalJson }> {
  const dir = shippedModelDir(name)!;
  const expected = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as EvalJson;
  const { engine } = await createLocalEngine({ model: name, backend: 'cpu', kvCacheMb: 16, maxNumSeqs: 4, maxQueue: 64, promptScoring });
  return { engine, expected };
}

function assertClose(got: { tokens: number; ppl: number }, want: Figure): void {
  assert.equal(got.tokens, want.tokens, 'scored token count');
  const rel = Math.abs(got.ppl - want.ppl) / want.ppl;
  // The issue asks for 1e-3; f32 on both sides agree to ~1e-8, and 1e-4 still tells position conventions apart.
  assert.ok(rel < 1e-4, `engine ppl ${got.ppl} vs training script ${want.ppl} (relative ${rel.toExponential(2)})`);
}

for (const name of ['demo-block', 'demo-vanilla']) {
  test(`${name}: engine perplexity on the fixed validation subset equals the training script's (relative 1e-4)`, async () => {
    const { engine, expected } = await open(name);
    try {
      assert.equal(engine.info.modelName, expected.model);
      // The engine's default prompt scoring (the authors' rule) against the script's figure for it.
      const want = name === 'demo-block' ? expected.authors_padded!.subset : expected.subset;
      assertClose(await enginePerplexity(engine, expected.subset.ids), want);
    } finally {
      await engine.close();
    }
  });

  if (name === 'demo-block') {
    test("demo-block: scored as decoded (--prompt-scoring decoding, the config's contiguous positions, no padding of whole windows) equals the training forward on the bare windows", async () => {
      const { engine, expected } = await open(name, 'decoding');
      try {
        assertClose(await enginePerplexity(engine, expected.subset.ids), expected.subset);
      } finally {
        await engine.close();
      }
    });
  }

  test(`${name}: the engine tokenizes the held-out split exactly as training did`, async () => {
    const { engine, expected } = await open(name);
    try {
      const windows = validationWindows(engine.tokenizer).slice(0, expected.subset.windows);
      assert.deepEqual(windows, expected.subset.ids);
      assert.deepEqual(engine.tokenizer.encode(expected.prompt), expected.prompt_ids);
    } finally {
      await engine.close();
    }
  });

  test(`${name}: greedy continuation of a fixed prompt is pinned (token ids from the training script)`, async () => {
    const { engine, expected } = await open(name);
    try {
      const ids: number[] = [];
      for await (const e of engine.submit({ id: 'pin', promptIds: expected.prompt_ids, sampling: greedy(expected.greedy_ids.length) })) {
        if (e.type === 'error') throw new Error(e.message);
        if (e.type === 'token') ids.push(...e.tokenIds);
      }
      // The script keeps a final EOS; the engine may or may not emit it as a token.
      const strip = (xs: number[]) => (xs[xs.length - 1] === EOS ? xs.slice(0, -1) : xs);
      assert.deepEqual(strip(ids), strip(expected.greedy_ids));
    } finally {
      await engine.close();
    }
  });
}

test('npm start default: the shipped block model, flagged demo', async () => {
  const { engine } = await createLocalEngine({ backend: 'cpu', kvCacheMb: 16, maxNumSeqs: 2, maxQueue: 8 });
  try {
    assert.equal(engine.info.modelName, 'blockserve-demo-block-2m');
    assert.equal(engine.info.kind, 'block');
    assert.equal(engine.info.demo, true);
  } finally {
    await engine.close();
  }
});

test('config position_mode: the shipped block model decodes with training positions; a bad value is named', () => {
  const tree = parseYaml(readFileSync(join(shippedModelDir('demo-block')!, 'config.yaml'), 'utf8')) as Record<string, unknown>;
  assert.equal(blockSpecFromAuthors(tree).positionMode, 'contiguous');
  assert.equal(blockSpecFromAuthors(tree, { positionMode: 'reference' }).positionMode, 'reference', 'the flag wins');
  const { position_mode: _, ...without } = tree;
  assert.equal(blockSpecFromAuthors(without).positionMode, 'reference', "absent: the authors' generate() convention");
  assert.throws(
    () => blockSpecFromAuthors({ ...tree, position_mode: 'training' }),
    (e: Error) => e instanceof ConfigError && /position_mode/.test(e.message) && /"training"/.test(e.message),
  );
});

test('--model names: demo-block / demo-vanilla and the full names resolve to models/; unknown names list the shipped ones', () => {
  assert.equal(resolveSpec({ model: 'demo-vanilla' }).spec.name, 'blockserve-demo-vanilla-2m');
  assert.equal(resolveSpec({ model: 'blockserve-demo-block-2m' }).spec.kind, 'block');
  assert.throws(
    () => resolveSpec({ model: 'demo-blok' }),
    (e: Error) => e instanceof ResolveError && /demo-blok/.test(e.message) && /demo-block, demo-vanilla/.test(e.message),
  );
});
