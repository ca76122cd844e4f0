// Perplexity of one model computed in f32 and in bf16 (--compute-dtype bf16, bf16 KV cache) on the same
// tokens, side by side: the number the default of --compute-dtype is decided by (bf16 only if it moves
// perplexity by < 0.5 %). Teacher-forced scores of fixed windows; the reported change is bf16 vs f32.
//
//   node --import tsx engine/bench/dtype-perplexity.ts --model DIR --text FILE [--tokenizer tokenizer.json]
//        [--window 256] [--max-tokens 16384]
//
// FILE: JSON lines of strings (one document each, like a train engineer's *-val.jsonl) or plain text.
// Documents are joined with the model's EOS token and cut into windows of --window tokens.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolveModel, resolveTokenizer } from '../resolve.ts';
import { buildModel } from '../model/load.ts';
import { CpuBackend } from '../../kernels/cpu/backend.ts';

function documents(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length && lines.every((l) => l.startsWith('"'))) return lines.map((l) => JSON.parse(l) as string);
  return [text];
}

/** Mean negative log-likelihood (nats) of ids[first + j] under logits row j, with a stable log-sum-exp. */
function meanNll(logits: Float32Array, ids: number[], first: number, V: number): { sum: number; count: number } {
  let sum = 0,
    count = 0;
  for (let j = 0; first + j < ids.length && (j + 1) * V <= logits.length; j++) {
    const row = logits.subarray(j * V, (j + 1) * V);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    sum += max + Math.log(z) - row[ids[first + j]!]!;
    count++;
  }
  return { sum, count };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      model: { type: 'string' },
      tokenizer: { type: 'string' },
      text: { type: 'string' },
      window: { type: 'string', default: '256' },
      'max-tokens': { type: 'string', default: '16384' },
    },
  });
  if (!values.model || !values.text)
    throw new Error('usage: dtype-perplexity.ts --model DIR --text FILE [--window 256] [--max-tokens 16384]');
  const window = Number(values.window),
    maxTokens = Number(values['max-tokens']);
  if (!Number.isInteger(window) || window < 8) throw new Error(`--window must be an integer >= 8, got '${values.window}'`);
  if (!Number.isInteger(maxTokens) || maxTokens < window)
    throw new Error(`--max-tokens must be an integer >= --window, got '${values['max-tokens']}'`);
  const resolved = await resolveModel({ model: values.model, tokenizer: values.tokenizer });
  const tok = await resolveTokenizer(resolved.tokenizerPath, resolved.spec);
  const ids: number[] = [];
  const eos = 0; // '<|endoftext|>', the EOS of every model here (ModelInfo.eosTokenId)
  for (const d of documents(values.text)) {
    if (ids.length >= maxTokens) break;
    ids.push(...tok.encode(d), eos);
  }
  const L = resolved.spec.kind === 'block' ? resolved.spec.blockLength : 1;
  const w = Math.floor(Math.min(window, resolved.spec.contextLength) / L) * L;
  const windows: number[][] = [];
  for (let i = 0; i + w <= Math.min(ids.length, maxTokens); i += w) windows.push(ids.slice(i, i + w));
  if (!windows.length) throw new Error(`${values.text}: fewer than ${w} tokens`);
  const results: Record<string, number> = {};
  for (const dtype of ['f32', 'bf16'] as const) {
    const backend = new CpuBackend({ computeDtype: dtype, kvDtype: dtype });
    if (backend.computeDtype() !== dtype) throw new Error(`this CPU cannot compute in ${dtype} (best path ${backend.info().cpuIsa})`);
    const model = buildModel(backend, resolved.spec, resolved.weights);
    let sum = 0,
      count = 0;
    for (const win of windows) {
      const { logits, first } = await model.scoreTokens(win);
      const r = meanNll(logits, win, first, resolved.spec.vocabSize);
      sum += r.sum;
      count += r.count;
    }
    model.dispose();
    results[dtype] = Math.exp(sum / count);
    console.log(
      `${resolved.spec.name}: ${dtype} perplexity ${results[dtype]!.toFixed(4)} over ${count} predicted tokens (${windows.length} windows of ${w})`,
    );
  }
  const change = (results.bf16! / results.f32! - 1) * 100;
  console.log(
    `bf16 vs f32 perplexity change: ${change >= 0 ? '+' : ''}${change.toFixed(3)} % (criterion for a bf16 default: |change| < 0.5 %)`,
  );
}

main().catch((e) => {
  console.error((e as Error).message);
  process.exitCode = 1;
});
