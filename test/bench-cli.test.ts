// `bench kernels` and `bench quality` parse their options with the one option table: --help prints every
// option, and a bad value or an unknown flag stops the command with an OptionError naming it, before any
// probe runs or model loads (they used to print a stack trace, or take `--budget-ms abc` as NaN).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OptionError } from '../engine/options.ts';
import { runKernelBenchCommand } from '../cli/bench-kernels.ts';
import { runQualityBench } from '../engine/bench/quality.ts';
import { runBench } from '../engine/bench/main.ts';

/** What `run` writes to stdout, and its result. */
async function stdoutOf(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  const write = process.stdout.write;
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  try {
    return { code: await run(), out };
  } finally {
    process.stdout.write = write;
  }
}

const optionError = (re: RegExp) => (e: unknown) => e instanceof OptionError && re.test((e as Error).message);

test('bench kernels: --help lists its options; bad values and unknown flags name themselves', async () => {
  const help = await stdoutOf(() => runKernelBenchCommand(['--help']));
  assert.equal(help.code, 0);
  for (const flag of ['--backend', '--filter', '--budget-ms', '--threads', '--cpu-isa', '--json'])
    assert.match(help.out, new RegExp(`${flag}\\b`));
  await assert.rejects(
    runKernelBenchCommand(['--budget-ms', 'abc']),
    optionError(/^--budget-ms: expected an integer in \[1, inf\], got 'abc'$/),
  );
  await assert.rejects(runKernelBenchCommand(['--threads=-1']), optionError(/^--threads: expected an integer in \[0, inf\]/));
  await assert.rejects(
    runKernelBenchCommand(['--backend', 'gpu']),
    optionError(/--backend .*expected one of cpu, webgpu, reference, got 'gpu'/),
  );
  await assert.rejects(runKernelBenchCommand(['--filter']), optionError(/--filter/));
  await assert.rejects(
    runKernelBenchCommand(['--filter', 'no such shape']),
    optionError(/^--filter 'no such shape' matches no row \(rows read like 'matmul /),
  );
  await assert.rejects(runKernelBenchCommand(['--bogus']), optionError(/Unknown option '--bogus'/));
  await assert.rejects(
    runKernelBenchCommand(['--cpu-isa', 'avx3']),
    optionError(/--cpu-isa .*expected one of auto, avx512bf16, avx2, portable, got 'avx3'/),
  );
  await assert.rejects(
    runKernelBenchCommand(['--backend', 'reference', '--cpu-isa', 'avx2']),
    optionError(/^--cpu-isa avx2 needs the cpu backend \(got 'reference'\)$/),
  );
});

test('bench quality: --help lists its options; bad values and unknown flags name themselves', async () => {
  const help = await stdoutOf(() => runQualityBench(['--help']));
  assert.equal(help.code, 0);
  for (const flag of ['--backend', '--windows', '--batch', '--prompt', '--gen', '--json']) assert.match(help.out, new RegExp(`${flag}\\b`));
  await assert.rejects(runQualityBench(['--bogus']), optionError(/Unknown option '--bogus'/));
  await assert.rejects(runQualityBench(['--prompt', '999']), optionError(/^--prompt: expected an integer in \[1, 256\], got '999'$/));
  await assert.rejects(runQualityBench(['--windows', '0']), optionError(/^--windows: expected an integer in \[1, inf\]/));
  await assert.rejects(runQualityBench(['--backend', 'tpu']), optionError(/expected one of cpu, webgpu, reference, got 'tpu'/));
});

test('bench: an unknown preset or a length beyond the context is refused before the probes run', async () => {
  const { out } = await stdoutOf(async () => {
    await assert.rejects(runBench(['--preset', 'vanilla_160', '--vs', 'vanilla_999'], {}), /unknown preset 'vanilla_999'/);
    await assert.rejects(
      runBench(['--preset', 'block_main_b4_85', '--vs', 'vanilla_160', '--prompt', '128', '--gen', '2048'], {}),
      optionError(/^--prompt 128 \+ --gen 2048 = 2176 tokens: more than block_main_b4_85's context length, 2048$/),
    );
    return 0;
  });
  // The probes take seconds and announce themselves first; a refusal must not wait for them.
  assert.doesNotMatch(out, /measuring machine peaks/);
});
