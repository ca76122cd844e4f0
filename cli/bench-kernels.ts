// `blockserve bench kernels`: its options, in the one option table's form (engine/options.ts), so that
// --help, unknown flags and bad values behave as in every other command. The benchmark itself is
// kernels/bench/main.ts, which takes the parsed values and knows nothing of the command line.

import { cpuOnlyOptionsError } from '../engine/backends.ts';
import { BACKEND_OPTION, COMPUTE_OPTIONS, helpFor, OptionError, parseOptions, pick, type OptionRow } from '../engine/options.ts';
import { runKernelBench, selectedWorkloads, workloadLabel } from '../kernels/bench/main.ts';

export const KERNEL_BENCH_ROWS = [
  BACKEND_OPTION,
  {
    key: 'filter',
    flag: 'filter',
    kind: 'string',
    help: "Only the rows whose 'op shape dtype compute' text contains this (e.g. 'M=1 ', 'bf16 bf16').",
  },
  {
    key: 'budgetMs',
    flag: 'budget-ms',
    kind: 'int',
    min: 1,
    default: 400,
    help: 'Time per row, split over alternating rounds of ours and onnxruntime.',
  },
  {
    key: 'threads',
    flag: 'threads',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'Threads for the CPU backend, the peak probes and onnxruntime; 0: one per core. --threads 1 compares one core, which a busy shared machine disturbs far less.',
  },
  ...pick(COMPUTE_OPTIONS, 'cpuIsa'),
  { key: 'json', flag: 'json', kind: 'bool', default: false, help: 'Print one JSON object.' },
] as const satisfies readonly OptionRow[];

const USAGE = `Usage: blockserve bench kernels [options]

Each kernel shape's median time, GFLOP/s, GB/s and share of this machine's roofline (FP32 FMA and bf16
dot peaks and STREAM triad, measured in the same run), beside onnxruntime's f32 MatMul on the GEMM shapes.`;

export async function runKernelBenchCommand(argv: string[]): Promise<number> {
  const o = parseOptions(KERNEL_BENCH_ROWS, argv, { env: process.env, usage: USAGE });
  if (o === 'help') {
    process.stdout.write(helpFor(KERNEL_BENCH_ROWS, USAGE));
    return 0;
  }
  const misfit = cpuOnlyOptionsError(o.backend, { cpuIsa: o.cpuIsa });
  if (misfit) throw new OptionError(misfit);
  if (selectedWorkloads(o.filter).length === 0) {
    const examples = selectedWorkloads(undefined)
      .slice(0, 3)
      .map((w) => `'${workloadLabel(w)}'`)
      .join(', ');
    throw new OptionError(`--filter '${o.filter}' matches no row (rows read like ${examples})`);
  }
  await runKernelBench(o);
  return 0;
}
