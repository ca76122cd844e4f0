// `blockserve bench kernels` (options: cli/bench-kernels.ts)
//
// For each op and shape: median time, GFLOP/s, GB/s, and the fraction of the roofline bound (the larger
// of flops / peak FLOP/s and bytes / triad bandwidth) it reaches, next to this machine's peaks measured
// in the same run by the native addon (FP32 FMA and bf16 dot throughput, STREAM triad, all pool
// threads), plus onnxruntime-node's f32 MatMul on the same GEMM shapes as a peer. A row computed in
// bf16 (the `compute` column) is placed against the bf16 dot peak, an f32 row against the FP32 one.

import { availableParallelism } from 'node:os';
import type { Backend } from '../backend.ts';
import type { CpuIsa } from '../cpu/backend.ts';
import { median, timeLoop } from './timing.ts';
import { openOrtMatmul, ortLoadError } from './onnx-peer.ts';
import { workloads } from './workloads.ts';

type BackendName = 'cpu' | 'webgpu' | 'reference';

export interface Machine {
  /** FP32 FMA peak. */
  peak_gflops: number | null;
  /** bf16 dot (vdpbf16ps) peak; null where the CPU has no AVX512_BF16 (bf16 rows then fall back to f32). */
  peak_bf16_gflops: number | null;
  triad_gbs: number | null;
  threads: number;
}

interface Result {
  op: string;
  shape: string;
  dtype: string;
  /** What the backend computed in (bf16 only where the CPU has AVX512_BF16; else f32 and the row says so). */
  compute: string;
  backend: string;
  ms: number;
  gflops: number;
  gbs: number;
  peak_fraction: number | null;
  peer_gflops: number | null;
}

/** What `blockserve bench kernels` was asked for (its options are parsed in cli/bench-kernels.ts). */
export interface KernelBenchArgs {
  backend: BackendName;
  json: boolean;
  /** Only the rows whose "op shape dtype compute" text contains this. */
  filter?: string;
  /** Time budget per row, split over the alternating rounds of ours and the peer. */
  budgetMs: number;
  /** Threads for the CPU backend, the peak probes and onnxruntime (0: one per core). --threads 1 gives a
   * per-core comparison that a busy shared machine disturbs far less than an all-cores one. */
  threads: number;
  /** CPU backend only: auto, or a cap on the native kernels' path (avx2 measures the path of CPUs without AVX-512). */
  cpuIsa?: CpuIsa | 'auto';
}

async function makeBackend(name: BackendName, threads: number, compute: 'f32' | 'bf16' = 'f32', isa?: CpuIsa | 'auto'): Promise<Backend> {
  if (name === 'reference') {
    const { ReferenceBackend } = await import('../reference/backend.ts');
    return new ReferenceBackend();
  }
  if (name === 'cpu') {
    const { CpuBackend } = await import('../cpu/backend.ts');
    return new CpuBackend({ threads, computeDtype: compute, kvDtype: compute, isa });
  }
  const { WebGpuBackend } = await import('../webgpu/backend.ts');
  const b = await WebGpuBackend.create();
  if (!b) throw new Error('no WebGPU adapter on this machine');
  return b;
}

/** Peaks from the native addon (null when it is not built: fractions are then omitted). */
export async function measureMachine(log: (s: string) => void, threads = 0): Promise<Machine> {
  const { cpuBackendAvailable, cpuAddon, CpuBackend } = await import('../cpu/backend.ts');
  if (!cpuBackendAvailable()) {
    log('machine peaks: n/a (native addon not built)');
    return { peak_gflops: null, peak_bf16_gflops: null, triad_gbs: null, threads: threads || availableParallelism() };
  }
  const used = new CpuBackend({ threads }).info().threads;
  const addon = cpuAddon();
  const peak = addon.peakFlops(0.6) / 1e9;
  const bf16 = addon.peakBf16(0.6) / 1e9; // 0 below AVX512_BF16
  const triad = addon.triad(32 * 1024 * 1024, 8) / 1e9; // 3 x 128 MiB, far beyond any cache
  return { peak_gflops: peak, peak_bf16_gflops: bf16 > 0 ? bf16 : null, triad_gbs: triad, threads: used };
}

/** Alternating rounds of ours and the peer per shape (see runKernelBench). */
const PEER_ROUNDS = 4;

const fmt = (v: number | null, digits = 1): string => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits));

/** Fraction of the roofline bound max(flops / peak of the row's dtype, bytes / triad) that a run of `ms` reaches. */
function rooflineFraction(flops: number, bytes: number, ms: number, m: Machine, compute: string): number | null {
  const peak = compute === 'bf16' ? m.peak_bf16_gflops : m.peak_gflops;
  if (!peak || !m.triad_gbs) return null;
  return Math.max(flops / (peak * 1e6), bytes / (m.triad_gbs * 1e6)) / ms;
}

/** A row's text as --filter matches it: "op shape dtype compute". */
export function workloadLabel(w: { op: string; shape: string; dtype: string; compute: string }): string {
  return `${w.op} ${w.shape} ${w.dtype} ${w.compute}`;
}

/** The rows --filter selects (all without one). */
export function selectedWorkloads(filter: string | undefined): ReturnType<typeof workloads> {
  return workloads().filter((w) => filter === undefined || workloadLabel(w).includes(filter));
}

export async function runKernelBench(args: KernelBenchArgs): Promise<void> {
  const log = (s: string): void => {
    if (!args.json) console.log(s);
  };
  const progress = (s: string): void => {
    if (!args.json) process.stderr.write(`${s}\n`);
  };
  const before = await measureMachine(progress, args.threads);
  const backend = await makeBackend(args.backend, args.threads, 'f32', args.cpuIsa);
  // Read now: the after-probes reconfigure the (process-wide) native pool to the CPU's best path.
  const described = backend.describe?.() ?? backend.name;
  // The bf16 rows run on a backend built for bf16 compute and a bf16 KV cache; where that falls back
  // to f32 (no AVX512_BF16, or not the CPU backend) the rows are labelled with what really ran.
  const bf16Backend = args.backend === 'cpu' ? await makeBackend('cpu', args.threads, 'bf16', args.cpuIsa) : backend;
  const bf16Ran = args.backend === 'cpu' && (bf16Backend as unknown as { computeDtype(): string }).computeDtype() === 'bf16';
  if (args.backend === 'cpu' && !bf16Ran) progress('bf16 compute: n/a on this kernel path (no AVX512_BF16): the bf16 rows run in f32');
  const ran = (w: { compute: string }): string => (w.compute === 'bf16' && bf16Ran ? 'bf16' : 'f32');
  const list = selectedWorkloads(args.filter);
  const peerMs = new Map<string, number | null>(); // bf16 rows share the f32 shape's peer
  const rows: { w: (typeof list)[number]; ms: number; peer: number | null }[] = [];
  try {
    for (const w of list) {
      progress(`  ${w.op} ${w.shape} ${w.dtype} compute ${ran(w)}`);
      const b = w.compute === 'bf16' ? bf16Backend : backend;
      const { run, free } = w.setup(b);
      const ours = async () => {
        run();
        await b.sync();
      };
      const key = w.peer ? `${w.peer.M}x${w.peer.K}x${w.peer.N}` : null;
      // The peer runs in the same stretch of time, in alternating rounds, so that the drift of a shared
      // machine (other tenants come and go within seconds) lands on both sides of the comparison.
      const ort = w.peer && key && !peerMs.has(key) ? await openOrtMatmul(w.peer.M, w.peer.K, w.peer.N, before.threads) : null;
      const rounds = ort ? PEER_ROUNDS : 1;
      const times: number[] = [],
        peerTimes: number[] = [];
      for (let r = 0; r < rounds; r++) {
        times.push(...(await timeLoop(ours, args.budgetMs / rounds, 3, 200)));
        if (ort) peerTimes.push(...(await timeLoop(ort.run, args.budgetMs / rounds, 3, 200)));
      }
      await ort?.release();
      free();
      if (key && !peerMs.has(key)) peerMs.set(key, ort ? median(peerTimes) : null);
      const pm = key ? peerMs.get(key)! : null;
      rows.push({ w, ms: median(times), peer: pm === null ? null : w.flops / (pm * 1e6) });
    }
  } finally {
    backend.dispose();
    if (bf16Backend !== backend) bf16Backend.dispose();
  }
  // Peaks are measured before and after the ops and the higher figure kept: on a shared machine a
  // single probe can catch a busy moment, and an understated peak would flatter every fraction.
  const after = await measureMachine(progress, args.threads);
  const maxOf = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.max(a, b));
  const machine: Machine = {
    peak_gflops: maxOf(before.peak_gflops, after.peak_gflops),
    peak_bf16_gflops: maxOf(before.peak_bf16_gflops, after.peak_bf16_gflops),
    triad_gbs: maxOf(before.triad_gbs, after.triad_gbs),
    threads: before.threads,
  };
  const results: Result[] = rows.map(({ w, ms, peer }) => ({
    op: w.op,
    shape: w.shape,
    dtype: w.dtype,
    compute: ran(w),
    backend: backend.name,
    ms,
    gflops: w.flops / (ms * 1e6),
    gbs: w.bytes / (ms * 1e6),
    peak_fraction: rooflineFraction(w.flops, w.bytes, ms, machine, ran(w)),
    peer_gflops: peer,
  }));
  if (args.json) {
    console.log(JSON.stringify({ machine, results }));
    return;
  }
  log(
    `machine: peak FP32 ${fmt(machine.peak_gflops)} GFLOP/s (FMA), peak bf16 ${machine.peak_bf16_gflops === null ? 'n/a (no AVX512_BF16)' : `${fmt(machine.peak_bf16_gflops)} GFLOP/s (vdpbf16ps)`}, triad ${fmt(machine.triad_gbs)} GB/s, ${machine.threads} threads (best of probes before and after)`,
  );
  log(
    `backend: ${described}; ms = median of repeated calls; peak% = share of the roofline bound max(flops/peak of the compute dtype, bytes/triad)`,
  );
  log(['op', 'shape', 'dtype', 'compute', 'ms', 'GFLOP/s', 'GB/s', 'peak%', 'onnxruntime GFLOP/s', 'ours/ort'].join('\t'));
  results.forEach((r, i) => {
    const vsPeer = rows[i]!.w.peer && r.peer_gflops ? `${(r.gflops / r.peer_gflops).toFixed(2)}x` : '-';
    log(
      [
        r.op,
        r.shape,
        r.dtype,
        r.compute,
        fmt(r.ms, 3),
        fmt(r.gflops),
        fmt(r.gbs),
        r.peak_fraction === null ? 'n/a' : `${(100 * r.peak_fraction).toFixed(0)}%`,
        rows[i]!.w.peer ? fmt(r.peer_gflops) : '-',
        vsPeer,
      ].join('\t'),
    );
  });
  if (results.some((r) => r.peer_gflops === null && r.op === 'matmul')) log(`onnxruntime peer: n/a (${ortLoadError() ?? 'unavailable'})`);
}
