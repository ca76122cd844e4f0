// What the engine loop itself costs per step (scheduling, page tables, sampling, events), with a
// runner that does no compute: it hands back a copy of fixed logits. Run:
//   node --import tsx engine/bench/loop.ts [batch] [promptLen] [genLen] [vocab]
// Prints per family the loop's milliseconds per step (runner time excluded), tokens/s the loop alone
// could sustain, step fill and, for block models, block-decoder sync. Then a serving-like mix for the
// block model (4x batch requests of random lengths, so admissions happen at every phase) with
// block-synchronous admission on and off: how often the block decoder has to run.
import type { FeedItem, Runner, RunnerInfo, StepOutput } from '../runner-api.ts';
import { defaultSamplingParams } from '../sampler/sampler.ts';
import { FakeTokenizer, fakeDetokenizerFactory } from '../testing/fake-tokenizer.ts';
import { EngineLoop } from '../loop/engine-loop.ts';

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
  const runner = new ConstantRunner({
    kind,
    tokensPerEntry: L,
    bytesPerEntry: 1,
    vocabSize: vocab,
    contextLength: 8192,
    eosTokenId: 0,
    blockLength: L,
    padFirstBlock: kind === 'block',
  });
  const tok = new FakeTokenizer();
  const pageSize = 16;
  const numPages = Math.ceil((batch * (promptLen + genLen + L)) / (L * pageSize)) + batch;
  const engine = new EngineLoop(runner, {
    info: { modelName: 'const', kind, contextLength: 8192, vocabSize: vocab, eosTokenId: 0, demo: true },
    tokenizer: { encode: () => [], decode: (ids) => tok.decode(ids.map((i) => i % tok.vocabSize)), vocabSize: vocab },
    detokenizer: fakeDetokenizerFactory({
      encode: () => [],
      decode: (ids) => tok.decode(ids.map((i) => i % tok.vocabSize)),
      vocabSize: vocab,
    }),
    numPages,
    pageSize,
    maxNumSeqs: batch,
    maxQueue: batch,
    maxBatchTokens: Math.max(512, batch + 2 * L),
  });
  const t0 = performance.now();
  const streams = Array.from({ length: batch }, async (_, i) => {
    const promptIds = Array.from({ length: promptLen }, (_, j) => 1 + ((i * 31 + j * 7) % (vocab - 1)));
    for await (const _e of engine.submit({
      id: `r${i}`,
      promptIds,
      sampling: defaultSamplingParams({ maxTokens: genLen, ignoreEos: true }),
    }));
  });
  await Promise.all(streams);
  const wall = performance.now() - t0;
  const s = engine.stats();
  const loopMs = wall - runner.runnerMs;
  const m = engine.scheduler.metrics();
  console.log(
    `${kind.padEnd(8)} batch ${batch} prompt ${promptLen} gen ${genLen}: ${s.stepsTotal} steps, loop ${(loopMs / s.stepsTotal).toFixed(2)} ms/step ` +
      `(runner stub ${(runner.runnerMs / s.stepsTotal).toFixed(2)}), loop alone ${Math.round((batch * genLen) / (loopMs / 1000))} tok/s, ` +
      `stepFill ${s.stepFill.toFixed(3)}${kind === 'block' ? `, blockSync ${m.blockSync.toFixed(3)}` : ''}`,
  );
  await engine.close();
}

{
  const L = 4;
  for (const alignPhases of [true, false]) {
    const runner = new ConstantRunner({
      kind: 'block',
      tokensPerEntry: L,
      bytesPerEntry: 1,
      vocabSize: vocab,
      contextLength: 8192,
      eosTokenId: 0,
      blockLength: L,
      padFirstBlock: true,
    });
    const tok = new FakeTokenizer();
    const t = { encode: () => [], decode: (ids: number[]) => tok.decode(ids.map((i) => i % tok.vocabSize)), vocabSize: vocab };
    const engine = new EngineLoop(runner, {
      info: { modelName: 'const', kind: 'block', contextLength: 8192, vocabSize: vocab, eosTokenId: 0, demo: true },
      tokenizer: t,
      detokenizer: fakeDetokenizerFactory(t),
      numPages: 4096,
      pageSize: 16,
      maxNumSeqs: batch,
      maxQueue: 4 * batch,
      maxBatchTokens: Math.max(512, batch + 2 * L),
      alignPhases,
    });
    let x = 12345;
    const rand = (n: number) => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n;
    const streams = Array.from({ length: 4 * batch }, async (_, i) => {
      const promptIds = Array.from({ length: 1 + rand(promptLen) }, (_, j) => 1 + ((i * 31 + j * 7) % (vocab - 1)));
      for await (const _e of engine.submit({
        id: `m${i}`,
        promptIds,
        sampling: defaultSamplingParams({ maxTokens: 16 + rand(genLen), ignoreEos: true }),
      }));
    });
    await Promise.all(streams);
    const m = engine.scheduler.metrics();
    console.log(
      `block serving mix, alignPhases ${String(alignPhases).padEnd(5)}: ${m.steps} steps, stepFill ${m.stepFill.toFixed(3)}, ` +
        `blockSync ${m.blockSync.toFixed(3)}, block decoder runs in ${(100 * m.blockDecoderStepFraction).toFixed(1)}% of steps`,
    );
    await engine.close();
  }
}
