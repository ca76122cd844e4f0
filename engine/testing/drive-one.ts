// A single-sequence driver over a Runner, with the cache laid out contiguously: what the parity and
// model tests need without the engine loop's scheduler (they compare a runner against the reference
// step by step). Not a generation path: `blockserve generate` and the server both go through the engine.
// Prompts are padded by the scheduler's rule (config/padding.ts).

import { firstBlockPad } from '../config/padding.ts';
import type { Runner } from '../runner-api.ts';

export interface DriveOptions {
  maxNewTokens: number;
  /** Picks the next token from one row of logits (default: argmax). */
  pick?: (logits: Float32Array) => number;
  /** Stop when this token is produced (it is included in the output). Default: the runner's EOS; null = never. */
  stopToken?: number | null;
  /** Overrides the model's first-block padding. */
  padFirstBlock?: boolean;
  /** Prompt tokens fed per step (chunked prefill); default: the whole prompt at once. */
  chunkSize?: number;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export interface DriveResult {
  outputIds: number[];
  /** Logits each output token was picked from, one row per token. */
  stepLogits: Float32Array[];
}

/** Greedy (or `pick`) continuation of one prompt. The runner gets one local slot and slots 0..n. */
export async function driveOne(runner: Runner, promptIds: number[], opts: DriveOptions): Promise<DriveResult> {
  const info = runner.info;
  const pad = firstBlockPad(promptIds.length, info.blockLength, opts.padFirstBlock ?? info.padFirstBlock);
  const fed = [...new Array<number>(pad).fill(0), ...promptIds];
  const maxTokens = fed.length + opts.maxNewTokens;
  const entries = Math.ceil(maxTokens / info.tokensPerEntry) + 1;
  runner.allocateCache(entries, 1);
  const kvSlots = Array.from({ length: entries }, (_, i) => i);
  const pick = opts.pick ?? argmax;
  const stop = opts.stopToken === undefined ? info.eosTokenId : opts.stopToken;
  const out: number[] = [],
    stepLogits: Float32Array[] = [];
  let position = 0;
  let toFeed = fed;
  const chunk = opts.chunkSize ?? Infinity;
  while (out.length < opts.maxNewTokens) {
    const tokens = toFeed.slice(0, chunk);
    toFeed = toFeed.slice(tokens.length);
    const wantLogits = toFeed.length === 0;
    const { logits } = await runner.execute([{ seqId: 's0', tokens, position, kvSlots, localSlot: 0, wantLogits }]);
    position += tokens.length;
    if (!wantLogits) continue;
    const next = pick(logits);
    out.push(next);
    stepLogits.push(logits.slice()); // the runner reuses its logits buffer on the next execute()
    if (next === stop) break;
    toFeed = [next];
  }
  return { outputIds: out, stepLogits };
}
