// `blockserve bench`: the paper's throughput benchmark through the real engine loop. Random weights
// from presets, random prompt ids, EOS ignored; throughput = generated tokens / wall time. Each model
// is measured in the same run as the machine's peaks and (with --vs) the other model.

import { presetSpec } from '../config/presets.ts';
import type { ModelSpec } from '../config/spec.ts';
import { createLocalEngine } from '../create.ts';
import { cpuOnlyOptionsError, type BackendName } from '../backends.ts';
import { BACKEND_OPTION, COMPUTE_OPTIONS, helpFor, MODEL_OPTIONS, OptionError, parseOptions, pick, type OptionRow } from '../options.ts';
import type { ComputeDtypeOption, CpuIsaOption, KvDtypeOption } from '../backends.ts';
import type { PositionMode } from '../config/spec.ts';
import { mulberry32 } from '../model/random.ts';
import { rooflineTokensPerSecond, tokenCost } from './roofline.ts';
import { measureMachine } from '../../kernels/bench/main.ts';
import { defaultSamplingParams } from '../sampler/sampler.ts';

export { OptionError as UsageError };

const BENCH_OPTIONS = [
  { key: 'vs', flag: 'vs', kind: 'string', help: 'A second preset measured in the same run (e.g. vanilla_160); prints A/B.' },
  { key: 'prompt', flag: 'prompt', kind: 'int', min: 1, default: 128, help: 'Prompt tokens per sequence.' },
  { key: 'gen', flag: 'gen', kind: 'int', min: 1, default: 512, help: 'Generated tokens per sequence.' },
  {
    key: 'batch',
    flag: 'batch',
    kind: 'string',
    default: 'auto',
    help: 'Batch sizes: auto (the largest that fits --mem-mb) or N,N,...',
    check: (b: string) =>
      b === 'auto' || /^\s*[1-9]\d*\s*(,\s*[1-9]\d*\s*)*$/.test(b) ? undefined : 'expected auto or comma-separated positive integers',
  },
  { key: 'memMb', flag: 'mem-mb', kind: 'int', min: 1, default: 8192, help: 'Memory budget in MiB for --batch auto.' },
  { key: 'dtype', flag: 'dtype', kind: 'choice', choices: ['bf16', 'f32'], default: 'bf16', help: 'Weight dtype.' },
  { key: 'json', flag: 'json', kind: 'bool', default: false, help: 'Print one JSON object.' },
] as const satisfies readonly OptionRow[];

/** Every row of `bench`: the preset and block-model rows of the engine, its backend, then the bench's own. */
export const BENCH_ROWS = [
  ...pick(MODEL_OPTIONS, 'preset', 'positionMode', 'padFirstBlock'),
  BACKEND_OPTION,
  ...COMPUTE_OPTIONS,
  ...BENCH_OPTIONS,
] as const;

const USAGE = `Usage: blockserve bench --preset A [--vs B] [--prompt P] [--gen G] [options]

The paper's benchmark: random weights, random prompt ids, EOS ignored, generated tokens / wall time.
Settings the paper reports: prefill-heavy 2048/128 (run it as --prompt 1920 --gen 128: the released
configs allow 2048 tokens in all), decode-heavy --prompt 128 --gen 2048.`;

export interface BenchRun {
  model: string;
  backend: string;
  /** What the GEMMs computed in (bf16 only where the CPU has AVX512_BF16) and the KV cache dtype. */
  compute_dtype: string;
  kv_dtype: string;
  /** The kernel path that ran, in words (the engine's compute line: ISA, threads, dtypes). */
  compute: string;
  prompt_len: number;
  gen_len: number;
  batch: number;
  tokens_per_s: number;
  wall_s: number;
  peak_mem_mb: number;
  step_fill: number;
  flops_per_token: number;
  bytes_per_token: number;
  roofline_tokens_per_s: number;
  roofline_fraction: number;
  /** Machine probes just before and just after this run; the roofline uses the higher of each. */
  probes: { peak_gflops: [number, number]; peak_bf16_gflops: [number | null, number | null]; triad_gbs: [number, number] };
}

/** KV bytes one sequence of `tokens` needs, and the weights' bytes, from the shapes. */
function memoryPlan(spec: ModelSpec, tokens: number, weightBytes: number): { kvBytesPerSeq: number; weightsBytes: number } {
  const stack = spec.kind === 'block' ? spec.blockDecoder : spec.decoder;
  const tpe = spec.kind === 'block' ? spec.blockLength : 1;
  const entries = Math.ceil(tokens / tpe) + 1;
  const kvBytesPerSeq = entries * stack.numLayers * 2 * stack.hiddenSize * 4;
  const params =
    spec.kind === 'block'
      ? spec.vocabSize * (spec.embedderDim + 2 * spec.tokenDecoder.hiddenSize) +
        12 * spec.blockDecoder.numLayers * stack.hiddenSize ** 2 +
        12 * spec.tokenDecoder.numLayers * spec.tokenDecoder.hiddenSize ** 2
      : 2 * spec.vocabSize * spec.decoder.hiddenSize + 12 * spec.decoder.numLayers * spec.decoder.hiddenSize ** 2;
  return { kvBytesPerSeq, weightsBytes: params * weightBytes };
}

/** Largest batch (power of two up to 512) whose KV cache + weights + activations fit the budget. */
export function autoBatch(spec: ModelSpec, tokens: number, weightBytes: number, memMb: number): number {
  const { kvBytesPerSeq, weightsBytes } = memoryPlan(spec, tokens, weightBytes);
  const d = spec.kind === 'block' ? spec.blockDecoder.hiddenSize : spec.decoder.hiddenSize;
  const perSeqActivations = (spec.vocabSize + 16 * d) * 4; // logits row + layer scratch
  let best = 1;
  for (let b = 1; b <= 512; b *= 2) {
    if (weightsBytes + b * (kvBytesPerSeq + perSeqActivations) <= memMb * 2 ** 20) best = b;
  }
  return best;
}

interface Peaks {
  peak_gflops: number;
  peak_bf16_gflops: number | null;
  triad_gbs: number;
}

/** Peak FLOP/s and triad bandwidth now (they swing on a shared machine: probed around every run). */
async function probe(log: (s: string) => void): Promise<Peaks & { threads: number }> {
  const m = await measureMachine(log);
  if (m.peak_gflops === null || m.triad_gbs === null)
    throw new OptionError('machine peaks need the native CPU addon (npm install builds it)');
  return { peak_gflops: m.peak_gflops, peak_bf16_gflops: m.peak_bf16_gflops, triad_gbs: m.triad_gbs, threads: m.threads };
}

interface ModelRows {
  positionMode?: PositionMode;
  padFirstBlock?: boolean;
}
interface Compute {
  computeDtype: ComputeDtypeOption;
  kvDtype: KvDtypeOption;
  cpuIsa: CpuIsaOption;
}

/** The compute dtype a CPU backend asked for `c` really uses here (bf16 needs AVX512_BF16). */
async function computeThatRuns(backend: BackendName, c: ComputeDtypeOption, cpuIsa: CpuIsaOption): Promise<'f32' | 'bf16'> {
  if (backend !== 'cpu' || c === 'f32') return 'f32';
  const { CpuBackend } = await import('../../kernels/cpu/backend.ts');
  const ran = new CpuBackend({ computeDtype: c, isa: cpuIsa }).computeDtype();
  new CpuBackend(); // leave the pool as the engine will configure it
  return ran;
}

async function runOne(
  preset: string,
  rows: ModelRows,
  backend: BackendName,
  dtype: 'bf16' | 'f32',
  compute: Compute,
  prompt: number,
  gen: number,
  batch: number,
  before: Peaks,
  log: (s: string) => void,
): Promise<BenchRun> {
  const spec = presetSpec(preset);
  const kvBytes = compute.kvDtype === 'bf16' ? 2 : 4;
  const ran = await computeThatRuns(backend, compute.computeDtype, compute.cpuIsa);
  const { kvBytesPerSeq } = memoryPlan(spec, prompt + gen, dtype === 'bf16' ? 2 : 4);
  const kvCacheMb = Math.ceil((batch * kvBytesPerSeq * 1.05) / 2 ** 20) + 1;
  // kvCacheMb counts f32 entries; with a bf16 cache the engine fits twice as many in it (harmless slack).
  const { engine } = await createLocalEngine({
    preset,
    backend,
    randomDtype: dtype,
    computeDtype: compute.computeDtype,
    kvDtype: compute.kvDtype,
    cpuIsa: compute.cpuIsa,
    kvCacheMb,
    maxNumSeqs: batch,
    maxQueue: batch,
    ...rows,
  });
  const rand = mulberry32(42);
  const sampling = defaultSamplingParams({ maxTokens: gen, ignoreEos: true });
  let closed = false;
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  try {
    const started = performance.now();
    let generated = 0;
    await Promise.all(
      Array.from({ length: batch }, async (_, i) => {
        const promptIds = Array.from({ length: prompt }, () => 2 + Math.floor(rand() * (spec.vocabSize - 2)));
        for await (const ev of engine.submit({ id: `bench-${i}`, promptIds, sampling })) {
          if (ev.type === 'token') generated += ev.tokenIds.length;
          if (ev.type === 'error') throw new Error(`bench request failed: ${ev.message}`);
        }
      }),
    );
    const wall = (performance.now() - started) / 1000;
    const stepFill = engine.stats().stepFill;
    clearInterval(sampler);
    await engine.close();
    closed = true;
    // The higher probe of each kind bounds the run: a busy-moment probe must not flatter the fraction.
    const after = await probe(log);
    const best = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.max(a, b));
    const peakBf16 = best(before.peak_bf16_gflops, after.peak_bf16_gflops);
    // The roof of the dtype that computed: the bf16 dot peak when the GEMMs ran in bf16.
    const peak = ran === 'bf16' && peakBf16 !== null ? peakBf16 : Math.max(before.peak_gflops, after.peak_gflops);
    const triad = Math.max(before.triad_gbs, after.triad_gbs);
    const cost = tokenCost(spec, prompt, gen, batch, dtype === 'bf16' ? 2 : 4, kvBytes);
    const roof = rooflineTokensPerSecond(cost, peak, triad);
    const tps = generated / wall;
    return {
      model: preset,
      backend,
      compute_dtype: ran,
      kv_dtype: compute.kvDtype,
      compute: engine.info.compute ?? backend,
      prompt_len: prompt,
      gen_len: gen,
      batch,
      tokens_per_s: tps,
      wall_s: wall,
      peak_mem_mb: peakRss / 2 ** 20,
      step_fill: stepFill,
      flops_per_token: cost.flopsPerToken,
      bytes_per_token: cost.bytesPerToken,
      roofline_tokens_per_s: roof,
      roofline_fraction: tps / roof,
      probes: {
        peak_gflops: [before.peak_gflops, after.peak_gflops],
        peak_bf16_gflops: [before.peak_bf16_gflops, after.peak_bf16_gflops],
        triad_gbs: [before.triad_gbs, after.triad_gbs],
      },
    };
  } finally {
    clearInterval(sampler);
    if (!closed) await engine.close();
  }
}

export async function runBench(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const o = parseOptions(BENCH_ROWS, argv, { env, usage: USAGE });
  if (o === 'help') {
    process.stdout.write(helpFor(BENCH_ROWS, USAGE));
    return 0;
  }
  if (!o.preset) throw new OptionError(`--preset is required\n\n${helpFor(BENCH_ROWS, USAGE)}`);
  const models = [o.preset, ...(o.vs ? [o.vs] : [])];
  const { prompt, gen, memMb, backend, dtype } = o;
  // An unknown preset, or a length the model cannot hold, is refused before the probes take their minute.
  for (const m of models) {
    const { contextLength } = presetSpec(m);
    if (prompt + gen > contextLength)
      throw new OptionError(
        `--prompt ${prompt} + --gen ${gen} = ${prompt + gen} tokens: more than ${m}'s context length, ${contextLength}`,
      );
  }
  const computeDtype = o.computeDtype ?? 'f32',
    kvDtype = o.kvDtype ?? 'f32',
    cpuIsa = o.cpuIsa ?? 'auto';
  // Refused before the probes take their minute, with makeBackend's words.
  const misfit = cpuOnlyOptionsError(backend, { computeDtype, kvDtype, cpuIsa });
  if (misfit) throw new OptionError(misfit);
  const batchesFor = (preset: string): number[] =>
    o.batch === 'auto'
      ? [autoBatch(presetSpec(preset), prompt + gen, dtype === 'bf16' ? 2 : 4, memMb)]
      : o.batch.split(',').map((b) => Number(b.trim()));

  const log = (s: string) => {
    if (!o.json) process.stdout.write(s + '\n');
  };
  log('measuring machine peaks (FMA throughput, triad bandwidth), again after every run...');
  let peaks = await probe(log);
  const first = peaks;
  const bf16Peak = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(1));
  log(
    `machine: peak FP32 ${peaks.peak_gflops.toFixed(1)} GFLOP/s, peak bf16 ${peaks.peak_bf16_gflops === null ? 'n/a (no AVX512_BF16)' : `${peaks.peak_bf16_gflops.toFixed(1)} GFLOP/s`}, triad ${peaks.triad_gbs.toFixed(1)} GB/s, ${peaks.threads} threads`,
  );
  const runs: BenchRun[] = [];
  for (const m of models) {
    for (const batch of batchesFor(m)) {
      log(
        `${m}: prompt ${prompt}, gen ${gen}, batch ${batch}, backend ${backend}, ${dtype} weights, compute ${computeDtype}, KV ${kvDtype}${cpuIsa === 'auto' ? '' : `, CPU ISA capped at ${cpuIsa}`} ...`,
      );
      const r = await runOne(
        m,
        { positionMode: o.positionMode, padFirstBlock: o.padFirstBlock },
        backend,
        dtype,
        { computeDtype, kvDtype, cpuIsa },
        prompt,
        gen,
        batch,
        peaks,
        log,
      );
      runs.push(r);
      peaks = {
        ...peaks,
        peak_gflops: r.probes.peak_gflops[1],
        peak_bf16_gflops: r.probes.peak_bf16_gflops[1],
        triad_gbs: r.probes.triad_gbs[1],
      };
      const [t0, t1] = r.probes.triad_gbs,
        [p0, p1] = r.probes.peak_gflops,
        [q0, q1] = r.probes.peak_bf16_gflops;
      log(
        `  ${r.tokens_per_s.toFixed(1)} tok/s  (${r.wall_s.toFixed(1)} s, step fill ${(r.step_fill * 100).toFixed(0)}%, peak RSS ${r.peak_mem_mb.toFixed(0)} MB; ${r.compute})`,
      );
      log(
        `  probes before / after: triad ${t0.toFixed(1)} / ${t1.toFixed(1)} GB/s, peak FP32 ${p0.toFixed(1)} / ${p1.toFixed(1)} GFLOP/s, peak bf16 ${bf16Peak(q0)} / ${bf16Peak(q1)} GFLOP/s (the higher of each bounds the run)`,
      );
      log(
        `  computed in ${r.compute_dtype}, KV ${r.kv_dtype}: ${(r.flops_per_token / 1e9).toFixed(3)} GFLOP/token, ${(r.bytes_per_token / 1e6).toFixed(2)} MB/token -> roofline ${r.roofline_tokens_per_s.toFixed(0)} tok/s (${r.compute_dtype} peak), achieved ${(r.roofline_fraction * 100).toFixed(1)}%`,
      );
    }
  }
  const best = (m: string) => Math.max(...runs.filter((r) => r.model === m).map((r) => r.tokens_per_s));
  const ratio = o.vs ? best(o.preset) / best(o.vs) : null;
  if (ratio !== null) log(`ratio ${o.preset} / ${o.vs}: ${ratio.toFixed(2)}x (best batch of each)`);
  if (o.json) process.stdout.write(JSON.stringify({ machine: first, runs, ratio }) + '\n');
  return 0;
}
