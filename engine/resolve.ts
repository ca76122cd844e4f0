// Turns what a person typed (--model, --preset, --config, --tokenizer) into a spec, host weights and
// a tokenizer. The three configuration forms:
//   --preset NAME            built-in copy of a released config (random weights without --model)
//   --config FILE            the authors' trainer YAML/JSON (autofilled), or an HF config.json
//   --model DIR              an HF GPT-NeoX directory (config.json + safetensors) or a directory /
//                            file of the authors' safetensors with a config file beside it, or the
//                            name of a model shipped in models/ (engine/shipped.ts: demo-block, ...)
// Every failure is a ResolveError whose message names the file and the problem.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { sourcePath } from '../kernels/assets.ts';
import { parse as parseYaml } from 'yaml';
import { blockSpecFromAuthors, vanillaSpecFromHf } from './config/authors.ts';
import { presetSpec } from './config/presets.ts';
import { ConfigError } from './config/spec.ts';
import type { ModelSpec } from './config/spec.ts';
import type { ModelRowArgs } from './options.ts';
import { expectedTensors, UNUSED_BLOCK_TENSORS } from './model/tensors.ts';
import type { HostTensor } from './model/load.ts';
import { randomWeights } from './model/random.ts';
import { checkTensors, isHfNeoxBuffer, loadCheckpoint } from './weights/checkpoint.ts';
import { checkTokenizerFitsModel, loadTokenizer } from './tokenizer/tokenizer.ts';
import { modelPathFor, SHIPPED_MODELS } from './shipped.ts';
import type { Tokenizer } from './tokenizer/tokenizer.ts';

export const BUILTIN_TOKENIZER = sourcePath('./tokenizer/gpt-neox-20b/tokenizer.json', import.meta.url);

/** The model rows of engine/options.ts, plus what only code sets. */
export type ModelArgs = ModelRowArgs & {
  /** dtype of random weights (presets without a checkpoint). */
  randomDtype?: 'f32' | 'bf16' | 'f16';
  seed?: number;
  onProgress?: (done: number, total: number, what: string) => void;
};

export interface ResolvedModel {
  spec: ModelSpec;
  weights: Map<string, HostTensor>;
  /** Where the weights came from: a path, or 'random'. */
  source: string;
  tokenizerPath: string;
}

export class ResolveError extends Error {}

function readTree(file: string): unknown {
  if (!existsSync(file)) throw new ResolveError(`config file not found: ${file}`);
  const text = readFileSync(file, 'utf8');
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ResolveError(`config file ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
}

/** An authors' tree has block_length; an HF config.json has model_type. */
function specFromConfigFile(file: string, args: ModelArgs, name: string | undefined): ModelSpec {
  const tree = readTree(file) as Record<string, unknown>;
  try {
    if (tree && typeof tree === 'object' && 'block_length' in tree) {
      return blockSpecFromAuthors(tree, {
        name,
        positionMode: args.positionMode,
        padFirstBlock: args.padFirstBlock,
        promptScoring: args.promptScoring,
      });
    }
    if (tree && typeof tree === 'object' && 'model_type' in tree)
      return vanillaSpecFromHf(tree, name ?? basename(dirname(resolvePath(file))));
  } catch (e) {
    if (e instanceof ConfigError) throw new ResolveError(`${file}: ${e.message}`);
    throw e;
  }
  throw new ResolveError(`${file}: neither an authors' trainer config (no block_length) nor an HF config.json (no model_type)`);
}

function withOverrides(spec: ModelSpec, args: ModelArgs): ModelSpec {
  if (spec.kind !== 'block') return spec;
  return Object.freeze({
    ...spec,
    positionMode: args.positionMode ?? spec.positionMode,
    padFirstBlock: args.padFirstBlock ?? spec.padFirstBlock,
    promptScoring: args.promptScoring ?? spec.promptScoring,
  });
}

const CONFIG_NAMES = ['config.yaml', 'config.yml', 'config.json'];

function findBesideConfig(dir: string): string | undefined {
  return CONFIG_NAMES.map((n) => join(dir, n)).find((p) => existsSync(p));
}

export function resolveSpec(args: ModelArgs): { spec: ModelSpec; weightsPath?: string } {
  if (args.preset && args.config) throw new ResolveError('give either --preset or --config, not both');
  let weightsPath: string | undefined;
  let modelDir: string | undefined;
  if (args.model) {
    const p = resolvePath(modelPathFor(args.model));
    if (!existsSync(p))
      throw new ResolveError(`model path not found: ${args.model} (shipped models: ${Object.keys(SHIPPED_MODELS).join(', ')})`);
    weightsPath = p;
    modelDir = statSync(p).isDirectory() ? p : dirname(p);
  }
  // The preset's name, else the model directory's; a config file's own `name:` fills in otherwise.
  const name =
    args.preset ??
    (modelDir
      ? weightsPath === modelDir || basename(weightsPath!) === 'model.safetensors'
        ? basename(modelDir)
        : basename(weightsPath!).replace(/\.safetensors$/, '')
      : undefined);
  let spec: ModelSpec;
  try {
    if (args.preset) spec = presetSpec(args.preset);
    else if (args.config) spec = specFromConfigFile(args.config, args, name);
    else if (modelDir && findBesideConfig(modelDir)) spec = specFromConfigFile(findBesideConfig(modelDir)!, args, name);
    else if (args.model)
      throw new ResolveError(
        `no config for ${args.model}: put a config.yaml / config.json beside the weights, or pass --preset or --config`,
      );
    else throw new ResolveError('nothing to load: pass --model PATH and/or --preset NAME / --config FILE');
  } catch (e) {
    if (e instanceof ConfigError) throw new ResolveError(e.message);
    throw e;
  }
  return { spec: withOverrides(spec, args), weightsPath };
}

function tokenizerPathFor(args: ModelArgs, weightsPath?: string): string {
  if (args.tokenizer) return args.tokenizer;
  if (weightsPath) {
    const dir = statSync(weightsPath).isDirectory() ? weightsPath : dirname(weightsPath);
    const beside = join(dir, 'tokenizer.json');
    if (existsSync(beside)) return beside;
  }
  return BUILTIN_TOKENIZER;
}

export async function resolveModel(args: ModelArgs): Promise<ResolvedModel> {
  const { spec, weightsPath } = resolveSpec(args);
  let weights: Map<string, HostTensor>;
  if (weightsPath) {
    // Never read: the authors' unused block-decoder embedding, and old HF GPT-NeoX buffers (masks, inv_freq).
    const skip = (n: string) => UNUSED_BLOCK_TENSORS.has(n) || isHfNeoxBuffer(n);
    const loaded = loadCheckpoint(weightsPath, {
      skip,
      onProgress: args.onProgress ? (d: number, t: number) => args.onProgress!(d, t, 'weights') : undefined,
    });
    try {
      checkTensors(loaded, expectedTensors(spec), { ignore: skip });
    } catch (e) {
      const how = args.preset ? `preset '${args.preset}'` : `the config of ${spec.name}`;
      throw new ResolveError(`${weightsPath} does not match ${how}: ${(e as Error).message}`);
    }
    weights = loaded as Map<string, HostTensor>;
  } else {
    weights = randomWeights(spec, { seed: args.seed ?? 1234, dtype: args.randomDtype ?? 'f32' });
  }
  return { spec, weights, source: weightsPath ?? 'random', tokenizerPath: tokenizerPathFor(args, weightsPath) };
}

export async function resolveTokenizer(path: string, spec: ModelSpec): Promise<Tokenizer> {
  const tok = await loadTokenizer(path);
  checkTokenizerFitsModel(tok, spec.vocabSize);
  return tok;
}
