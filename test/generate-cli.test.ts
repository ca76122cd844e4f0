// `blockserve generate` runs the serving engine (createLocalEngine + submit()): its greedy tokens for
// every generation case of the reference fixtures (made by a reference we did not write, see
// parity.test.ts) equal the fixture's, with the fixture's position mode and padding given as flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runGenerate } from '../cli/generate.ts';

interface GenerateCase {
  position_mode?: 'reference' | 'contiguous';
  pad_first_block?: boolean;
  prompt_ids: number[];
  max_new_tokens: number;
  output_ids: number[];
}

/** Runs the CLI in this process and returns what it printed to stdout. */
async function generate(argv: string[]): Promise<string> {
  let out = '';
  assert.equal(
    await runGenerate(
      argv,
      {},
      {
        out: (s) => {
          out += s;
        },
        err: () => {},
      },
    ),
    0,
  );
  return out;
}

for (const fixture of ['block_tiny', 'vanilla_tiny']) {
  const dir = join(import.meta.dirname, 'fixtures', fixture);
  test(`generate --json through the engine reproduces ${fixture}'s greedy cases`, {
    skip: !existsSync(join(dir, 'expected.json')) && `fixture ${fixture} missing`,
  }, async () => {
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as { kind: string; generate: GenerateCase[] };
    for (const [i, g] of expected.generate.entries()) {
      const flags =
        expected.kind === 'block'
          ? [
              ...(g.position_mode ? ['--position-mode', g.position_mode] : []),
              ...(g.pad_first_block === undefined ? [] : [g.pad_first_block ? '--pad-first-block' : '--no-pad-first-block']),
            ]
          : [];
      const out = await generate([
        '--model',
        dir,
        '--backend',
        'reference',
        '--prompt-ids',
        g.prompt_ids.join(','),
        '--max-tokens',
        String(g.max_new_tokens),
        '--json',
        ...flags,
      ]);
      const printed = JSON.parse(out) as { prompt_ids: number[]; output_ids: number[]; text: string | null };
      assert.deepEqual(printed.prompt_ids, g.prompt_ids);
      assert.deepEqual(printed.output_ids, g.output_ids, `case ${i} (${flags.join(' ') || 'defaults'})`);
      assert.equal(printed.text, null, 'the tiny model fits no tokenizer: ids only');
    }
  });
}

test('generate names a bad flag value and the missing prompt', async () => {
  await assert.rejects(
    runGenerate(['--preset', 'block_main_b4_5', '--prompt', 'x', '--top-p', '0'], {}),
    /--top-p: expected a number in \(0, 1\], got '0'/,
  );
  await assert.rejects(
    runGenerate(['--preset', 'block_main_b4_5', '--prompt-ids', '1,x'], {}),
    /--prompt-ids: expected comma-separated non-negative integers, got '1,x'/,
  );
  await assert.rejects(runGenerate(['--preset', 'block_main_b4_5'], {}), /give exactly one of --prompt or --prompt-ids/);
});

test("generate's request errors are the engine's rules, named by the flag", async () => {
  const dir = join(import.meta.dirname, 'fixtures', 'block_tiny');
  const quiet = { out: () => {}, err: () => {} };
  await assert.rejects(
    runGenerate(['--model', dir, '--prompt-ids', '5,17,999999', '--backend', 'reference'], {}, quiet),
    /--prompt-ids \(token 2\): token id 999999 is outside the vocabulary \(size 512\)/,
  );
  await assert.rejects(
    runGenerate(['--model', dir, '--prompt-ids', '5,17', '--max-tokens', '100000', '--backend', 'reference'], {}, quiet),
    /--max-tokens: This model's maximum context length is \d+ tokens; you asked for 100002/,
  );
});
