// Building an engine from options: resolve the model, build it on a backend, wrap it in the engine
// loop. `createEngine` (what the server uses) runs all of that in a worker thread so that no step
// ever blocks the HTTP event loop; `createLocalEngine` runs it in the calling thread (the worker
// itself, the benchmark, tests).

import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Engine } from './api.ts';
import type { BackendName, ComputeDtypeOption, KvDtypeOption } from './backends.ts';
import { makeBackend } from './backends.ts';
import type { PositionMode } from './config/spec.ts';
import { buildModel } from './model/load.ts';
import { resolveModel, resolveTokenizer } from './resolve.ts';
import { EngineLoop } from './loop/engine-loop.ts';
import { IncrementalDetokenizer } from './tokenizer/tokenizer.ts';

/** The built-in demo model: block_main_b4_5's shape, random weights (see models/demo/config.yaml). */
export const DEMO_CONFIG = join(dirname(fileURLToPath(import.meta.url)), '..', 'models', 'demo', 'config.yaml');

export interface EngineOptions {
  model?: string;
  preset?: string;
  config?: string;
  tokenizer?: string;
  /** Name the model is served under (default: preset, config name or directory name). */
  servedModelName?: string;
  backend: BackendName;
  /** --compute-dtype (CPU backend): f32 (default), bf16 (AVX512_BF16 GEMMs, FP32 sums) or auto. */
  computeDtype?: ComputeDtypeOption;
  /** --kv-dtype (CPU backend): f32 (default) or bf16 KV cache entries. */
  kvDtype?: KvDtypeOption;
  /** Memory for the block-decoder / vanilla paged KV cache. */
  kvCacheMb: number;
  maxNumSeqs: number;
  maxQueue: number;
  /** Token budget per step (chunked prefill); default max(512, maxNumSeqs + 2 * block length). */
  maxBatchTokens?: number;
  positionMode?: PositionMode;
  padFirstBlock?: boolean;
  randomDtype?: 'f32' | 'bf16';
  onProgress?: (done: number, total: number, what: string) => void;
}

/** KV entries per page: 16 tokens' worth for vanilla, 16 blocks for block models. */
const PAGE_SIZE = 16;

export async function createLocalEngine(opts: EngineOptions): Promise<{ engine: Engine; tokenizerPath: string }> {
  const demo = !opts.model && !opts.preset && !opts.config;
  const resolved = await resolveModel({
    model: opts.model, preset: opts.preset, config: demo ? DEMO_CONFIG : opts.config, tokenizer: opts.tokenizer,
    positionMode: opts.positionMode, padFirstBlock: opts.padFirstBlock, randomDtype: opts.randomDtype,
    onProgress: opts.onProgress,
  });
  const tokenizer = await resolveTokenizer(resolved.tokenizerPath, resolved.spec);
  const backend = await makeBackend(opts.backend, { computeDtype: opts.computeDtype, kvDtype: opts.kvDtype });
  const model = buildModel(backend, resolved.spec, resolved.weights, (done, total) => opts.onProgress?.(done, total, 'upload'));
  const info = model.info;
  // bytesPerEntry counts f32 entries; a bf16 KV cache fits twice as many in the same memory.
  const pageBytes = (info.bytesPerEntry * PAGE_SIZE) / (opts.kvDtype === 'bf16' ? 2 : 1);
  const numPages = Math.floor((opts.kvCacheMb * 2 ** 20) / pageBytes);
  if (numPages < 1) throw new Error(`--kv-cache-mb ${opts.kvCacheMb} is too small: one page of ${PAGE_SIZE} entries takes ${(pageBytes / 2 ** 20).toFixed(2)} MB`);
  model.allocateCache(numPages * PAGE_SIZE, opts.maxNumSeqs);
  const engine = new EngineLoop(model, {
    info: {
      modelName: opts.servedModelName ?? resolved.spec.name,
      kind: info.kind,
      contextLength: info.contextLength,
      vocabSize: info.vocabSize,
      eosTokenId: info.eosTokenId,
      demo,
    },
    tokenizer,
    detokenizer: () => new IncrementalDetokenizer(tokenizer),
    numPages,
    pageSize: PAGE_SIZE,
    maxNumSeqs: opts.maxNumSeqs,
    maxQueue: opts.maxQueue,
    maxBatchTokens: opts.maxBatchTokens ?? Math.max(512, opts.maxNumSeqs + 2 * info.blockLength),
    onClose: () => { model.dispose(); backend.dispose(); },
  });
  return { engine, tokenizerPath: resolved.tokenizerPath };
}

/** The engine in a worker thread, behind the same interface (engine/worker/client.ts). */
export async function createEngine(opts: EngineOptions): Promise<Engine> {
  const { WorkerEngine } = await import('./worker/client.ts');
  return WorkerEngine.start(opts);
}
