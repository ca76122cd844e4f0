// Builds an EngineLoop over a FakeRunner and collects request streams: shared by the engine tests.
import type { EngineEvent, GenerateRequest, SamplingParams } from '../api.ts';
import { EngineLoop, type EngineLoopOptions } from '../loop/engine-loop.ts';
import { defaultSamplingParams } from '../sampler/sampler.ts';
import { FakeRunner, type FakeRunnerOptions } from './fake-runner.ts';
import { FakeTokenizer, fakeDetokenizerFactory } from './fake-tokenizer.ts';

export interface FakeEngine {
  engine: EngineLoop;
  runner: FakeRunner;
  tokenizer: FakeTokenizer;
}

export function makeFakeEngine(
  runnerOpts: FakeRunnerOptions = {},
  loopOpts: Partial<Omit<EngineLoopOptions, 'info' | 'tokenizer' | 'detokenizer'>> = {},
): FakeEngine {
  const tokenizer = new FakeTokenizer();
  const runner = new FakeRunner({ vocabSize: tokenizer.vocabSize, ...runnerOpts });
  const ri = runner.info;
  const numPages = loopOpts.numPages ?? 256;
  const pageSize = loopOpts.pageSize ?? 4;
  const maxNumSeqs = loopOpts.maxNumSeqs ?? 8;
  runner.allocateCache(numPages * pageSize, maxNumSeqs);
  const engine = new EngineLoop(runner, {
    info: {
      modelName: 'fake',
      kind: ri.kind,
      contextLength: ri.contextLength,
      vocabSize: ri.vocabSize,
      eosTokenId: ri.eosTokenId,
      demo: true,
    },
    tokenizer,
    detokenizer: fakeDetokenizerFactory(tokenizer),
    maxQueue: 1000,
    maxBatchTokens: 64,
    ...loopOpts,
    numPages,
    pageSize,
    maxNumSeqs,
  });
  return { engine, runner, tokenizer };
}

export interface Collected {
  events: EngineEvent[];
  tokens: number[];
  text: string;
  terminal: EngineEvent;
}

export async function collect(stream: AsyncIterable<EngineEvent>): Promise<Collected> {
  const events: EngineEvent[] = [];
  for await (const e of stream) events.push(e);
  const tokens: number[] = [];
  let text = '';
  for (const e of events) {
    if (e.type === 'token') {
      tokens.push(...e.tokenIds);
      text += e.text;
    }
    if (e.type === 'finished' && e.text) text += e.text;
  }
  const terminals = events.filter((e) => e.type === 'finished' || e.type === 'error');
  if (terminals.length !== 1 || events[events.length - 1] !== terminals[0])
    throw new Error(`stream must end with exactly one terminal event: ${JSON.stringify(events.map((e) => e.type))}`);
  return { events, tokens, text, terminal: terminals[0] };
}

export function request(id: string, promptIds: number[], sampling: Partial<SamplingParams> = {}): GenerateRequest {
  return { id, promptIds, sampling: defaultSamplingParams(sampling) };
}

/** A deterministic pseudo-random prompt of `length` tokens in 1..vocab-1. */
export function randomPrompt(seed: number, length: number, vocab = 64): number[] {
  let x = seed * 2654435761 + 1;
  const out: number[] = [];
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(1 + ((x >>> 8) % (vocab - 1)));
  }
  return out;
}
