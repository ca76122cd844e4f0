// The first-block padding rule: one answer per preset whichever way the model is configured (built-in
// preset, the authors' YAML, the same tree as JSON beside a checkpoint), and one function for the
// scheduler and the single-sequence driver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { authorsTreeForPreset, presetSpec } from './presets.ts';
import { blockSpecFromAuthors } from './authors.ts';
import { firstBlockPad, scoringPad } from './padding.ts';
import { resolveSpec } from '../resolve.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import { driveOne } from '../testing/drive-one.ts';
import type { Runner } from '../runner-api.ts';

const TRAINED_WITH_PADDING: Record<string, boolean> = {
  block_main_b4_5: true,
  block_main_b4_19: true,
  block_main_b4_85: true,
  block_main_b4_300: false,
  block_main_b4_800: false,
  'block_main_b4_1.2b': false,
};

test('each block preset pads the same through --preset, an authors YAML and a JSON config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'padding-'));
  try {
    for (const [name, pad] of Object.entries(TRAINED_WITH_PADDING)) {
      const tree = authorsTreeForPreset(name)!;
      // Their 300M+ YAMLs have no random_pad_first_block key at all (17842dd), the smaller ones `true`.
      assert.equal('random_pad_first_block' in tree, pad, `${name}: key present iff trained with padding`);
      writeFileSync(join(dir, `${name}.yaml`), stringify(tree));
      writeFileSync(join(dir, `${name}.json`), JSON.stringify(tree));
      const forms = {
        preset: presetSpec(name),
        yaml: resolveSpec({ config: join(dir, `${name}.yaml`) }).spec,
        json: resolveSpec({ config: join(dir, `${name}.json`) }).spec,
      };
      for (const [form, spec] of Object.entries(forms)) {
        assert.equal(spec.kind, 'block');
        if (spec.kind !== 'block') continue;
        assert.equal(spec.padFirstBlock, pad, `${name} via ${form}`);
        assert.equal(spec.promptScoring, 'authors', `${name} via ${form}: scoring default`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('random_pad_first_block: explicit values win, a non-boolean is an error naming the key', () => {
  const base = authorsTreeForPreset('block_main_b4_300')!;
  assert.equal(blockSpecFromAuthors({ ...base, random_pad_first_block: true }).padFirstBlock, true);
  assert.equal(blockSpecFromAuthors({ ...authorsTreeForPreset('block_main_b4_5')!, random_pad_first_block: false }).padFirstBlock, false);
  assert.throws(() => blockSpecFromAuthors({ ...base, random_pad_first_block: 'yes' }), /random_pad_first_block must be true or false/);
  const overridden = resolveSpec({ preset: 'block_main_b4_85', padFirstBlock: false }).spec; // --no-pad-first-block
  assert.ok(overridden.kind === 'block' && overridden.padFirstBlock === false);
});

test('firstBlockPad: padded models to a multiple of L; others only up to one block', () => {
  assert.deepEqual(
    [1, 3, 4, 5, 8, 9].map((n) => firstBlockPad(n, 4, true)),
    [3, 1, 0, 3, 0, 3],
  );
  assert.deepEqual(
    [1, 3, 4, 5, 8, 9].map((n) => firstBlockPad(n, 4, false)),
    [3, 1, 0, 0, 0, 0],
  );
  assert.deepEqual(
    [1, 2, 3].map((n) => firstBlockPad(n, 1, true)),
    [0, 0, 0],
  );
  assert.deepEqual(
    [1, 2, 3].map((n) => firstBlockPad(n, 2, false)),
    [1, 0, 0],
  );
});

test("scoringPad: the authors' wrappers pad L-1 (padded models) or nothing; decoding pads as generation", () => {
  assert.deepEqual(
    [1, 5, 8].map((n) => scoringPad(n, 4, true, 'authors')),
    [3, 3, 3],
  );
  assert.deepEqual(
    [1, 5, 8].map((n) => scoringPad(n, 4, false, 'authors')),
    [0, 0, 0],
  );
  assert.deepEqual(
    [1, 5, 8].map((n) => scoringPad(n, 4, true, 'decoding')),
    [3, 3, 0],
  );
  assert.deepEqual(
    [1, 5, 8].map((n) => scoringPad(n, 4, false, 'decoding')),
    [3, 0, 0],
  );
});

test('the scheduler and the single-sequence driver pad a prompt the same way', async () => {
  for (const padFirstBlock of [true, false]) {
    const sched = new Scheduler({
      tokensPerEntry: 4,
      padFirstBlock,
      contextLength: 256,
      numPages: 64,
      pageSize: 4,
      maxNumSeqs: 4,
      maxBatchTokens: 64,
    });
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9]) {
      // What the driver feeds first: a runner that records its first execute() and stops.
      let fed: number[] = [];
      const runner: Runner = {
        info: {
          kind: 'block',
          tokensPerEntry: 4,
          bytesPerEntry: 1,
          vocabSize: 10,
          contextLength: 256,
          eosTokenId: 0,
          blockLength: 4,
          padFirstBlock,
        },
        allocateCache: () => {},
        execute: async (items) => {
          fed = items[0]!.tokens;
          return { logits: new Float32Array(10).fill(0).map((_, i) => (i === 0 ? 1 : 0)), vocabSize: 10 };
        },
        dispose: () => {},
      };
      const prompt = Array.from({ length: n }, (_, i) => i + 2);
      await driveOne(runner, prompt, { maxNewTokens: 1 });
      assert.equal(fed.length - n, sched.padFor(n), `prompt of ${n}, padFirstBlock ${padFirstBlock}`);
      assert.deepEqual(fed.slice(0, fed.length - n), new Array(sched.padFor(n)).fill(0));
    }
  }
});
