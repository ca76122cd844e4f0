// `blockserve generate`: one prompt in, text out. For people and scripts (--json).

import { parseArgs } from 'node:util';
import { resolveModel, resolveTokenizer } from '../engine/resolve.ts';
import { buildModel } from '../engine/model/load.ts';
import { makeBackend, BACKEND_NAMES } from '../engine/backends.ts';
import type { BackendName } from '../engine/backends.ts';
import { driveOne, argmax } from '../engine/model/generate.ts';
import { SamplerScratch, SequenceSampler } from '../engine/sampler/sampler.ts';

export class UsageError extends Error {}

const HELP = `blockserve generate --prompt TEXT | --prompt-ids 1,2,3 [options]

Model (one of; see README):
  --model PATH           checkpoint: HF GPT-NeoX dir, or the authors' safetensors (config beside it); also a
                         Hub id (ORG/NAME) or an authors' released name, downloaded first (see blockserve pull)
  --revision R           Hub branch, tag or commit of a Hub --model (default main)
  --preset NAME          built-in config (random weights when no --model): block_main_b4_{5,19,85,300,800,1.2b},
                         vanilla_{31,70,160,410}
  --config FILE          the authors' trainer YAML/JSON, or an HF config.json
  --tokenizer PATH       tokenizer.json (default: beside the model, else the built-in GPT-NeoX tokenizer)
Generation:
  --max-tokens N         tokens to generate (default 32)
  --temperature T        0 = greedy (default 0)
  --top-p P              nucleus sampling (default 1)
  --seed S               sampling seed (default 0)
  --position-mode M      reference | contiguous (block models; default reference, as the authors' generate())
  --no-pad-first-block   do not left-pad the prompt to a multiple of the block length
  --backend B            ${BACKEND_NAMES.join(' | ')} (default cpu, the native backend)
  --json                 print {"prompt_ids", "output_ids", "text"}
`;

function parseIds(s: string): number[] {
  const ids = s.split(',').map((x) => x.trim()).filter((x) => x.length).map(Number);
  if (!ids.length || ids.some((x) => !Number.isInteger(x) || x < 0)) throw new UsageError(`--prompt-ids must be comma-separated non-negative integers, got '${s}'`);
  return ids;
}

function num(v: string | undefined, flag: string, fallback: number, ok: (x: number) => boolean): number {
  if (v === undefined) return fallback;
  const x = Number(v);
  if (!Number.isFinite(x) || !ok(x)) throw new UsageError(`${flag}: invalid value '${v}'`);
  return x;
}

/** The engine's sampler (engine/sampler) over one sequence: same semantics as the server's. */
function samplerPick(temperature: number, topP: number, seed: number, promptIds: number[], vocabSize: number): (logits: Float32Array) => number {
  if (temperature === 0) return argmax;
  const sampler = new SequenceSampler({
    temperature, topP, topK: 0, minP: 0, frequencyPenalty: 0, presencePenalty: 0, repetitionPenalty: 1,
    logitBias: {}, seed, stop: [], stopTokenIds: [], maxTokens: 1, ignoreEos: false,
  }, promptIds);
  const scratch = new SamplerScratch(vocabSize);
  return (logits) => {
    const { token } = sampler.sample(logits, 0, vocabSize, scratch);
    sampler.observe(token);
    return token;
  };
}

/** Hub ids and released names are fetched (or found in their caches) first; the environment is read here, at the edge. */
async function locateForCli(model: string, revision: string | undefined): Promise<{ path: string }> {
  const { locateModel } = await import('../engine/hub/locate.ts');
  const { hubSettingsFromEnv } = await import('../engine/hub/settings.ts');
  const { progressPrinter } = await import('./pull.ts');
  const progress = progressPrinter();
  const located = await locateModel(model, hubSettingsFromEnv(process.env), { revision, onProgress: progress, onLog: (l) => process.stderr.write(`${l}\n`) });
  progress.end();
  return located;
}

export async function runGenerate(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        model: { type: 'string' }, revision: { type: 'string' }, preset: { type: 'string' }, config: { type: 'string' }, tokenizer: { type: 'string' },
        prompt: { type: 'string' }, 'prompt-ids': { type: 'string' }, 'max-tokens': { type: 'string' },
        temperature: { type: 'string' }, 'top-p': { type: 'string' }, seed: { type: 'string' },
        'position-mode': { type: 'string' }, 'no-pad-first-block': { type: 'boolean' },
        backend: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${HELP}`);
  }
  const o = parsed.values;
  if (o.help) { process.stdout.write(HELP); return 0; }
  if ((o.prompt === undefined) === (o['prompt-ids'] === undefined)) throw new UsageError(`give exactly one of --prompt or --prompt-ids\n\n${HELP}`);
  const positionMode = o['position-mode'];
  if (positionMode !== undefined && positionMode !== 'reference' && positionMode !== 'contiguous') throw new UsageError(`--position-mode must be reference or contiguous, got '${positionMode}'`);
  const backendName = (o.backend ?? 'cpu') as BackendName;
  if (!BACKEND_NAMES.includes(backendName)) throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got '${o.backend}'`);
  const maxTokens = num(o['max-tokens'], '--max-tokens', 32, (x) => Number.isInteger(x) && x >= 1);
  const temperature = num(o.temperature, '--temperature', 0, (x) => x >= 0);
  const topP = num(o['top-p'], '--top-p', 1, (x) => x > 0 && x <= 1);
  const seed = num(o.seed, '--seed', 0, Number.isInteger);

  if (o.revision !== undefined && o.model === undefined) throw new UsageError('--revision needs a Hub id in --model');
  const model = o.model === undefined ? undefined : (await locateForCli(o.model, o.revision)).path;
  const resolved = await resolveModel({
    model, preset: o.preset, config: o.config, tokenizer: o.tokenizer,
    positionMode: positionMode as 'reference' | 'contiguous' | undefined,
    padFirstBlock: o['no-pad-first-block'] ? false : undefined,
  });
  // With --prompt-ids a model whose vocabulary no tokenizer fits (e.g. the tiny test fixtures) still
  // generates ids; text needs a tokenizer, so --prompt does not forgive a misfit.
  let tokenizer: Awaited<ReturnType<typeof resolveTokenizer>> | null = null;
  try {
    tokenizer = await resolveTokenizer(resolved.tokenizerPath, resolved.spec);
  } catch (e) {
    if (o['prompt-ids'] === undefined) throw e;
    process.stderr.write(`blockserve: no text output: ${(e as Error).message}\n`);
  }
  const promptIds = o['prompt-ids'] !== undefined ? parseIds(o['prompt-ids']) : tokenizer!.encode(o.prompt!);
  if (promptIds.length === 0) throw new UsageError('the prompt is empty');
  const bad = promptIds.find((id) => id >= resolved.spec.vocabSize);
  if (bad !== undefined) throw new UsageError(`prompt id ${bad} is outside the model's vocabulary (0..${resolved.spec.vocabSize - 1})`);
  if (promptIds.length + maxTokens > resolved.spec.contextLength) {
    throw new UsageError(`prompt (${promptIds.length} tokens) + --max-tokens (${maxTokens}) exceeds the model's context length of ${resolved.spec.contextLength} tokens`);
  }
  const backend = await makeBackend(backendName);
  try {
    const model = buildModel(backend, resolved.spec, resolved.weights);
    const { outputIds } = await driveOne(model, promptIds, { maxNewTokens: maxTokens, pick: samplerPick(temperature, topP, seed, promptIds, resolved.spec.vocabSize) });
    const text = tokenizer ? tokenizer.decode(outputIds) : null;
    if (o.json) process.stdout.write(JSON.stringify({ prompt_ids: promptIds, output_ids: outputIds, text }) + '\n');
    else if (tokenizer) process.stdout.write(`${o.prompt ?? tokenizer.decode(promptIds)}${text}\n`);
    else process.stdout.write(`${outputIds.join(',')}\n`);
    return 0;
  } finally {
    backend.dispose();
  }
}
