import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SamplingParams } from '../api.ts';
import { expNeg } from '../../kernels/fast-exp.ts';
import { cpuAddon } from '../../kernels/cpu/backend.ts';
import { Rng } from './rng.ts';
import { defaultSamplingParams, SamplerScratch, SequenceSampler } from './sampler.ts';
import { nativeSamplingPasses as nativePasses } from '../../kernels/cpu/backend.ts';
import { ReferenceSamplingPasses } from '../../kernels/reference/sampling.ts';
import { topKIndices } from '../../kernels/reference/top-k.ts';

function sampler(p: Partial<SamplingParams>, prompt: number[] = []): SequenceSampler {
  return new SequenceSampler(defaultSamplingParams({ seed: 1, ...p }), prompt);
}

/** Empirical distribution of `n` draws from one row (the row is copied: sampling edits it in place). */
function histogram(s: SequenceSampler, logits: number[], n: number): number[] {
  const counts = new Array(logits.length).fill(0);
  const scratch = new SamplerScratch(logits.length);
  for (let i = 0; i < n; i++) counts[s.sample(Float32Array.from(logits), 0, logits.length, scratch).token]++;
  return counts.map((c) => c / n);
}

function softmax(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

const logp = (p: number[]) => p.map(Math.log);

function assertClose(actual: number[], expected: number[], tol: number, what: string): void {
  for (let i = 0; i < expected.length; i++)
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
}

test('fast exp matches Math.exp to 1e-9 relative', () => {
  for (let d = 0; d < 100; d += 0.0137) assert.ok(Math.abs(expNeg(d) - Math.exp(-d)) <= 1e-9 * Math.exp(-d), `d=${d}`);
  assert.equal(expNeg(0), 1);
  assert.equal(expNeg(Infinity), 0);
});

test('top-k selection equals a full sort, ties to the lower id', () => {
  const rng = new Rng(3);
  const row = Float32Array.from({ length: 5000 }, () => Math.floor(rng.next() * 300) / 10);
  const ref = [...row.keys()].sort((a, b) => row[b] - row[a] || a - b);
  for (const k of [1, 5, 50, 700]) assert.deepEqual(topKIndices(row, 0, row.length, k), ref.slice(0, k));
  assert.deepEqual(topKIndices(row, 0, row.length, 10, 29.5), ref.filter((i) => row[i] >= 29.5).slice(0, 10));
  // The addon's selection (heap plus an eight-wide skip), at an offset, with NaN and a tail past a multiple of 8.
  const passes = nativePasses();
  if (!passes) return;
  const padded = new Float32Array(3 + row.length + 5);
  padded.set(row, 3);
  padded[3 + 17] = NaN;
  const refN = ref.filter((i) => i !== 17);
  for (const k of [1, 5, 50, 700, 5000, 6000]) {
    const out = new Int32Array(Math.min(k, row.length));
    const n = passes.topK(padded, 3, row.length, k, -Infinity, out);
    assert.deepEqual(Array.from(out.subarray(0, n)), refN.slice(0, k), `k=${k}`);
  }
  const out = new Int32Array(10);
  assert.deepEqual(
    Array.from(out.subarray(0, passes.topK(padded, 3, row.length, 10, 29.5, out))),
    refN.filter((i) => row[i] >= 29.5).slice(0, 10),
  );
});

test('temperature 0 is argmax with ties to the lowest id', () => {
  const s = sampler({ temperature: 0 });
  assert.equal(s.sample(Float32Array.from([1, 5, 2, 5]), 0, 4, new SamplerScratch(4)).token, 1);
});

test('temperature scales the distribution', () => {
  const x = [2, 1, 0.5, 0, -1];
  for (const T of [0.5, 1, 2]) {
    assertClose(histogram(sampler({ temperature: T, seed: 11 }), x, 40000), softmax(x.map((v) => v / T)), 0.01, `T=${T}`);
  }
});

test('top_k keeps the k most likely tokens, renormalized', () => {
  const x = [2, 1, 0.5, 0, -1];
  const h = histogram(sampler({ temperature: 1, topK: 2 }), x, 30000);
  assertClose(h, [...softmax([2, 1]), 0, 0, 0], 0.01, 'top_k=2');
});

test('top_p keeps the smallest top set reaching p, renormalized', () => {
  const probs = [0.4, 0.3, 0.2, 0.06, 0.04];
  // 0.4 + 0.3 = 0.7 < 0.75, + 0.2 = 0.9: the nucleus is the first three
  const h = histogram(sampler({ temperature: 1, topP: 0.75 }), logp(probs), 30000);
  assertClose(h, [0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9, 0, 0], 0.01, 'top_p');
  // with top_k, top_p applies to the renormalized top-k distribution: {0.4, 0.3} -> 0.571 >= 0.5
  const hk = histogram(sampler({ temperature: 1, topK: 2, topP: 0.5 }), logp(probs), 10000);
  assertClose(hk, [1, 0, 0, 0, 0], 0, 'top_k + top_p');
});

test('top_p on a 50,304-wide row only ever samples inside the exact nucleus', () => {
  const rng = new Rng(5);
  const V = 50304;
  const row = Float32Array.from({ length: V }, () => rng.next() * 12);
  const p = softmax([...row]);
  const order = [...p.keys()].sort((a, b) => p[b] - p[a]);
  let acc = 0;
  const nucleus = new Set<number>();
  for (const i of order) {
    nucleus.add(i);
    acc += p[i];
    if (acc >= 0.3) break;
  }
  const s = sampler({ temperature: 1, topP: 0.3, seed: 9 });
  const scratch = new SamplerScratch(V);
  const seen = new Set<number>();
  for (let i = 0; i < 300; i++) {
    const t = s.sample(row.slice(), 0, V, scratch).token;
    assert.ok(nucleus.has(t), `token ${t} is outside the nucleus`);
    seen.add(t);
  }
  assert.ok(seen.size > 50, `draws spread over the nucleus (${seen.size} of ${nucleus.size})`);
});

test('min_p drops tokens below min_p times the top probability', () => {
  const probs = [0.5, 0.3, 0.12, 0.08];
  // min_p 0.2 -> threshold 0.1: token 3 (0.08) goes
  const h = histogram(sampler({ temperature: 1, minP: 0.2 }), logp(probs), 30000);
  assertClose(h, [0.5 / 0.92, 0.3 / 0.92, 0.12 / 0.92, 0], 0.01, 'min_p');
});

test('logit_bias, frequency, presence and repetition penalties change the logits as specified', () => {
  const x = [1.0, 2.0, -1.0, 0.5, 3.0];
  // read the processed logits back through logprobs (log-softmax after penalties: differences are logit differences)
  const processed = (s: SequenceSampler) => {
    const r = s.sample(Float32Array.from(x), 0, x.length, new SamplerScratch(x.length));
    const top = r.logprobs!.top;
    const byId = new Map(top.map((t) => [t.tokenId, t.logprob]));
    return x.map((_, i) => byId.get(i)! - byId.get(0)!);
  };
  const base = x.map((v) => v - x[0]);

  const bias = sampler({ logitBias: { 2: 5, 4: -100 }, logprobs: 5 });
  assertClose(processed(bias), [0, 1, 3, -0.5, -98], 1e-5, 'logit_bias');

  const freq = sampler({ frequencyPenalty: 0.5, presencePenalty: 0.25, logprobs: 5 });
  freq.observe(1);
  freq.observe(1);
  freq.observe(3);
  // token 1: -(2 * 0.5 + 0.25) = -1.25 ; token 3: -(0.5 + 0.25) = -0.75
  assertClose(processed(freq), [0, 1 - 1.25, -2, -0.5 - 0.75, 2], 1e-5, 'frequency/presence');

  // repetition 2 over prompt {2, 4} and generated {1}: positive logits halved, negative doubled
  const rep = sampler({ repetitionPenalty: 2, logprobs: 5 }, [2, 4, 4]);
  rep.observe(1);
  assertClose(processed(rep), [0, 0, -3, -0.5, 0.5], 1e-5, 'repetition');

  const none = sampler({ logprobs: 5 });
  assertClose(processed(none), base, 1e-6, 'no penalties');

  // greedy follows the processed logits
  const flip = sampler({ logitBias: { 0: 10 } });
  assert.equal(flip.sample(Float32Array.from(x), 0, 5, new SamplerScratch(5)).token, 0);
});

test('logprobs: log-softmax values, top entries best first, 0 gives only the chosen token', () => {
  const x = [0.3, 2.2, -1, 1.7, 0];
  const lsm = logp(softmax(x));
  const r = sampler({ logprobs: 3 }).sample(Float32Array.from(x), 0, 5, new SamplerScratch(5));
  assert.equal(r.token, 1);
  assert.ok(Math.abs(r.logprobs!.logprob - lsm[1]) < 1e-6);
  assert.deepEqual(
    r.logprobs!.top.map((t) => t.tokenId),
    [1, 3, 0],
  );
  for (const t of r.logprobs!.top) assert.ok(Math.abs(t.logprob - lsm[t.tokenId]) < 1e-6);
  const r0 = sampler({ logprobs: 0, temperature: 1 }).sample(Float32Array.from(x), 0, 5, new SamplerScratch(5));
  assert.deepEqual(r0.logprobs!.top, []);
  assert.ok(Math.abs(r0.logprobs!.logprob - lsm[r0.token]) < 1e-6);
  assert.equal(sampler({}).sample(Float32Array.from(x), 0, 5, new SamplerScratch(5)).logprobs, undefined);
});

test('a seed fixes the draws; rows of a batch are sampled independently', () => {
  const V = 1000;
  const rng = new Rng(77);
  const rows = Array.from({ length: 20 }, () => Float32Array.from({ length: V }, () => rng.next() * 4));
  const draw = (seed: number) => {
    const s = sampler({ temperature: 1, seed });
    const scratch = new SamplerScratch(V);
    return rows.map((r) => s.sample(r.slice(), 0, V, scratch).token);
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
  // rows at different offsets of one batch buffer give the same tokens as alone
  const batch = new Float32Array(3 * V);
  batch.set(rows[0], 0);
  batch.set(rows[1], V);
  batch.set(rows[2], 2 * V);
  const a = sampler({ temperature: 1, seed: 42 });
  const scratch = new SamplerScratch(V);
  const fromBatch = [0, 1, 2].map((i) => a.sample(batch, i * V, V, scratch).token);
  assert.deepEqual(fromBatch, draw(42).slice(0, 3));
});

test('the RNG is uniform enough: mean and buckets', () => {
  const r = new Rng(123);
  const buckets = new Array(10).fill(0);
  let sum = 0;
  const n = 100000;
  for (let i = 0; i < n; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    sum += u;
    buckets[Math.floor(u * 10)]++;
  }
  assert.ok(Math.abs(sum / n - 0.5) < 0.005);
  for (const b of buckets) assert.ok(Math.abs(b / n - 0.1) < 0.005);
});

test('-Infinity logits are never drawn; a huge spread still samples exactly', () => {
  const x = [-Infinity, 0, -Infinity, Math.log(3), -500];
  const h = histogram(sampler({ temperature: 1, seed: 5 }), x, 20000);
  assertClose(h, [0, 0.25, 0, 0.75, 0], 0.012, 'spread');
  const h2 = histogram(sampler({ temperature: 1, seed: 6, topP: 0.99 }), x, 5000);
  assert.equal(h2[0] + h2[2] + h2[4], 0);
});

test('the rejection sampler is exact within bins and across them', () => {
  // tokens sharing the top bin (1/16 nat wide) and spread over many others
  const x = [0, -0.01, -0.03, -0.5, -1, -2.2, -3.7, -5, 0.02, -0.049];
  for (const T of [0.9, 0.3]) {
    const h = histogram(sampler({ temperature: T, seed: 21 }), x, 100000);
    assertClose(h, softmax(x.map((v) => v / T)), 0.006, `T=${T}`);
  }
  // with min_p, in the same bins
  const h = histogram(sampler({ temperature: 1, minP: 0.3, seed: 22 }), x, 60000);
  const keep = x.map((v) => v >= Math.max(...x) + Math.log(0.3));
  const p = softmax(x.map((v, i) => (keep[i] ? v : -Infinity)));
  assertClose(h, p, 0.006, 'min_p');
});

test('NaN logits are never chosen, greedy or sampled', () => {
  const x = [NaN, 0, NaN, Math.log(3), NaN];
  assert.equal(sampler({}).sample(Float32Array.from(x), 0, 5, new SamplerScratch(5)).token, 3);
  const h = histogram(sampler({ temperature: 1, seed: 4 }), x, 20000);
  assertClose(h, [0, 0.25, 0, 0.75, 0], 0.012, 'NaN');
});

test("the addon's sampling passes draw the same tokens and logprobs as the JavaScript loops", () => {
  const passes = nativePasses();
  if (!passes) {
    // The addon is built by npm install (and CI fails when it is not); only a deliberate skip lands here.
    assert.equal(process.env.BLOCKSERVE_SKIP_NATIVE, '1', 'the CPU addon is not built, so the native sampling passes cannot be checked');
    return;
  }
  const V = 50304;
  const rng = new Rng(9);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const rows: Float32Array[] = [];
  for (let r = 0; r < 6; r++) {
    const row = Float32Array.from({ length: V }, () => 2.5 * gauss());
    for (let k = 0; k < 20; k++) row[Math.floor(rng.next() * V)] += 8 + 4 * rng.next();
    rows.push(row);
  }
  // Odd rows: ties at the top, NaN, -Infinity, a flat row and one that is all NaN.
  const odd = Float32Array.from({ length: V }, (_, i) => (i % 7 === 0 ? NaN : i % 11 === 0 ? -Infinity : Math.round(gauss())));
  odd[123] = 9;
  odd[40000] = 9;
  rows.push(odd, new Float32Array(V), new Float32Array(V).fill(NaN), new Float32Array(V).fill(-Infinity));
  const cases: Partial<SamplingParams>[] = [
    { temperature: 0, logprobs: 3 },
    { temperature: 1 },
    { temperature: 0.3, minP: 0.05 },
    { temperature: 1, topP: 0.9, logprobs: 2 },
    { temperature: 0.7, topP: 0.5, minP: 0.01 },
    { temperature: 2, topP: 0.999 },
    { temperature: 0.8, topK: 40, topP: 0.9 },
    { temperature: 0.8, topP: 0.9, frequencyPenalty: 0.5, presencePenalty: 0.3, repetitionPenalty: 1.1 },
  ];
  const native = new SamplerScratch(V, passes);
  const js = new SamplerScratch(V, new ReferenceSamplingPasses());
  // Both addon paths: AVX2 lanes, then the portable loops.
  const addon = cpuAddon();
  const { threads, avx2 } = addon.info();
  for (const simd of avx2 ? [true, false] : [false]) {
    addon.configure(threads, simd ? 1 : 0); // isa cap: 1 = AVX2, 0 = portable
    try {
      compareAll(simd);
    } finally {
      addon.configure(threads, 2); // back to the best path the CPU has
    }
  }
  function compareAll(simd: boolean): void {
    for (const [c, p] of cases.entries()) {
      for (const [r, row] of rows.entries()) {
        const a = sampler({ ...p, seed: 100 + c }, [1, 2, 3]);
        const b = sampler({ ...p, seed: 100 + c }, [1, 2, 3]);
        // A row with nothing finite to draw from makes both throw the same error.
        const attempt = (s: SequenceSampler, scratch: SamplerScratch) => {
          try {
            return s.sample(row.slice(), 0, V, scratch);
          } catch (e) {
            return (e as Error).message;
          }
        };
        for (let step = 0; step < 4; step++) {
          const ra = attempt(a, native);
          const rb = attempt(b, js);
          assert.deepEqual(ra, rb, `case ${c} row ${r} step ${step} simd ${simd}`);
          if (typeof ra === 'string') break;
          a.observe(ra.token);
          b.observe(ra.token);
        }
      }
    }
  }
});
