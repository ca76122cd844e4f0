// The authors' trainer config (conf/trainer/block_*.yaml, or the same tree as JSON) -> BlockModelSpec,
// with their autofill rules (util/config.py): heads from d (head_dim 32 if d <= 256, 64 if d <= 1536,
// else 128), ffn = 4d, and Pythia-410m's config for everything the file leaves out. Explicit values win.

import { ConfigError, PYTHIA_DEFAULTS, validateStack } from './spec.ts';
import type { BlockModelSpec, NeoxStackSpec, PositionMode, VanillaModelSpec } from './spec.ts';
import type { PromptScoring } from './padding.ts';

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(tree: Tree, key: string, where: string, fallback?: number): number {
  const v = tree[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new ConfigError(`${where}.${key} is required`);
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${where}.${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function autofillHeads(d: number): number {
  const hd = d <= 256 ? 32 : d <= 1536 ? 64 : 128;
  if (d % hd !== 0) throw new ConfigError(`hidden_size ${d} must be divisible by the autofilled head dim ${hd}`);
  return d / hd;
}

/** A GPT-NeoX config block (authors' `*.config` or an HF config.json) with Pythia defaults. */
export function neoxStackFrom(cfg: Tree, where: string, autofill: boolean): NeoxStackSpec {
  const d = num(cfg, 'hidden_size', where);
  const stack: NeoxStackSpec = {
    hiddenSize: d,
    numLayers: num(cfg, 'num_hidden_layers', where),
    numHeads: num(cfg, 'num_attention_heads', where, autofill ? autofillHeads(d) : undefined),
    intermediateSize: num(cfg, 'intermediate_size', where, autofill ? 4 * d : undefined),
    rotaryPct: num(cfg, 'rotary_pct', where, PYTHIA_DEFAULTS.rotaryPct),
    rotaryBase: num(cfg, 'rotary_emb_base', where, num(cfg, 'rope_theta', where, PYTHIA_DEFAULTS.rotaryBase)),
    layerNormEps: num(cfg, 'layer_norm_eps', where, PYTHIA_DEFAULTS.layerNormEps),
    maxPositions: num(cfg, 'max_position_embeddings', where, PYTHIA_DEFAULTS.maxPositions),
    parallelResidual: cfg.use_parallel_residual === undefined ? PYTHIA_DEFAULTS.parallelResidual : cfg.use_parallel_residual === true,
  };
  const act = cfg.hidden_act;
  if (act !== undefined && act !== 'gelu')
    throw new ConfigError(`${where}.hidden_act '${String(act)}' is not supported (only exact 'gelu')`);
  validateStack(where, stack);
  return stack;
}

export interface AuthorsConfigOptions {
  name?: string;
  positionMode?: PositionMode;
  /** Overrides the file's first-block padding setting. */
  padFirstBlock?: boolean;
  promptScoring?: PromptScoring;
}

/** Parses the authors' trainer tree. Throws ConfigError naming the offending key. */
export function blockSpecFromAuthors(tree: unknown, opts: AuthorsConfigOptions = {}): BlockModelSpec {
  if (!isTree(tree)) throw new ConfigError('config: expected a mapping at the top level');
  const L = num(tree, 'block_length', 'config', undefined);
  if (!Number.isInteger(L) || L < 1) throw new ConfigError(`config.block_length must be a positive integer, got ${L}`);
  const sub = (key: string): Tree => {
    const v = tree[key];
    if (!isTree(v)) throw new ConfigError(`config.${key} is required (a mapping)`);
    return v;
  };
  const embedder = sub('embedder'),
    blockDec = sub('block_decoder'),
    tokenDec = sub('token_decoder');
  for (const [key, part] of [
    ['block_decoder', blockDec],
    ['token_decoder', tokenDec],
  ] as const) {
    if (part.cls !== undefined && part.cls !== 'gpt-neo-x')
      throw new ConfigError(`config.${key}.cls '${String(part.cls)}' is not supported (only 'gpt-neo-x')`);
  }
  if (embedder.cls !== undefined && embedder.cls !== 'lookup')
    throw new ConfigError(`config.embedder.cls '${String(embedder.cls)}' is not supported (only 'lookup')`);
  const proj = embedder.projection_method;
  if (proj !== undefined && proj !== 'concat')
    throw new ConfigError(`config.embedder.projection_method '${String(proj)}' is not supported (only 'concat')`);
  const expansion = tokenDec.expansion_method;
  if (expansion !== undefined && expansion !== 'expansion_layer')
    throw new ConfigError(`config.token_decoder.expansion_method '${String(expansion)}' is not supported (only 'expansion_layer')`);
  const strategy = tokenDec.decoding_strategy;
  if (strategy !== undefined && strategy !== 'prefix')
    throw new ConfigError(`config.token_decoder.decoding_strategy '${String(strategy)}' is not supported (only 'prefix')`);

  const embCfg = isTree(embedder.config) ? embedder.config : {};
  const bCfg = isTree(blockDec.config) ? blockDec.config : undefined;
  const tCfg = isTree(tokenDec.config) ? tokenDec.config : undefined;
  if (!bCfg) throw new ConfigError('config.block_decoder.config is required');
  if (!tCfg) throw new ConfigError('config.token_decoder.config is required');
  const blockDecoder = neoxStackFrom(bCfg, 'config.block_decoder.config', true);
  const tokenDecoder = neoxStackFrom(tCfg, 'config.token_decoder.config', true);
  const vocabSize = num(embCfg, 'vocab_size', 'config.embedder.config', PYTHIA_DEFAULTS.vocabSize);
  const embedderDim = num(embCfg, 'hidden_size', 'config.embedder.config', blockDecoder.hiddenSize / L);
  if (embedderDim * L !== blockDecoder.hiddenSize) {
    throw new ConfigError(
      `config.embedder.config.hidden_size ${embedderDim} x block_length ${L} must equal block_decoder hidden_size ${blockDecoder.hiddenSize} (concat embedder)`,
    );
  }
  const R = num(tokenDec, 'expansion_ratio', 'config.token_decoder', 1);
  if (!Number.isInteger(R) || R < 1) throw new ConfigError(`config.token_decoder.expansion_ratio must be a positive integer, got ${R}`);
  // The expansion layer maps the block decoder's width to R rows of the token decoder's (a narrower
  // token decoder is allowed, as in the authors' BaseTokenDecoder); the token decoder's window must
  // still fit its own position table.
  if (R + L - 1 > tokenDecoder.maxPositions) {
    throw new ConfigError(`token decoder window R + L - 1 = ${R + L - 1} exceeds its max_position_embeddings ${tokenDecoder.maxPositions}`);
  }
  const maxLength = num(tree, 'max_length', 'config', blockDecoder.maxPositions);
  // Absent means trained without first-block padding: the released configs that lack the key are the
  // 300M+ ones, which their eval notes say were trained without it (config/padding.ts). Their training
  // code defaults to true today, but a YAML describes a released checkpoint, not a new run.
  const rawPad = tree.random_pad_first_block;
  if (rawPad !== undefined && typeof rawPad !== 'boolean')
    throw new ConfigError(`config.random_pad_first_block must be true or false, got ${JSON.stringify(rawPad)}`);
  const filePad = rawPad === true;
  const name = opts.name ?? (typeof tree.name === 'string' ? tree.name : 'block-transformer');
  // Not an authors' key: models trained by tools/train say which window positions they were trained with.
  const filePositions = tree.position_mode;
  if (filePositions !== undefined && filePositions !== 'reference' && filePositions !== 'contiguous') {
    throw new ConfigError(`config.position_mode must be 'reference' or 'contiguous', got ${JSON.stringify(filePositions)}`);
  }
  return Object.freeze({
    kind: 'block',
    name,
    vocabSize,
    blockLength: L,
    embedderDim,
    expansionRatio: R,
    blockDecoder,
    tokenDecoder,
    padFirstBlock: opts.padFirstBlock ?? filePad,
    positionMode: opts.positionMode ?? filePositions ?? 'reference',
    promptScoring: opts.promptScoring ?? 'authors',
    contextLength: Math.min(maxLength, blockDecoder.maxPositions * L),
  } satisfies BlockModelSpec);
}

/** HF GPTNeoX config.json -> VanillaModelSpec. */
export function vanillaSpecFromHf(tree: unknown, name: string): VanillaModelSpec {
  if (!isTree(tree)) throw new ConfigError('config.json: expected an object');
  const arch = tree.architectures;
  const modelType = tree.model_type;
  if (modelType !== undefined && modelType !== 'gpt_neox') {
    throw new ConfigError(
      `config.json: model_type '${String(modelType)}' is not supported (only 'gpt_neox')${Array.isArray(arch) ? ` (architectures ${arch.join(',')})` : ''}`,
    );
  }
  if (tree.tie_word_embeddings === true)
    throw new ConfigError('config.json: tie_word_embeddings=true is not supported (GPT-NeoX uses an untied embed_out)');
  const decoder = neoxStackFrom(tree, 'config.json', false);
  const vocabSize = num(tree, 'vocab_size', 'config.json');
  return Object.freeze({ kind: 'vanilla', name, vocabSize, decoder, contextLength: decoder.maxPositions } satisfies VanillaModelSpec);
}
