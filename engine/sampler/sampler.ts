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
// exponential per token (kernels/fast-exp.ts) and a histogram of exponents that leaves one bucket to sort.
// Every full-vocabulary scan is one of kernels/sampling.ts's passes: the CPU addon's when it is built
// (loaded on the first SamplerScratch, not at import), else the JavaScript reference's; both do the same
// arithmetic in the same order, so a seeded request draws the same tokens with either.
import { expNeg } from '../../kernels/fast-exp.ts';
import { nativeSamplingPasses } from '../../kernels/cpu/backend.ts';
import { ReferenceSamplingPasses } from '../../kernels/reference/sampling.ts';
import { BUCKETS_PER_NAT, NUM_BUCKETS, type SamplingPasses } from '../../kernels/sampling.ts';
import type { SamplingParams } from '../api.ts';
import { Rng } from './rng.ts';

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

/** e^(-lower edge) of each bucket; the last entry is the overflow bin (d >= 64). */
const BUCKET_BOUND = Float64Array.from({ length: NUM_BUCKETS + 1 }, (_, b) => Math.exp(-b / BUCKETS_PER_NAT));

/** The addon's passes when it is built, else the JavaScript reference's (decided once, on first use). */
let defaultPasses: SamplingPasses | undefined;
export function hostSamplingPasses(): SamplingPasses {
  return (defaultPasses ??= nativeSamplingPasses() ?? new ReferenceSamplingPasses());
}

/** Reusable buffers for one vocabulary width (one per engine loop), and the passes to run. */
export class SamplerScratch {
  readonly weights: Float64Array;
  readonly bucketMass = new Float64Array(NUM_BUCKETS);
  /** Bin counts: NUM_BUCKETS + 1 are read; the last entry is the never-counted bin. */
  readonly bucketCounts = new Int32Array(NUM_BUCKETS + 2);
  /** Token ids of the top_p edge bucket. */
  readonly edgeIds: Int32Array;
  /** @param passes the full-vocabulary passes (default: the addon's when built, else the JavaScript reference). */
  constructor(
    readonly vocabSize: number,
    readonly passes: SamplingPasses = hostSamplingPasses(),
  ) {
    this.weights = new Float64Array(vocabSize);
    this.edgeIds = new Int32Array(vocabSize);
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
    const token = p.temperature < GREEDY_EPS ? Math.max(0, peak.argmax) : this.sampleRandom(logits, offset, row, max, scratch);
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

  /** row is logits[offset .. offset + V) (the passes take the whole array and the offset). */
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
      const kept = cand
        .slice(0, n)
        .map((id, j) => [id, w[j]] as const)
        .sort((a, b) => a[0] - b[0]);
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
    let total = passes.expWeights(logits, offset, V, max, invT, floor, w, nucleus ? mass : null);
    let edge = NUM_BUCKETS;
    let cutoff = -Infinity;
    if (nucleus) [edge, cutoff, total] = this.nucleusEdge(logits, offset, row, max, invT, topP * total, scratch);
    return passes.drawWeighted(logits, offset, V, w, max, invT, nucleus, edge, cutoff, this.rng.next() * total);
  }

  /**
   * Exact draw from softmax(x / T) over tokens with x >= floor, without an exponential per token.
   * Tokens are counted per exponent bucket (d = (max - x) / T in 1/16-nat bins, one overflow bin for
   * d >= 64); each bin's mass is bounded by count * e^(-d_low). A bin is drawn by its bound, a token
   * uniformly inside it, and accepted with probability e^(-(d - d_low)) >= e^(-1/16): rejection sampling
   * that needs ~1.07 tries, i.e. one counting pass plus a partial scan per row.
   */
  private drawByRejection(
    logits: Float32Array,
    offset: number,
    row: Float32Array,
    max: number,
    invT: number,
    floor: number,
    scratch: SamplerScratch,
  ): number {
    const V = row.length;
    const scale = invT * BUCKETS_PER_NAT; // t = (max - x) * scale: the exponent in bins; bin = floor(t)
    const counts = scratch.bucketCounts;
    const passes = scratch.passes;
    passes.binCounts(logits, offset, V, max, scale, floor, counts);
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
      const k = Math.floor(this.rng.next() * counts[bin]);
      const accept = this.rng.next();
      const i = passes.findInBin(logits, offset, V, max, scale, floor, bin, k);
      // accept with e^(-(d - d_low)), d - d_low = (t - bin) / BUCKETS_PER_NAT
      if (i >= 0 && accept < expNeg(((max - row[i]) * scale - bin) / BUCKETS_PER_NAT)) return i;
    }
    throw new Error('sampler: rejection sampling did not converge (non-finite logits?)');
  }

  /**
   * The top_p nucleus from the bucket masses: bins below `edge` are in, bins above are out, and in the
   * edge bin (the only one sorted) tokens at or above `cutoff` are in (ties all kept). Returns
   * [edge, cutoff, nucleus mass].
   */
  private nucleusEdge(
    logits: Float32Array,
    offset: number,
    row: Float32Array,
    max: number,
    invT: number,
    target: number,
    scratch: SamplerScratch,
  ): [number, number, number] {
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
    const n = scratch.passes.collectBucket(logits, offset, V, w, max, invT, edge, scratch.edgeIds);
    const inEdge = Array.from(scratch.edgeIds.subarray(0, n));
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

/** Largest value of logits[offset .. offset + V) (NaN ignored; -Infinity if none) and the first index holding it (-1 if none). */
export function rowPeak(logits: Float32Array, offset: number, V: number, passes: SamplingPasses): { max: number; argmax: number } {
  const argmax = passes.rowArgmax(logits, offset, V);
  return { max: argmax >= 0 ? logits[offset + argmax] : -Infinity, argmax };
}

/** topK over logits[offset .. offset + V) as an array of ids. */
function topIndices(passes: SamplingPasses, logits: Float32Array, offset: number, V: number, k: number, floor: number): number[] {
  const out = new Int32Array(Math.max(0, Math.min(k, V)));
  return Array.from(out.subarray(0, passes.topK(logits, offset, V, k, floor, out)));
}

/** Log-softmax of the (penalized) row at `token`, plus its `numTop` best entries. */
export function logprobsOf(row: Float32Array, max: number, token: number, numTop: number, passes: SamplingPasses): SampledLogprobs {
  const logZ = max + Math.log(passes.expSum(row, 0, row.length, max));
  const top =
    numTop > 0 ? topIndices(passes, row, 0, row.length, numTop, -Infinity).map((id) => ({ tokenId: id, logprob: row[id] - logZ })) : [];
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
