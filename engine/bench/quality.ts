// `blockserve bench quality`: the paper's claim in miniature on our own data. Both shipped demo models
// (engine/shipped.ts, trained together by tools/train) are scored by the ENGINE on the held-out split
// (models/data/fortunes-val.jsonl) and timed decoding in the same run.
//
// Perplexity is computed the way tools/train/export.py computes it: the split (cookies joined by
// <|endoftext|>) is cut into non-overlapping 256-token windows and each window's teacher-forced prompt
// logprobs (echo + logprobs) are summed. The block model is scored with the engine's default rule,
// --prompt-scoring authors (the authors' lm-eval wrappers: L-1 pad tokens before a model trained with
// first-block padding, training positions), so both models predict the same tokens: 1..255 of each
// window. Decode throughput: greedy, EOS ignored, a batch of prompts taken from the split.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine, EngineEvent, SamplingParams } from '../api.ts';
import type { BackendName } from '../backends.ts';
import { createLocalEngine } from '../create.ts';
import { MODELS_DIR, shippedModelDir } from '../shipped.ts';
import type { TokenizerLike } from '../api.ts';
import { UsageError } from './main.ts';
import { BACKEND_OPTION, helpFor, parseOptions, type OptionRow } from '../options.ts';
import { defaultSamplingParams } from '../sampler/sampler.ts';

export const VAL_SPLIT = join(MODELS_DIR, 'data', 'fortunes-val.jsonl');
export const WINDOW = 256;
const EOS = 0;

export const greedy = (maxTokens: number, ignoreEos = false): SamplingParams => defaultSamplingParams({ maxTokens, ignoreEos });

/** The held-out cookies as one token stream (each followed by EOS), cut into whole windows. */
export function validationWindows(tokenizer: TokenizerLike, file = VAL_SPLIT, window = WINDOW): number[][] {
  const ids: number[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    ids.push(...tokenizer.encode(JSON.parse(line) as string), EOS);
  }
  const out: number[][] = [];
  for (let i = 0; i + window <= ids.length; i += window) out.push(ids.slice(i, i + window));
  return out;
}

export interface Perplexity {
  tokens: number;
  nllSum: number;
  loss: number;
  ppl: number;
}

function summary(nll: number[]): Perplexity {
  const nllSum = nll.reduce((a, b) => a + b, 0);
  return { tokens: nll.length, nllSum, loss: nllSum / nll.length, ppl: Math.exp(nllSum / nll.length) };
}

/** -logprob of every prompt token the engine scores, per window, in window order (nulls skipped). */
async function promptNll(engine: Engine, windows: number[][]): Promise<number[]> {
  const nll: number[] = [];
  let n = 0;
  for (const w of windows) {
    const events = engine.submit({ id: `quality-${n++}`, promptIds: w, sampling: greedy(1), promptLogprobs: 0 });
    let got = false;
    for await (const e of events as AsyncIterable<EngineEvent>) {
      if (e.type === 'error') throw new Error(`scoring a validation window: ${e.message}`);
      if (e.type !== 'prompt_logprobs') continue;
      got = true;
      for (const p of e.logprobs) if (p.logprob !== null) nll.push(-p.logprob);
    }
    if (!got) throw new Error('the engine sent no prompt logprobs');
  }
  return nll;
}

/** The engine's perplexity of `windows`: every token its prompt scoring gives a logprob. */
export async function enginePerplexity(engine: Engine, windows: number[][]): Promise<Perplexity> {
  return summary(await promptNll(engine, windows));
}

/** Greedy decode of `prompts` all at once, EOS ignored: generated tokens per second of wall time. */
export async function decodeThroughput(
  engine: Engine,
  prompts: number[][],
  maxTokens: number,
): Promise<{ tokens: number; seconds: number; tokensPerSecond: number }> {
  const t0 = performance.now();
  const counts = await Promise.all(
    prompts.map(async (p, i) => {
      let k = 0;
      for await (const e of engine.submit({ id: `decode-${i}`, promptIds: p, sampling: greedy(maxTokens, true) })) {
        if (e.type === 'error') throw new Error(`decoding: ${e.message}`);
        if (e.type === 'token') k += e.tokenIds.length;
      }
      return k;
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const tokens = counts.reduce((a, b) => a + b, 0);
  return { tokens, seconds, tokensPerSecond: tokens / seconds };
}

export async function openShipped(name: string, backend: BackendName, maxNumSeqs: number): Promise<Engine> {
  const dir = shippedModelDir(name);
  if (!dir) throw new UsageError(`no shipped model '${name}'`);
  // Scoring: the authors' rule (training positions), named rather than left to the default. Decoding:
  // the model's own config (position_mode: contiguous, as trained).
  const { engine } = await createLocalEngine({ model: dir, backend, kvCacheMb: 64, maxNumSeqs, maxQueue: 1024, promptScoring: 'authors' });
  return engine;
}

export const QUALITY_ROWS = [
  BACKEND_OPTION,
  { key: 'windows', flag: 'windows', kind: 'int', min: 1, help: 'Score only the first N held-out windows. (default: all)' },
  { key: 'batch', flag: 'batch', kind: 'int', min: 1, default: 16, help: 'Concurrent sequences in the decode run.' },
  {
    key: 'prompt',
    flag: 'prompt',
    kind: 'int',
    min: 1,
    max: WINDOW,
    default: 16,
    help: 'Prompt tokens per decoded sequence (held-out text).',
  },
  { key: 'gen', flag: 'gen', kind: 'int', min: 1, default: 128, help: 'Generated tokens per sequence (EOS ignored).' },
  { key: 'json', flag: 'json', kind: 'bool', default: false, help: 'Print one JSON object.' },
] as const satisfies readonly OptionRow[];

const USAGE = `Usage: blockserve bench quality [options]

Perplexity of the shipped demo-block and demo-vanilla models on the held-out fortunes (computed by the
engine, teacher-forced, ${WINDOW}-token windows), and their greedy decode tokens/s at --batch concurrent
sequences of --gen tokens after --prompt tokens of held-out text (the block model's advantage grows with
batch and context), in one run.`;

export async function runQualityBench(argv: string[]): Promise<number> {
  const o = parseOptions(QUALITY_ROWS, argv, { env: process.env, usage: USAGE });
  if (o === 'help') {
    process.stdout.write(helpFor(QUALITY_ROWS, USAGE));
    return 0;
  }
  const { batch, gen, prompt: promptLen, windows: limit } = o;
  const rows = [];
  for (const name of ['demo-block', 'demo-vanilla']) {
    const engine = await openShipped(name, o.backend, batch);
    try {
      const windows = validationWindows(engine.tokenizer).slice(0, limit);
      const own = await enginePerplexity(engine, windows);
      if (promptLen + gen > engine.info.contextLength)
        throw new UsageError(`--prompt ${promptLen} + --gen ${gen} exceeds the model's context length ${engine.info.contextLength}`);
      const prompts = windows.slice(0, batch).map((w) => w.slice(0, promptLen));
      while (prompts.length < batch) prompts.push(prompts[prompts.length % windows.length]!.slice());
      const speed = await decodeThroughput(engine, prompts, gen);
      rows.push({
        model: engine.info.modelName,
        kind: engine.info.kind,
        windows: windows.length,
        ppl: own.ppl,
        loss: own.loss,
        scored: own.tokens,
        decode: speed,
        tokensPerSecond: speed.tokensPerSecond,
      });
    } finally {
      await engine.close();
    }
  }
  if (o.json) {
    process.stdout.write(JSON.stringify({ backend: o.backend, batch, prompt: promptLen, gen, rows }) + '\n');
    return 0;
  }
  process.stdout.write(
    `held-out fortunes, ${rows[0]!.windows} windows of ${WINDOW} tokens; decode: batch ${batch}, ${promptLen}-token prompts, ${gen} tokens, backend ${o.backend}\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `${r.model.padEnd(28)} ${r.kind.padEnd(8)} ppl ${r.ppl.toFixed(3)} (loss ${r.loss.toFixed(4)}, ${r.scored} tokens)  decode ${r.tokensPerSecond.toFixed(0)} tokens/s\n`,
    );
  }
  const [b, v] = rows;
  process.stdout.write(
    `block / vanilla: perplexity (same targets) ${(b!.ppl / v!.ppl).toFixed(3)}x, decode speed ${(b!.tokensPerSecond / v!.tokensPerSecond).toFixed(2)}x\n`,
  );
  return 0;
}
