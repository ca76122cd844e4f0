// f32 against bf16 compute (each with its KV cache dtype) through the real engine loop, interleaved: both
// engines are built first and kept, then rounds alternate f32, bf16, f32, bf16 ... so the drift of a
// shared machine lands on both sides; per-round figures, medians and the median per-round ratio are
// printed. The figure the --compute-dtype default is decided by (bf16 only if >= 1.5x on the block model).
//
//   node --import tsx engine/bench/dtype-ab.ts --preset block_main_b4_85 [--preset vanilla_160]
//        [--prompt 128] [--gen 512] [--batch 32] [--rounds 3] [--dtype bf16]

import { parseArgs } from 'node:util';
import { presetSpec } from '../config/presets.ts';
import { createLocalEngine } from '../create.ts';
import type { Engine } from '../api.ts';
import { mulberry32 } from '../model/random.ts';
import { CpuBackend } from '../../kernels/cpu/backend.ts';
import { defaultSamplingParams } from '../sampler/sampler.ts';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function positive(v: string, flag: string): number {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1) throw new Error(`${flag} must be a positive integer, got '${v}'`);
  return x;
}

/** Generated tokens / wall seconds for `batch` sequences of random prompts, EOS ignored. */
async function round(engine: Engine, vocab: number, prompt: number, gen: number, batch: number, seed: number): Promise<number> {
  const rand = mulberry32(seed);
  const sampling = defaultSamplingParams({ maxTokens: gen, ignoreEos: true });
  const t0 = performance.now();
  let generated = 0;
  await Promise.all(
    Array.from({ length: batch }, async (_, i) => {
      const promptIds = Array.from({ length: prompt }, () => 2 + Math.floor(rand() * (vocab - 2)));
      for await (const ev of engine.submit({ id: `ab-${seed}-${i}`, promptIds, sampling })) {
        if (ev.type === 'token') generated += ev.tokenIds.length;
        if (ev.type === 'error') throw new Error(`request failed: ${ev.message}`);
      }
    }),
  );
  return generated / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      preset: { type: 'string', multiple: true },
      prompt: { type: 'string', default: '128' },
      gen: { type: 'string', default: '512' },
      batch: { type: 'string', default: '32' },
      rounds: { type: 'string', default: '3' },
      dtype: { type: 'string', default: 'bf16' },
    },
  });
  const presets = values.preset ?? ['block_main_b4_85'];
  const prompt = positive(values.prompt!, '--prompt'),
    gen = positive(values.gen!, '--gen');
  const batch = positive(values.batch!, '--batch'),
    rounds = positive(values.rounds!, '--rounds');
  const weights = values.dtype;
  if (weights !== 'bf16' && weights !== 'f32') throw new Error(`--dtype (weights) must be bf16 or f32, got '${weights}'`);
  const probe = new CpuBackend({ computeDtype: 'bf16' });
  if (probe.computeDtype() !== 'bf16')
    throw new Error(`this CPU cannot compute in bf16 (best path ${probe.info().cpuIsa}): nothing to compare`);
  console.log(
    `interleaved f32 vs bf16 compute (KV cache in the same dtype), ${weights} weights, prompt ${prompt}, gen ${gen}, batch ${batch}, ${rounds} rounds each`,
  );
  for (const preset of presets) {
    const spec = presetSpec(preset);
    const stack = spec.kind === 'block' ? spec.blockDecoder : spec.decoder;
    const entries = Math.ceil((prompt + gen) / (spec.kind === 'block' ? spec.blockLength : 1)) + 1;
    const kvCacheMb = Math.ceil((batch * entries * stack.numLayers * 2 * stack.hiddenSize * 4 * 1.05) / 2 ** 20) + 1;
    const engines: Record<'f32' | 'bf16', Engine> = {} as never;
    for (const c of ['f32', 'bf16'] as const) {
      ({ engine: engines[c] } = await createLocalEngine({
        preset,
        backend: 'cpu',
        randomDtype: weights,
        computeDtype: c,
        kvDtype: c,
        kvCacheMb,
        maxNumSeqs: batch,
        maxQueue: batch,
        padFirstBlock: spec.kind === 'block' ? spec.padFirstBlock : undefined,
      }));
    }
    try {
      const tps: Record<'f32' | 'bf16', number[]> = { f32: [], bf16: [] };
      for (let r = 0; r < rounds; r++) {
        for (const c of ['f32', 'bf16'] as const) tps[c].push(await round(engines[c], spec.vocabSize, prompt, gen, batch, 1000 + r));
        console.log(
          `${preset} round ${r + 1}: f32 ${tps.f32[r]!.toFixed(1)} tok/s, bf16 ${tps.bf16[r]!.toFixed(1)} tok/s (${(tps.bf16[r]! / tps.f32[r]!).toFixed(2)}x)`,
        );
      }
      const ratios = tps.bf16.map((b, i) => b / tps.f32[i]!);
      console.log(
        `${preset}: median f32 ${median(tps.f32).toFixed(1)} tok/s, bf16 ${median(tps.bf16).toFixed(1)} tok/s; ` +
          `median per-round bf16/f32 ${median(ratios).toFixed(2)}x (a bf16 default needs >= 1.5x on the block model)`,
      );
    } finally {
      await engines.f32.close();
      await engines.bf16.close();
    }
  }
}

main().catch((e) => {
  console.error((e as Error).message);
  process.exitCode = 1;
});
