// What the engine loop itself costs per step (scheduling, page tables, sampling, events), with a
// runner that does no compute: it hands back a copy of fixed logits. Run:
//   node --import tsx engine/loop/bench.ts [batch] [promptLen] [genLen] [vocab]
// Prints per family the loop's milliseconds per step (runner time excluded), tokens/s the loop alone
// could sustain, step fill and, for block models, block-decoder sync.
import type { FeedItem, Runner, RunnerInfo, StepOutput } from '../runner-api.ts';
import { defaultSamplingParams } from '../sampler/sampler.ts';
import { FakeTokenizer, fakeDetokenizerFactory } from '../testing/fake-tokenizer.ts';
import { EngineLoop } from './engine-loop.ts';

const batch = Number(process.argv[2] ?? 64);
const promptLen = Number(process.argv[3] ?? 128);
const genLen = Number(process.argv[4] ?? 512);
const vocab = Number(process.argv[5] ?? 50304);

class ConstantRunner implements Runner {
  runnerMs = 0;
  private readonly template: Float32Array;
  constructor(readonly info: RunnerInfo) {
    this.template = Float32Array.from({ length: info.vocabSize }, (_, i) => Math.sin(i * 12.9898) * 4);
  }
  allocateCache(): void {}
  async execute(items: FeedItem[]): Promise<StepOutput> {
    const t0 = performance.now();
    const rows = items.filter((it) => it.wantLogits).length;
    const logits = new Float32Array(rows * vocab);
    for (let r = 0; r < rows; r++) logits.set(this.template, r * vocab);
    this.runnerMs += performance.now() - t0;
    return { logits, vocabSize: vocab };
  }
  dispose(): void {}
}

for (const kind of ['vanilla', 'block'] as const) {
  const L = kind === 'block' ? 4 : 1;
  const runner = new ConstantRunner({ kind, tokensPerEntry: L, bytesPerEntry: 1, vocabSize: vocab, contextLength: 8192, eosTokenId: 0, blockLength: L, padFirstBlock: kind === 'block' });
  const tok = new FakeTokenizer();
  const pageSize = 16;
  const numPages = Math.ceil((batch * (promptLen + genLen + L)) / (L * pageSize)) + batch;
  const engine = new EngineLoop(runner, {
    info: { modelName: 'const', kind, contextLength: 8192, vocabSize: vocab, eosTokenId: 0, demo: true },
    tokenizer: { encode: () => [], decode: (ids) => tok.decode(ids.map((i) => i % tok.vocabSize)), vocabSize: vocab },
    detokenizer: fakeDetokenizerFactory({ encode: () => [], decode: (ids) => tok.decode(ids.map((i) => i % tok.vocabSize)), vocabSize: vocab }),
    numPages, pageSize, maxNumSeqs: batch, maxQueue: batch, maxBatchTokens: Math.max(512, batch + 2 * L),
  });
  const t0 = performance.now();
  const streams = Array.from({ length: batch }, async (_, i) => {
    const promptIds = Array.from({ length: promptLen }, (_, j) => 1 + ((i * 31 + j * 7) % (vocab - 1)));
    for await (const _e of engine.submit({ id: `r${i}`, promptIds, sampling: defaultSamplingParams({ maxTokens: genLen, ignoreEos: true }) }));
  });
  await Promise.all(streams);
  const wall = performance.now() - t0;
  const s = engine.stats();
  const loopMs = wall - runner.runnerMs;
  const m = engine.scheduler.metrics();
  console.log(`${kind.padEnd(8)} batch ${batch} prompt ${promptLen} gen ${genLen}: ${s.stepsTotal} steps, loop ${(loopMs / s.stepsTotal).toFixed(2)} ms/step ` +
    `(runner stub ${(runner.runnerMs / s.stepsTotal).toFixed(2)}), loop alone ${Math.round((batch * genLen) / (loopMs / 1000))} tok/s, ` +
    `stepFill ${s.stepFill.toFixed(3)}${kind === 'block' ? `, blockSync ${m.blockSync.toFixed(3)}` : ''}`);
  await engine.close();
}
