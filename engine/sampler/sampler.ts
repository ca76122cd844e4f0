// Turns one logits row into one token, per request, on the host. The order follows vLLM v1:
//   1. logit_bias (added)
//   2. repetition_penalty (HF: over prompt + generated tokens, each once: positive logits divided,
//      negative multiplied)
//   3. frequency_penalty and presence_penalty (OpenAI: over generated tokens, minus
//      count * frequency + presence)
//   -- logprobs are read here: log-softmax of the logits after steps 1-3, before temperature and
//      truncation (so top_logprobs show the distribution the penalties produced, never -inf, and do
//      not depend on the sampling knobs). vLLM's default "raw_logprobs" is taken before step 1; ours
//      differs only when bias or penalties are set.
//   4. temperature 0 (below 1e-5): argmax, ties to the lowest id. Otherwise divide by temperature,
//   5. min_p (keep p >= min_p * p_max), then top_k, then top_p over what remains (renormalized), and
//      draw one uniform number from the request's own RNG (inverse CDF in token-id order).
// The row is modified in place (steps 1-3): it belongs to the step's output buffer.
//
// Cost: no full sort anywhere. Plain temperature (and min_p) sampling counts tokens per exponent bucket
// and draws by rejection (no exponential per token); top_k keeps a heap of k; top_p takes one
// exponential per token (fast-exp.ts) and a histogram of exponents that leaves one bucket to sort.
// The full-vocabulary scans run in the CPU addon when it is built (kernels/cpu/sampling.ts: the same
// arithmetic in the same order, so the same tokens), else in the loops below.
import type { SamplingPasses } from '../../kernels/cpu/sampling.ts';
import { nativeSamplingPasses } from '../../kernels/cpu/sampling.ts';
import type { SamplingParams } from '../api.ts';
import { expNeg, LIMIT, LN2_STEP, SCALE, TABLE } from './fast-exp.ts';
import { Rng } from './rng.ts';
import { topKIndices } from './top-k.ts';

export interface SampledLogprobs {
  /** Log-probability of the chosen token. */
  logprob: number;
  /** The `logprobs` most likely tokens, best first. */
  top: { tokenId: number; logprob: number }[];
}

export interface SampleResult {
  token: number;
  logprobs?: SampledLogprobs;
}

const GREEDY_EPS = 1e-5;
const BUCKETS_PER_NAT = 16;
const NUM_BUCKETS = 64 * BUCKETS_PER_NAT; // exponents past 64 nats (p < 1.6e-28) never enter a nucleus
/**
 * Exponent bin of a logit for rejection sampling: 0 .. NUM_BUCKETS-1 by (max - x) / T in 1/16 nats,
 * NUM_BUCKETS for d >= 64 and -Infinity (never accepted), NUM_BUCKETS + 1 for NaN and tokens below the
 * min_p floor (never counted).
 */
function binOf(x: number, max: number, scale: number, floor: number): number {
  if (!(x >= floor)) return NUM_BUCKETS + 1;
  const t = (max - x) * scale;
  return t < NUM_BUCKETS ? t | 0 : NUM_BUCKETS;
}
/** Stride of one histogram lane in SamplerScratch.laneCounts. */
const LANE = NUM_BUCKETS + 2;

/** e^(-lower edge) of each bucket; the last entry is the overflow bin (d >= 64). */
const BUCKET_BOUND = Float64Array.from({ length: NUM_BUCKETS + 1 }, (_, b) => Math.exp(-b / BUCKETS_PER_NAT));

let defaultPasses: SamplingPasses | null | undefined;
/** The addon's passes set up with this file's constants, or null without the addon (loaded once). */
export function nativePasses(): SamplingPasses | null {
  defaultPasses ??= nativeSamplingPasses({
    expTable: TABLE, expScale: SCALE, expLn2Step: LN2_STEP, expLimit: LIMIT, bucketsPerNat: BUCKETS_PER_NAT, numBuckets: NUM_BUCKETS,
  });
  return defaultPasses;
}

/** Reusable buffers for one vocabulary width (one per engine loop), and the passes to run. */
export class SamplerScratch {
  readonly weights: Float64Array;
  readonly bucketMass = new Float64Array(NUM_BUCKETS);
  /** Bin counts: NUM_BUCKETS + 1 are read; the last entry is the never-counted bin the addon also fills. */
  readonly bucketCounts = new Int32Array(NUM_BUCKETS + 2);
  readonly laneCounts = new Int32Array(4 * LANE);
  readonly laneSums = new Float64Array(4);
  /** Token ids of the top_p edge bucket (native path). */
  readonly edgeIds: Int32Array;
  /** @param passes the native passes (default: the addon's when built); null runs the JavaScript loops. */
  constructor(
    readonly vocabSize: number,
    readonly passes: SamplingPasses | null = nativePasses(),
  ) {
    this.weights = new Float64Array(vocabSize);
    this.edgeIds = new Int32Array(passes ? vocabSize : 0);
  }
}

/** One request's sampling state: its parameters, its RNG and the token counts its penalties need. */
export class SequenceSampler {
  readonly rng: Rng;
  private readonly biasIds: number[] = [];
  private readonly biasValues: number[] = [];
  /** Distinct prompt + generated tokens (repetition penalty); null when the penalty is off. */
  private readonly seen: Set<number> | null;
  /** Generated token -> count (frequency / presence penalties). */
  private readonly counts = new Map<number, number>();

  constructor(
    readonly params: SamplingParams,
    promptIds: readonly number[],
  ) {
    this.rng = new Rng(params.seed ?? Rng.randomSeed());
    for (const [id, bias] of Object.entries(params.logitBias ?? {})) {
      this.biasIds.push(Number(id));
      this.biasValues.push(bias);
    }
    this.seen = params.repetitionPenalty !== 1 ? new Set(promptIds) : null;
  }

  /** Records a generated token (after sampling it, and when restoring state). */
  observe(token: number): void {
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
    this.seen?.add(token);
  }

  /** Samples from row logits[offset .. offset + vocabSize). */
  sample(logits: Float32Array, offset: number, vocabSize: number, scratch: SamplerScratch): SampleResult {
    const p = this.params;
    const row = logits.subarray(offset, offset + vocabSize);
    this.applyPenalties(row);

    const passes = scratch.passes;
    const peak = rowPeak(logits, offset, vocabSize, passes);
    const max = peak.max;
    let argmax = peak.argmax;
    if (argmax < 0 && p.temperature < GREEDY_EPS) argmax = Math.max(0, row.indexOf(max));
    const token = p.temperature < GREEDY_EPS ? argmax : this.sampleRandom(logits, offset, row, max, scratch);
    const result: SampleResult = { token };
    if (p.logprobs !== undefined && p.logprobs !== null) result.logprobs = logprobsOf(row, max, token, p.logprobs, passes);
    return result;
  }

  private applyPenalties(row: Float32Array): void {
    const p = this.params;
    const V = row.length;
    for (let j = 0; j < this.biasIds.length; j++) {
      const id = this.biasIds[j];
      if (id >= 0 && id < V) row[id] += this.biasValues[j];
    }
    if (this.seen) {
      const rp = p.repetitionPenalty;
      for (const t of this.seen) {
        if (t < 0 || t >= V) continue;
        const v = row[t];
        row[t] = v > 0 ? v / rp : v * rp;
      }
    }
    const fp = p.frequencyPenalty;
    const pp = p.presencePenalty;
    if (fp !== 0 || pp !== 0) {
      for (const [t, c] of this.counts) if (t >= 0 && t < V) row[t] -= c * fp + pp;
    }
  }

  /** row is logits[offset .. offset + V) (the native passes take the whole array and the offset). */
  private sampleRandom(logits: Float32Array, offset: number, row: Float32Array, max: number, scratch: SamplerScratch): number {
    const p = this.params;
    const V = row.length;
    const invT = 1 / p.temperature;
    // min_p in logit units: p_i >= minP * p_max  <=>  x_i >= max + T ln(minP)
    const floor = p.minP > 0 ? max + p.temperature * Math.log(p.minP) : -Infinity;
    const topP = p.topP > 0 && p.topP < 1 ? p.topP : 1;

    if (p.topK > 0 && p.topK < V) {
      const cand = topIndices(scratch.passes, logits, offset, V, p.topK, floor);
      const w = scratch.weights;
      let total = 0;
      for (let j = 0; j < cand.length; j++) {
        w[j] = expNeg((max - row[cand[j]]) * invT);
        total += w[j];
      }
      let n = cand.length;
      if (topP < 1) {
        const target = topP * total;
        let acc = 0;
        for (let j = 0; j < cand.length; j++) {
          acc += w[j];
          if (acc >= target) {
            n = j + 1;
            break;
          }
        }
        total = acc;
      }
      // Draw in token-id order so the result does not depend on how candidates were found.
      const kept = cand.slice(0, n).map((id, j) => [id, w[j]] as const).sort((a, b) => a[0] - b[0]);
      let u = this.rng.next() * total;
      for (const [id, wt] of kept) {
        u -= wt;
        if (u < 0) return id;
      }
      return kept[kept.length - 1][0];
    }

    if (topP >= 1) return this.drawByRejection(logits, offset, row, max, invT, floor, scratch);

    // top_p: one pass for the weights and the mass per exponent bucket, then one partial scan to draw.
    const w = scratch.weights;
    const mass = scratch.bucketMass;
    const nucleus = topP < 1;
    if (nucleus) mass.fill(0);
    const passes = scratch.passes;
    if (passes) {
      let total = passes.expWeights(logits, offset, V, max, invT, floor, w, nucleus ? mass : null);
      let edge = NUM_BUCKETS;
      let cutoff = -Infinity;
      if (nucleus) [edge, cutoff, total] = this.nucleusEdge(logits, offset, row, max, invT, topP * total, scratch);
      return passes.drawWeighted(logits, offset, V, w, max, invT, nucleus, edge, cutoff, this.rng.next() * total);
    }
    // Entry i adds into sum i % 4, summed as (s0 + s1) + (s2 + s3): the addon's AVX2 lanes do the same.
    const sums = scratch.laneSums.fill(0);
    for (let i = 0; i < V; i++) {
      const x = row[i];
      if (!(x >= floor)) {
        w[i] = 0;
        continue;
      }
      const d = (max - x) * invT;
      const e = expNeg(d);
      w[i] = e;
      sums[i & 3] += e;
      if (nucleus) {
        const b = (d * BUCKETS_PER_NAT) | 0;
        if (b < NUM_BUCKETS) mass[b] += e;
      }
    }
    let total = sums[0] + sums[1] + (sums[2] + sums[3]);
    let edge = NUM_BUCKETS;
    let cutoff = -Infinity;
    if (nucleus) [edge, cutoff, total] = this.nucleusEdge(logits, offset, row, max, invT, topP * total, scratch);
    let u = this.rng.next() * total;
    let last = 0;
    for (let i = 0; i < V; i++) {
      const e = w[i];
      if (e === 0) continue;
      if (nucleus) {
        const b = ((max - row[i]) * invT * BUCKETS_PER_NAT) | 0;
        if (b > edge || (b === edge && row[i] < cutoff)) continue;
      }
      last = i;
      u -= e;
      if (u < 0) return i;
    }
    return last; // rounding left u a hair above zero
  }

  /**
   * Exact draw from softmax(x / T) over tokens with x >= floor, without an exponential per token.
   * Tokens are counted per exponent bucket (d = (max - x) / T in 1/16-nat bins, one overflow bin for
   * d >= 64); each bin's mass is bounded by count * e^(-d_low). A bin is drawn by its bound, a token
   * uniformly inside it, and accepted with probability e^(-(d - d_low)) >= e^(-1/16): rejection sampling
   * that needs ~1.07 tries, i.e. one counting pass plus a partial scan per row.
   */
  private drawByRejection(logits: Float32Array, offset: number, row: Float32Array, max: number, invT: number, floor: number, scratch: SamplerScratch): number {
    const V = row.length;
    const scale = invT * BUCKETS_PER_NAT; // t = (max - x) * scale: the exponent in bins; bin = floor(t)
    const counts = scratch.bucketCounts;
    const passes = scratch.passes;
    if (passes) {
      passes.binCounts(logits, offset, V, max, scale, floor, counts);
    } else {
      // Four histograms filled in turn, then summed: one would make each increment wait for the last.
      const lanes = scratch.laneCounts;
      lanes.fill(0);
      const n = V & ~3;
      for (let i = 0; i < n; i += 4) {
        lanes[binOf(row[i], max, scale, floor)]++;
        lanes[LANE + binOf(row[i + 1], max, scale, floor)]++;
        lanes[2 * LANE + binOf(row[i + 2], max, scale, floor)]++;
        lanes[3 * LANE + binOf(row[i + 3], max, scale, floor)]++;
      }
      for (let i = n; i < V; i++) lanes[binOf(row[i], max, scale, floor)]++;
      for (let b = 0; b <= NUM_BUCKETS; b++) counts[b] = lanes[b] + lanes[LANE + b] + lanes[2 * LANE + b] + lanes[3 * LANE + b];
    }
    let total = 0;
    for (let b = 0; b <= NUM_BUCKETS; b++) total += counts[b] * BUCKET_BOUND[b];
    for (let attempt = 0; attempt < 10000; attempt++) {
      let u = this.rng.next() * total;
      let bin = 0;
      for (; bin < NUM_BUCKETS; bin++) {
        u -= counts[bin] * BUCKET_BOUND[bin];
        if (u < 0) break;
      }
      while (counts[bin] === 0 && bin > 0) bin--; // rounding ran past the last non-empty bin
      let k = Math.floor(this.rng.next() * counts[bin]);
      const accept = this.rng.next();
      if (passes) {
        const i = passes.findInBin(logits, offset, V, max, scale, floor, bin, k);
        if (i >= 0 && accept < expNeg(((max - row[i]) * scale - bin) / BUCKETS_PER_NAT)) return i;
        continue;
      }
      for (let i = 0; i < V; i++) {
        if (binOf(row[i], max, scale, floor) !== bin || k-- > 0) continue;
        // accept with e^(-(d - d_low)), d - d_low = (t - bin) / BUCKETS_PER_NAT
        if (accept < expNeg(((max - row[i]) * scale - bin) / BUCKETS_PER_NAT)) return i;
        break;
      }
    }
    throw new Error('sampler: rejection sampling did not converge (non-finite logits?)');
  }

  /**
   * The top_p nucleus from the bucket masses: bins below `edge` are in, bins above are out, and in the
   * edge bin (the only one sorted) tokens at or above `cutoff` are in (ties all kept). Returns
   * [edge, cutoff, nucleus mass].
   */
  private nucleusEdge(logits: Float32Array, offset: number, row: Float32Array, max: number, invT: number, target: number, scratch: SamplerScratch): [number, number, number] {
    const V = row.length;
    const w = scratch.weights;
    const mass = scratch.bucketMass;
    let acc = 0;
    let edge = NUM_BUCKETS - 1;
    for (let b = 0; b < NUM_BUCKETS; b++) {
      if (acc + mass[b] >= target) {
        edge = b;
        break;
      }
      acc += mass[b];
    }
    let inEdge: number[] = [];
    if (scratch.passes) {
      const n = scratch.passes.collectBucket(logits, offset, V, w, max, invT, edge, scratch.edgeIds);
      inEdge = Array.from(scratch.edgeIds.subarray(0, n));
    } else {
      for (let i = 0; i < V; i++) {
        if (w[i] === 0) continue;
        if ((((max - row[i]) * invT * BUCKETS_PER_NAT) | 0) === edge) inEdge.push(i);
      }
    }
    inEdge.sort((a, b) => row[b] - row[a] || a - b);
    let cutoff = Infinity;
    let edgeAcc = acc;
    for (const i of inEdge) {
      if (edgeAcc >= target && row[i] < cutoff) break;
      edgeAcc += w[i];
      cutoff = row[i];
    }
    return [edge, cutoff, edgeAcc];
  }
}

/**
 * Largest value of logits[offset .. offset + V) (NaN ignored; -Infinity if none), and the first index
 * holding it when the addon found it on the way (-1 otherwise: the JavaScript scan finds only the value).
 */
export function rowPeak(logits: Float32Array, offset: number, V: number, passes: SamplingPasses | null): { max: number; argmax: number } {
  if (!passes) return { max: rowMax(logits.subarray(offset, offset + V)), argmax: -1 };
  const argmax = passes.rowArgmax(logits, offset, V);
  return { max: argmax >= 0 ? logits[offset + argmax] : -Infinity, argmax };
}

/**
 * Largest value of a row (NaN ignored; -Infinity if none). Four independent running maxima: a single
 * one makes every comparison wait for the previous, which costs over twice as much here.
 */
export function rowMax(row: Float32Array): number {
  let m0 = -Infinity;
  let m1 = -Infinity;
  let m2 = -Infinity;
  let m3 = -Infinity;
  const n = row.length & ~3;
  for (let i = 0; i < n; i += 4) {
    const v0 = row[i];
    const v1 = row[i + 1];
    const v2 = row[i + 2];
    const v3 = row[i + 3];
    if (v0 > m0) m0 = v0;
    if (v1 > m1) m1 = v1;
    if (v2 > m2) m2 = v2;
    if (v3 > m3) m3 = v3;
  }
  let m = Math.max(m0, m1, m2, m3);
  for (let i = n; i < row.length; i++) if (row[i] > m) m = row[i];
  return m;
}

/** topKIndices over logits[offset .. offset + V), in the addon when it is built. */
function topIndices(passes: SamplingPasses | null, logits: Float32Array, offset: number, V: number, k: number, floor: number): number[] {
  if (!passes) return topKIndices(logits, offset, V, k, floor);
  const out = new Int32Array(Math.max(0, Math.min(k, V)));
  return Array.from(out.subarray(0, passes.topK(logits, offset, V, k, floor, out)));
}

/** Log-softmax of the (penalized) row at `token`, plus its `numTop` best entries. */
export function logprobsOf(row: Float32Array, max: number, token: number, numTop: number, passes: SamplingPasses | null = null): SampledLogprobs {
  let sum: number;
  if (passes) {
    sum = passes.expSum(row, 0, row.length, max);
  } else {
    // Four sums, entry i into sum i % 4 (as the addon's AVX2 lanes): one would make each add wait.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    const n = row.length & ~3;
    for (let i = 0; i < n; i += 4) {
      s0 += expNeg(max - row[i]);
      s1 += expNeg(max - row[i + 1]);
      s2 += expNeg(max - row[i + 2]);
      s3 += expNeg(max - row[i + 3]);
    }
    for (let i = n; i < row.length; i++) {
      const e = expNeg(max - row[i]);
      if ((i & 3) === 0) s0 += e;
      else if ((i & 3) === 1) s1 += e;
      else s2 += e;
    }
    sum = s0 + s1 + (s2 + s3);
  }
  const logZ = max + Math.log(sum);
  const top = numTop > 0 ? topIndices(passes, row, 0, row.length, numTop, -Infinity).map((id) => ({ tokenId: id, logprob: row[id] - logZ })) : [];
  return { logprob: row[token] - logZ, top };
}

/** Sampling parameters with every knob off (greedy); tests and the bench start from these. */
export function defaultSamplingParams(overrides: Partial<SamplingParams> = {}): SamplingParams {
  return {
    temperature: 0,
    topP: 1,
    topK: 0,
    minP: 0,
    frequencyPenalty: 0,
    presencePenalty: 0,
    repetitionPenalty: 1,
    logitBias: {},
    stop: [],
    stopTokenIds: [],
    maxTokens: 16,
    ignoreEos: false,
    ...overrides,
  };
}
