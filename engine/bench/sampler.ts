// Sampling cost per engine step: 64 rows x 50,304 vocabulary, median of repeated steps, for each kind
// of request, with the addon's passes and with the JavaScript loops side by side.
// Run: node --import tsx engine/bench/sampler.ts [rows] [vocab] [reps]
// Logits are drawn as a language model's look: a few tokens near the top, a long Gaussian tail.
import type { SamplingParams } from '../api.ts';
import { Rng } from '../sampler/rng.ts';
import { defaultSamplingParams, SamplerScratch, SequenceSampler } from '../sampler/sampler.ts';
import { nativeSamplingPasses } from '../../kernels/cpu/backend.ts';
import { ReferenceSamplingPasses } from '../../kernels/reference/sampling.ts';

const rows = Number(process.argv[2] ?? 64);
const vocab = Number(process.argv[3] ?? 50304);
const reps = Number(process.argv[4] ?? 15);

const rng = new Rng(1);
const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
const source = new Float32Array(rows * vocab);
for (let i = 0; i < source.length; i++) source[i] = 2.5 * gauss();
for (let r = 0; r < rows; r++) for (let k = 0; k < 20; k++) source[r * vocab + Math.floor(rng.next() * vocab)] += 8 + 4 * rng.next();

const cases: [string, Partial<SamplingParams>][] = [
  ['greedy', { temperature: 0 }],
  ['temperature 1', { temperature: 1 }],
  ['temperature 0.7, top_k 50', { temperature: 0.7, topK: 50 }],
  ['temperature 1, top_p 0.9', { temperature: 1, topP: 0.9 }],
  [
    'top_p 0.9 + min_p 0.05 + penalties',
    { temperature: 0.8, topP: 0.9, minP: 0.05, frequencyPenalty: 0.5, presencePenalty: 0.3, repetitionPenalty: 1.1 },
  ],
  ['greedy + logprobs 5', { temperature: 0, logprobs: 5 }],
];

const native = nativeSamplingPasses();
const logits = new Float32Array(source.length);
console.log(
  `sampling ${rows} rows x ${vocab} vocab, median ms per step of ${reps} steps${native ? '' : ' (the CPU addon is not built: JavaScript only)'}`,
);
console.log(`${'request kind'.padEnd(40)} ${'addon'.padStart(8)} ${'js'.padStart(8)}  js/addon`);

function stepMs(p: Partial<SamplingParams>, scratch: SamplerScratch): number {
  const samplers = Array.from({ length: rows }, (_, i) => {
    const s = new SequenceSampler(
      defaultSamplingParams({ seed: i, ...p }),
      Array.from({ length: 128 }, (_, j) => (j * 37) % vocab),
    );
    for (let j = 0; j < 64; j++) s.observe((j * 101) % vocab);
    return s;
  });
  const times: number[] = [];
  for (let rep = 0; rep < reps + 2; rep++) {
    logits.set(source);
    const t0 = performance.now();
    for (let r = 0; r < rows; r++) samplers[r].sample(logits, r * vocab, vocab, scratch);
    if (rep >= 2) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

for (const [name, p] of cases) {
  const js = stepMs(p, new SamplerScratch(vocab, new ReferenceSamplingPasses()));
  const addon = native ? stepMs(p, new SamplerScratch(vocab, native)) : NaN;
  console.log(`${name.padEnd(40)} ${addon.toFixed(2).padStart(8)} ${js.toFixed(2).padStart(8)}  ${(js / addon).toFixed(1)}x`);
}
