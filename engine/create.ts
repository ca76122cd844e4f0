// Building an engine from options: resolve the model, build it on a backend, wrap it in the engine
// loop. `createEngine` (what the server uses) runs all of that in a worker thread so that no step
// ever blocks the HTTP event loop; `createLocalEngine` runs it in the calling thread (the worker
// itself, `blockserve generate`, the benchmark, tests). Their options are engine/options.ts's rows.

import { sourcePath } from '../kernels/assets.ts';
import type { Engine } from './api.ts';
import { makeBackend } from './backends.ts';
import type { EngineOptions } from './options.ts';
import { buildModel } from './model/load.ts';
import { resolveModel } from './resolve.ts';
import { EngineLoop } from './loop/engine-loop.ts';
import { FaultInjector } from './faults.ts';
import { kvLayoutOf, kvPagesFor } from './kv/sizing.ts';
import { DEFAULT_MODEL, isShippedModel } from './shipped.ts';
import { checkTokenizerFitsModel, IncrementalDetokenizer, loadTokenizer } from './tokenizer/tokenizer.ts';

/** block_main_b4_5's shape with random weights (see models/demo/config.yaml): `--config` it to get noise. */
export const DEMO_CONFIG = sourcePath('../models/demo/config.yaml', import.meta.url);

/** KV entries per page: 16 tokens' worth for vanilla, 16 blocks for block models. */
const PAGE_SIZE = 16;

export async function createLocalEngine(opts: EngineOptions): Promise<{ engine: EngineLoop; tokenizerPath: string }> {
  // Nothing named: the trained demo model shipped in models/ (engine/shipped.ts).
  const modelArg = !opts.model && !opts.preset && !opts.config ? DEFAULT_MODEL : opts.model;
  const demo = modelArg !== undefined && isShippedModel(modelArg);
  const resolved = await resolveModel({
    model: modelArg,
    preset: opts.preset,
    config: opts.config,
    tokenizer: opts.tokenizer,
    positionMode: opts.positionMode,
    padFirstBlock: opts.padFirstBlock,
    promptScoring: opts.promptScoring,
    randomDtype: opts.randomDtype,
    onProgress: opts.onProgress,
  });
  const tokenizer = await loadTokenizer(resolved.tokenizerPath);
  try {
    checkTokenizerFitsModel(tokenizer, resolved.spec.vocabSize);
  } catch (e) {
    if (!opts.onTokenizerMisfit) throw e;
    opts.onTokenizerMisfit((e as Error).message);
  }
  const faults = opts.faults ? new FaultInjector(opts.faults) : undefined;
  const backend = await makeBackend(opts.backend, { computeDtype: opts.computeDtype, kvDtype: opts.kvDtype, cpuIsa: opts.cpuIsa });
  try {
    // Before any weight is uploaded: a cache this device cannot bind is refused at start, quickly.
    if (opts.kvCacheSequences === undefined)
      kvPagesFor(opts.kvCacheMb, kvLayoutOf(resolved.spec, PAGE_SIZE), backend.maxTensorBytes, backend.name);
  } catch (e) {
    backend.dispose();
    throw e;
  }
  const computeBackend = faults ? faults.wrapBackend(backend) : backend;
  const model = buildModel(computeBackend, resolved.spec, resolved.weights, (done, total) => opts.onProgress?.(done, total, 'upload'));
  const info = model.info;
  // One full-context sequence per slot (one page of slack for the block padding), or what the MiB buy.
  const numPages =
    opts.kvCacheSequences !== undefined
      ? opts.kvCacheSequences * (Math.ceil((Math.ceil(info.contextLength / info.tokensPerEntry) + 1) / PAGE_SIZE) + 1)
      : // bytesPerEntry counts f32 entries; a bf16 KV cache fits twice as many in the same memory.
        kvPagesFor(opts.kvCacheMb, {
          bytesPerEntry: info.bytesPerEntry / (opts.kvDtype === 'bf16' ? 2 : 1),
          tensors: 2,
          pageSize: PAGE_SIZE,
        });
  model.allocateCache(numPages * PAGE_SIZE, opts.maxNumSeqs);
  const engine = new EngineLoop(model, {
    info: {
      modelName: opts.servedModelName ?? resolved.spec.name,
      kind: info.kind,
      contextLength: info.contextLength,
      vocabSize: info.vocabSize,
      eosTokenId: info.eosTokenId,
      demo,
      compute: backend.describe?.() ?? backend.name,
    },
    tokenizer,
    detokenizer: () => new IncrementalDetokenizer(tokenizer),
    numPages,
    pageSize: PAGE_SIZE,
    maxNumSeqs: opts.maxNumSeqs,
    maxQueue: opts.maxQueue,
    admission: opts.admission,
    faults,
    maxBatchTokens: opts.maxBatchTokens ?? Math.max(512, opts.maxNumSeqs + 2 * info.blockLength),
    onClose: () => {
      model.dispose();
      backend.dispose();
    },
  });
  return { engine, tokenizerPath: resolved.tokenizerPath };
}

/** The engine in a worker thread, behind the same interface (engine/worker/client.ts). */
export async function createEngine(opts: EngineOptions): Promise<Engine> {
  const { WorkerEngine } = await import('./worker/client.ts');
  return WorkerEngine.start(opts);
}
