// The one table of op cases every backend is checked on (ggml test-backend-ops style). Each case builds
// its inputs from a seeded RNG on the backend it is given, runs one op, and reads back what the op wrote.
// The runner (runner.ts) runs a case on the backend under test and on the reference with the same seed and
// compares the outputs with the case's per-op tolerance.
//
// Outputs are pre-filled with random data, not zeros, so an op that skips part of its output (or writes
// outside it) shows up as a mismatch.

import type { AttentionPlan, Backend, DType, MatmulOptions, Tensor } from '../backend.ts';
import { numel } from '../backend.ts';
import { fromF32Array } from '../dtype.ts';
import { samplingCases } from './sampling-cases.ts';
import type { Rng } from './rng.ts';
import type { OpCase, OpName, Tolerance } from './op-case.ts';

export type { CaseOutput, OpCase, OpName, Tolerance } from './op-case.ts';

export const defaultTolerances: Record<OpName, Tolerance> = {
  // f32 accumulation in a different order than the reference's f64; K up to 768 with inputs in [-1, 1].
  matmul: { atol: 1e-4, rtol: 1e-4 },
  layerNorm: { atol: 1e-5, rtol: 1e-5 },
  add: { atol: 0, rtol: 0 }, // one f32 add per element is exactly rounded everywhere
  gatherRows: { atol: 0, rtol: 0 }, // a copy (16-bit tables widen exactly)
  rotary: { atol: 2e-6, rtol: 1e-5 }, // angles are formed in f32 from the position, like torch's tables
  kvWrite: { atol: 0, rtol: 0 },
  attention: { atol: 1e-5, rtol: 1e-4 },
  sampling: { atol: 0, rtol: 0 }, // the passes promise the reference's doubles exactly: a seeded draw must not move
};

/**
 * Tolerances for a backend computing in bf16 (--compute-dtype bf16 and the bf16 KV cache): inputs are
 * rounded to 8 significant bits (relative error up to 2^-9 each), sums stay FP32. A K-term dot product
 * of O(1) outputs (the cases scale weights by 1/sqrt(K)) then carries an error of about
 * sqrt(2) * 2^-9 * |output| ~ 2e-3 rms; 1.5e-2 + 1e-2 |want| leaves five to seven sigma over every
 * element of the table. Attention rounds q, k and v: scores up to ~8 in the cases (inputs in [-2, 2]),
 * so the softmax weights move by up to ~2^-9 * 8 relative, and outputs (weighted means of v in [-1, 1])
 * by a few 1e-3. Ops that do not compute in bf16 keep the f32 tolerances.
 */
export const bf16Tolerances: Partial<Record<OpName, Tolerance>> = {
  matmul: { atol: 1.5e-2, rtol: 1e-2 },
  attention: { atol: 1.5e-2, rtol: 1e-2 },
};

/** Tracks tensors a case allocates so they are freed even when the op throws. */
class Scope {
  private readonly tensors: Tensor[] = [];
  constructor(readonly b: Backend) {}
  track(t: Tensor): Tensor {
    this.tensors.push(t);
    return t;
  }
  /** f32 tensor filled with uniform values in [lo, hi). */
  random(rng: Rng, shape: number[], lo = -1, hi = 1): Tensor {
    const t = this.track(this.b.alloc(shape));
    this.b.write(t, rng.floats(numel(shape), lo, hi));
    return t;
  }
  /** Weight-like tensor uploaded in `dtype` (f16 / bf16 rounded from the same f32 values). */
  weight(rng: Rng, shape: number[], dtype: DType, scale = 1): Tensor {
    const data = rng.floats(numel(shape), -scale, scale);
    return this.track(this.b.upload(fromF32Array(data, dtype), shape, dtype));
  }
  freeAll(): void {
    for (const t of this.tensors.splice(0)) this.b.free(t);
  }
}

async function scoped(b: Backend, body: (s: Scope) => Promise<Float32Array[]>): Promise<Float32Array[]> {
  const s = new Scope(b);
  try {
    return await body(s);
  } finally {
    s.freeAll();
  }
}

// ---- matmul ----

type Epilogue = 'plain' | 'bias' | 'bias+gelu' | 'bias+gelu+residual' | 'residual-aliasing-out';

function matmulCase(M: number, K: number, N: number, dtype: DType, epi: Epilogue): OpCase {
  return {
    name: `matmul ${dtype} M=${M} K=${K} N=${N} ${epi}`,
    op: 'matmul',
    run: (b, rng) =>
      scoped(b, async (s) => {
        // Weights scaled like a trained layer (~1/sqrt(K)) keep outputs O(1) so GELU sees both signs.
        const w = s.weight(rng, [N, K], dtype, 2 / Math.sqrt(K));
        const x = s.random(rng, [M, K]);
        const out = s.random(rng, [M, N]);
        const opts: MatmulOptions = {};
        if (epi !== 'plain' && epi !== 'residual-aliasing-out') opts.bias = s.random(rng, [N]);
        if (epi.includes('gelu')) opts.gelu = true;
        if (epi === 'bias+gelu+residual') opts.residual = s.random(rng, [M, N]);
        if (epi === 'residual-aliasing-out') opts.residual = out;
        b.matmul(out, x, w, opts);
        return [await b.read(out)];
      }),
  };
}

function matmulCases(): OpCase[] {
  const cases: OpCase[] = [];
  const Ms = [1, 2, 3, 5, 8, 9, 17, 64];
  const dims = [1, 7, 33, 64, 100, 768];
  const dtypes: DType[] = ['f32', 'f16', 'bf16'];
  const epis: Epilogue[] = ['plain', 'bias', 'bias+gelu', 'bias+gelu+residual', 'residual-aliasing-out'];
  // A Latin-square walk instead of the full product: every M meets every K, every N, every dtype and
  // every epilogue, at a cost the reference can pay in seconds.
  Ms.forEach((M, i) => {
    dims.forEach((K, j) => {
      const N = dims[(i + j + 1) % dims.length]!;
      if (M * K * N > 64 * 768 * 100) return; // big shapes come below, a few at a time
      cases.push(matmulCase(M, K, N, dtypes[(i + j) % 3]!, epis[(i + 2 * j) % epis.length]!));
    });
  });
  // Every dtype x epilogue on one odd shape.
  for (const dtype of dtypes) for (const epi of epis) cases.push(matmulCase(17, 100, 33, dtype, epi));
  // Model-sized shapes: decode GEMV (M = 1), small batches and a 64-row GEMM, each weight dtype.
  for (const dtype of dtypes) {
    cases.push(matmulCase(1, 768, 768, dtype, 'bias'));
    cases.push(matmulCase(4, 768, 100, dtype, 'bias+gelu'));
    cases.push(matmulCase(64, 768, 64, dtype, 'bias+gelu+residual'));
    cases.push(matmulCase(64, 64, 768, dtype, 'residual-aliasing-out'));
  }
  cases.push(matmulCase(3, 7, 768, 'bf16', 'plain'));
  cases.push(matmulCase(64, 768, 768, 'bf16', 'bias+gelu'));
  cases.push(matmulCase(100, 33, 100, 'f32', 'bias'));
  // Long K (the FFN down projection's 4d; K blocking with a partial last block).
  cases.push(matmulCase(13, 3072, 40, 'bf16', 'bias+gelu+residual'));
  cases.push(matmulCase(20, 600, 35, 'f16', 'residual-aliasing-out'));
  // Small M, N not a multiple of the CPU path's 3-row W groups (N % 3 = 2), odd K tails.
  cases.push(matmulCase(6, 37, 50, 'f32', 'bias+gelu'));
  cases.push(matmulCase(7, 768, 35, 'bf16', 'bias+gelu+residual'));
  // Small M with W over 16 MiB: the CPU path that streams W one row at a time.
  cases.push(matmulCase(7, 768, 6001, 'f32', 'bias+gelu+residual'));
  cases.push(matmulCase(2, 771, 6001, 'f32', 'residual-aliasing-out'));
  return cases;
}

// ---- layerNorm, add ----

function layerNormCase(rows: number, width: number): OpCase {
  return {
    name: `layerNorm rows=${rows} width=${width}`,
    op: 'layerNorm',
    run: (b, rng) =>
      scoped(b, async (s) => {
        const x = s.random(rng, [rows, width], -3, 5); // non-zero mean, like a residual stream
        const gamma = s.random(rng, [width], 0.5, 1.5);
        const beta = s.random(rng, [width]);
        const out = s.random(rng, [rows, width]);
        b.layerNorm(out, x, gamma, beta, 1e-5);
        return [await b.read(out)];
      }),
  };
}

function addCase(shape: number[], alias: 'none' | 'a' | 'b'): OpCase {
  return {
    name: `add [${shape}] out=${alias === 'none' ? 'new' : alias}`,
    op: 'add',
    run: (b, rng) =>
      scoped(b, async (s) => {
        const a = s.random(rng, shape, -10, 10);
        const c = s.random(rng, shape);
        const out = alias === 'a' ? a : alias === 'b' ? c : s.random(rng, shape);
        b.add(out, a, c);
        return [await b.read(out)];
      }),
  };
}

// ---- gatherRows ----

interface GatherSpec {
  label: string;
  srcShape: number[];
  dtype: DType;
  outShape: number[];
  count: number;
  outRowOffset?: number;
  width?: number;
}

function gatherCase(g: GatherSpec): OpCase {
  return {
    name: `gatherRows ${g.label} ${g.dtype} src=[${g.srcShape}] out=[${g.outShape}] n=${g.count} off=${g.outRowOffset ?? 0} width=${g.width ?? 'default'}`,
    op: 'gatherRows',
    run: (b, rng) =>
      scoped(b, async (s) => {
        const src = s.weight(rng, g.srcShape, g.dtype);
        const width = g.width ?? g.srcShape[g.srcShape.length - 1]!;
        const srcRows = numel(g.srcShape) / width;
        const rows = new Int32Array(g.count);
        for (let i = 0; i < g.count; i++) rows[i] = i === 0 ? srcRows - 1 : rng.int(srcRows); // incl. the last row
        const out = s.random(rng, g.outShape);
        b.gatherRows(out, src, rows, g.outRowOffset, g.width);
        return [await b.read(out)];
      }),
  };
}

function gatherCases(): OpCase[] {
  const specs: GatherSpec[] = [
    { label: 'embedding', srcShape: [1000, 64], dtype: 'f32', outShape: [5, 64], count: 5 },
    { label: 'embedding', srcShape: [1000, 64], dtype: 'bf16', outShape: [7, 64], count: 5, outRowOffset: 2 },
    { label: 'embedding', srcShape: [513, 33], dtype: 'f16', outShape: [3, 33], count: 3 },
    // Concat embedder: L = 4 token vectors of width d/L = 48 form one [B, d = 192] row.
    { label: 'concat-embedder', srcShape: [500, 48], dtype: 'bf16', outShape: [3, 192], count: 12 },
    { label: 'concat-embedder', srcShape: [500, 48], dtype: 'f32', outShape: [2, 192], count: 8, width: 48 },
    // Picking rows of an activation viewed narrower: [B, R*d] read as [B*R, d].
    { label: 'activation-rows', srcShape: [6, 2 * 40], dtype: 'f32', outShape: [4, 40], count: 4, width: 40 },
    { label: 'one-row', srcShape: [1, 7], dtype: 'bf16', outShape: [1, 7], count: 1 },
  ];
  return specs.map(gatherCase);
}

// ---- rotary, kvWrite ----

function rotaryCase(T: number, H: number, hd: number, rot: number, maxPos: number): OpCase {
  return {
    name: `rotary T=${T} H=${H} hd=${hd} rot=${rot} maxPos=${maxPos}`,
    op: 'rotary',
    run: (b, rng) =>
      scoped(b, async (s) => {
        const qkv = s.random(rng, [T, H, 3, hd]);
        const positions = new Int32Array(T);
        for (let t = 0; t < T; t++) positions[t] = t === 0 ? maxPos : rng.int(maxPos + 1);
        b.rotary(qkv, positions, H, hd, rot, 10000);
        return [await b.read(qkv)]; // v and the unrotated dims must come back untouched
      }),
  };
}

function kvWriteCase(T: number, H: number, hd: number, numSlots: number): OpCase {
  return {
    name: `kvWrite T=${T} H=${H} hd=${hd} slots=${numSlots}`,
    op: 'kvWrite',
    run: (b, rng) =>
      scoped(b, async (s) => {
        const kCache = s.random(rng, [numSlots, H * hd]);
        const vCache = s.random(rng, [numSlots, H * hd]);
        const qkv = s.random(rng, [T, H, 3, hd]);
        const slots = rng.permutation(numSlots).slice(0, T); // scattered, like pages
        b.kvWrite(kCache, vCache, qkv, slots, H, hd);
        return [await b.read(kCache), await b.read(vCache)];
      }),
  };
}

// ---- attention ----

/** One sequence of an attention call: its cache length and the context length of each query row. */
interface SeqSpec {
  len: number;
  rowCtx: number[];
}

/**
 * Builds a plan whose sequences own random, disjoint slots of a cache of `numSlots`: scattered one by
 * one (page = 1), or in runs of `page` consecutive slots with the pages shuffled, as a KV page pool
 * hands them out (backends may take a different path for each layout).
 */
export function buildPlan(rng: Rng, seqs: SeqSpec[], numSlots: number, page = 1): AttentionPlan {
  const total = seqs.reduce((a, q) => a + Math.ceil(q.len / page) * page, 0);
  if (total > numSlots) throw new Error('buildPlan: cache too small');
  const pages = rng.permutation(Math.floor(numSlots / page));
  const offsets = new Int32Array(seqs.length + 1);
  const rowSeq: number[] = [];
  const rowCtx: number[] = [];
  const flat: number[] = [];
  let nextPage = 0;
  seqs.forEach((q, i) => {
    offsets[i + 1] = offsets[i]! + q.len;
    for (let j = 0; j < q.len; j++) {
      if (j % page === 0) nextPage++;
      flat.push(pages[nextPage - 1]! * page + (j % page));
    }
    for (const c of q.rowCtx) {
      rowSeq.push(i);
      rowCtx.push(c);
    }
  });
  return {
    rowSeq: Int32Array.from(rowSeq),
    rowCtxLen: Int32Array.from(rowCtx),
    seqSlotOffsets: offsets,
    seqSlots: Int32Array.from(flat),
    maxCtxLen: Math.max(...rowCtx),
  };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * One attention case. `fill` says how the cache is made: 'random' writes it directly; 'kvWrite' fills
 * tensors from allocKvCache (where the backend has it) through kvWrite, the path a model takes, and the
 * one that sees a bf16 KV cache.
 */
function attentionCase(
  label: string,
  H: number,
  hd: number,
  seqs: SeqSpec[],
  numSlots: number,
  page = 1,
  fill: 'random' | 'kvWrite' = 'random',
): OpCase {
  const via = fill === 'kvWrite' ? ' via kvWrite' : '';
  return {
    name: `attention ${label}${via} H=${H} hd=${hd} seqs=[${seqs.map((q) => `${q.len}:${q.rowCtx.length}q`)}]${page > 1 ? ` pages of ${page}` : ''}`,
    op: 'attention',
    run: (b, rng) =>
      scoped(b, async (s) => {
        const plan = buildPlan(rng, seqs, numSlots, page);
        const T = plan.rowSeq.length;
        let kCache: Tensor;
        let vCache: Tensor;
        let qkv: Tensor;
        if (fill === 'random') {
          qkv = s.random(rng, [T, H, 3, hd], -2, 2); // spread scores so softmax is not flat
          kCache = s.random(rng, [numSlots, H * hd], -2, 2);
          vCache = s.random(rng, [numSlots, H * hd]);
        } else {
          const cache = (): Tensor => s.track(b.allocKvCache?.([numSlots, H * hd]) ?? b.alloc([numSlots, H * hd]));
          kCache = cache();
          vCache = cache();
          const rows = s.random(rng, [numSlots, H, 3, hd], -2, 2);
          b.kvWrite(
            kCache,
            vCache,
            rows,
            Int32Array.from({ length: numSlots }, (_, i) => i),
            H,
            hd,
          );
          qkv = s.random(rng, [T, H, 3, hd], -2, 2);
        }
        const out = s.random(rng, [T, H * hd]);
        b.attention(out, qkv, kCache, vCache, plan, H, hd, 1 / Math.sqrt(hd));
        return [await b.read(out)];
      }),
  };
}

// Sequence mixes used more than once: four decodes of different lengths (incl. length 1), two short
// decodes, and one sequence prefilling a chunk while two others decode.
const FOUR_DECODES: SeqSpec[] = [
  { len: 1, rowCtx: [1] },
  { len: 37, rowCtx: [37] },
  { len: 300, rowCtx: [300] },
  { len: 64, rowCtx: [64] },
];
const TWO_DECODES: SeqSpec[] = [
  { len: 70, rowCtx: [70] },
  { len: 9, rowCtx: [9] },
];
const PREFILL_AND_DECODES: SeqSpec[] = [
  { len: 20, rowCtx: range(13, 21) },
  { len: 70, rowCtx: [70] },
  { len: 3, rowCtx: [3] },
];

function attentionCases(): OpCase[] {
  return [
    // Causal prefill chunks: a whole prompt, and a later chunk whose rows see the earlier chunk too.
    attentionCase('prefill', 2, 16, [{ len: 9, rowCtx: range(1, 10) }], 16),
    attentionCase('prefill-chunk', 4, 64, [{ len: 150, rowCtx: range(101, 151) }], 200),
    // Single-query decode over paged slots, several sequences of different lengths (incl. length 1).
    attentionCase('decode', 12, 64, FOUR_DECODES, 512),
    attentionCase(
      'decode',
      3,
      8,
      [
        { len: 5, rowCtx: [5] },
        { len: 2, rowCtx: [2] },
      ],
      9,
    ),
    attentionCase('decode', 1, 80, [{ len: 129, rowCtx: [129] }], 130),
    // One sequence decoding alone (backends may split its heads across threads); a head width that is
    // not a multiple of 8 (vector tails).
    attentionCase('decode-single', 12, 64, [{ len: 200, rowCtx: [200] }], 256),
    attentionCase('decode', 3, 12, TWO_DECODES, 90),
    attentionCase('prefill', 2, 12, [{ len: 19, rowCtx: range(1, 20) }], 19),
    // Token decoder's local window: each sequence's slots are its window, rows see a growing prefix.
    attentionCase(
      'local-window',
      4,
      32,
      [
        { len: 6, rowCtx: [3, 4, 5, 6] },
        { len: 6, rowCtx: [2] },
        { len: 4, rowCtx: [4] },
      ],
      24,
    ),
    // Mixed step: one sequence prefills a chunk while two others decode.
    attentionCase('mixed', 2, 64, PREFILL_AND_DECODES, 100),
    // The same over KV pages (runs of consecutive slots, pages shuffled), as the engine lays them out.
    attentionCase('decode', 12, 64, FOUR_DECODES, 512, 16),
    attentionCase('decode', 3, 12, TWO_DECODES, 96, 16),
    attentionCase('decode-single', 12, 64, [{ len: 200, rowCtx: [200] }], 256, 16),
    attentionCase('mixed', 2, 64, PREFILL_AND_DECODES, 128, 16),
    // Caches written by kvWrite into allocKvCache tensors (bf16 on a backend with a bf16 KV cache).
    attentionCase('decode', 12, 64, FOUR_DECODES, 512, 16, 'kvWrite'),
    attentionCase('decode', 3, 12, TWO_DECODES, 90, 1, 'kvWrite'),
    attentionCase('mixed', 2, 64, PREFILL_AND_DECODES, 128, 16, 'kvWrite'),
    // More heads than one vector of scores holds (a decode kernel may take them 16 at a time), and a
    // wide head (hd = 128).
    attentionCase('decode', 20, 32, TWO_DECODES, 96, 16),
    attentionCase('decode', 20, 32, TWO_DECODES, 96, 16, 'kvWrite'),
    attentionCase('decode', 2, 128, TWO_DECODES, 96, 16),
    attentionCase('decode', 2, 128, TWO_DECODES, 96, 16, 'kvWrite'),
    // Long causal prefills (a backend may pack blocks of keys shared by a task's rows): a whole prompt over
    // three key blocks with a head width of 5 panels of 16; a chunk whose first rows see none of its last
    // key block (rowCtx 50.., blocks of 64); an odd head width (pairs padded); a multi-chunk mix over pages.
    attentionCase('prefill-long', 3, 80, [{ len: 140, rowCtx: range(1, 141) }], 160, 16),
    attentionCase('prefill-chunk', 2, 24, [{ len: 119, rowCtx: range(50, 120) }], 128, 16, 'kvWrite'),
    attentionCase('prefill-chunk', 2, 18, [{ len: 100, rowCtx: range(61, 101) }], 100),
    attentionCase(
      'prefill-mixed',
      4,
      64,
      [
        { len: 90, rowCtx: range(41, 91) },
        { len: 70, rowCtx: [70] },
        { len: 33, rowCtx: range(1, 34) },
      ],
      224,
      16,
      'kvWrite',
    ),
  ];
}

export const opCases: OpCase[] = [
  ...matmulCases(),
  layerNormCase(1, 768),
  layerNormCase(5, 33),
  layerNormCase(64, 192),
  layerNormCase(3, 1),
  addCase([7, 33], 'none'),
  addCase([3, 768], 'a'),
  addCase([1025], 'b'),
  ...gatherCases(),
  rotaryCase(5, 2, 64, 16, 2047),
  rotaryCase(3, 12, 64, 16, 100000),
  rotaryCase(4, 1, 8, 8, 9),
  rotaryCase(2, 3, 80, 20, 511),
  rotaryCase(1, 4, 32, 32, 0),
  rotaryCase(3, 2, 12, 4, 77),
  kvWriteCase(1, 12, 64, 16),
  kvWriteCase(7, 3, 24, 40),
  kvWriteCase(33, 2, 8, 33),
  kvWriteCase(4, 3, 12, 10),
  ...attentionCases(),
  ...samplingCases(),
];
