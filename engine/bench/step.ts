// `blockserve bench step`: one whole decode step of a model at a batch size, on several backends
// with the same weights, side by side (issue 3's "decode step >= 20x the reference"). A block model
// has two kinds of step: a token-decoder step (the common one, 3 of 4) and a step whose fed token
// completes a block (block decoder + expansion + token decoder on the prefix rows); both are timed.

import { presetSpec } from '../config/presets.ts';
import { randomWeights } from '../model/random.ts';
import { buildModel } from '../model/load.ts';
import { makeBackend, BACKEND_NAMES } from '../backends.ts';
import type { BackendName } from '../backends.ts';
import type { FeedItem } from '../runner-api.ts';
import { helpFor, MODEL_OPTIONS, parseOptions, pick, type OptionRow } from '../options.ts';

export const STEP_ROWS = [
  { ...pick(MODEL_OPTIONS, 'preset')[0], default: 'block_main_b4_85' },
  { key: 'batch', flag: 'batch', kind: 'int', min: 1, default: 64, help: 'Sequences in the step.' },
  {
    key: 'backends',
    flag: 'backends',
    kind: 'string',
    default: 'cpu,reference',
    help: `Comma-separated backends to time side by side (${BACKEND_NAMES.join(', ')}).`,
    check: (v: string) =>
      v.split(',').every((b) => (BACKEND_NAMES as readonly string[]).includes(b))
        ? undefined
        : `expected backends among ${BACKEND_NAMES.join(', ')}`,
  },
  { key: 'reps', flag: 'reps', kind: 'int', min: 1, default: 5, help: 'Timed repetitions (the median is reported).' },
  { key: 'json', flag: 'json', kind: 'bool', default: false, help: 'Print one JSON object.' },
] as const satisfies readonly OptionRow[];

const USAGE =
  'Usage: blockserve bench step [options]\n\nOne decode step of a preset at a batch size, per backend, same weights, side by side.';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function runStepBench(argv: string[]): Promise<number> {
  const o = parseOptions(STEP_ROWS, argv, { env: process.env, usage: USAGE });
  if (o === 'help') {
    process.stdout.write(helpFor(STEP_ROWS, USAGE));
    return 0;
  }
  const { preset, batch, reps } = o;
  const spec = presetSpec(preset);
  const backends = o.backends.split(',') as BackendName[];
  const weights = randomWeights(spec, { dtype: 'bf16' });
  const log = (s: string) => {
    if (!o.json) process.stdout.write(s + '\n');
  };
  const results: { backend: string; step: string; ms: number; reps: number }[] = [];
  const promptLen = 4 * 8 - 1; // the next fed token is in-block; four later it completes a block
  for (const name of backends) {
    const backend = await makeBackend(name);
    try {
      const model = buildModel(backend, spec, weights);
      const entries = 64;
      model.allocateCache(batch * entries, batch);
      const kv = Array.from({ length: batch }, (_, s) => Array.from({ length: entries }, (_, i) => s * entries + i));
      const feed = (tokens: (s: number) => number[], position: number): FeedItem[] =>
        kv.map((kvSlots, s) => ({ seqId: `s${s}`, tokens: tokens(s), position, kvSlots, localSlot: s, wantLogits: true }));
      await model.execute(feed((s) => Array.from({ length: promptLen }, (_, i) => 2 + ((s * 31 + i * 7) % 50000)), 0));
      let pos = promptLen;
      // Repeat blocks of L steps; time each step by kind. Reference: one block only (it is slow).
      const L = model.info.blockLength;
      const token: number[] = [],
        blockStep: number[] = [];
      const rounds = name === 'reference' ? 1 : reps;
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < L; k++) {
          const t0 = performance.now();
          await model.execute(feed((s) => [2 + ((s + pos) % 50000)], pos));
          const ms = performance.now() - t0;
          // The token fed at position p completes a block when (p + 1) % L === 0.
          ((pos + 1) % L === 0 && spec.kind === 'block' ? blockStep : token).push(ms);
          pos++;
        }
      }
      for (const [step, xs] of [
        ['token-decoder step', token],
        ['block step', blockStep],
      ] as const) {
        if (!xs.length) continue;
        results.push({ backend: name, step, ms: median(xs), reps: xs.length });
        log(`${preset} batch ${batch} ${name.padEnd(9)} ${step.padEnd(18)} ${median(xs).toFixed(1)} ms (median of ${xs.length})`);
      }
      model.dispose();
    } finally {
      backend.dispose();
    }
  }
  const ms = (b: string, s: string) => results.find((r) => r.backend === b && r.step === s)?.ms;
  const ratios: Record<string, number> = {};
  for (const s of ['token-decoder step', 'block step']) {
    for (const b of backends.slice(0, -1)) {
      const base = ms(backends[backends.length - 1]!, s),
        mine = ms(b, s);
      if (base !== undefined && mine !== undefined) {
        ratios[`${b}/${backends[backends.length - 1]} ${s}`] = base / mine;
        log(`${s}: ${b} is ${(base / mine).toFixed(1)}x faster than ${backends[backends.length - 1]}`);
      }
    }
  }
  if (o.json) process.stdout.write(JSON.stringify({ preset, batch, results, ratios }) + '\n');
  return 0;
}
