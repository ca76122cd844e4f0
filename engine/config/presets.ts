// Built-in copies of the released configs (conf/trainer/*.yaml at the authors' commit 17842dd) and the
// paper's vanilla baselines (Pythia shapes). Only the architecture-relevant keys are kept.

import { blockSpecFromAuthors, vanillaSpecFromHf } from './authors.ts';
import { ConfigError } from './spec.ts';
import type { ModelSpec } from './spec.ts';

interface BlockPreset {
  d: number;
  layers: number;
  pad: boolean;
}

// `pad`: their YAML sets random_pad_first_block: true (5M-85M). The 300M+ YAMLs lack the key, and their
// eval notes say those models were trained without first-block padding: the tree below leaves the key
// out for them, so the preset goes through the same absent-key rule as their YAML (config/padding.ts).
const BLOCK_PRESETS: Record<string, BlockPreset> = {
  block_main_b4_5: { d: 256, layers: 3, pad: true },
  block_main_b4_19: { d: 512, layers: 3, pad: true },
  block_main_b4_85: { d: 768, layers: 6, pad: true },
  block_main_b4_300: { d: 1024, layers: 12, pad: false },
  block_main_b4_800: { d: 2048, layers: 8, pad: false },
  'block_main_b4_1.2b': { d: 2048, layers: 12, pad: false },
};

interface VanillaPreset {
  d: number;
  layers: number;
  heads: number;
}

const VANILLA_PRESETS: Record<string, VanillaPreset> = {
  vanilla_31: { d: 256, layers: 6, heads: 8 },
  vanilla_70: { d: 512, layers: 6, heads: 8 }, // Pythia-70m
  vanilla_160: { d: 768, layers: 12, heads: 12 }, // Pythia-160m
  vanilla_410: { d: 1024, layers: 24, heads: 16 }, // Pythia-410m
};

export const PRESET_NAMES = [...Object.keys(BLOCK_PRESETS), ...Object.keys(VANILLA_PRESETS)];

/** The authors' trainer tree for a block preset (what `--config` would read from their YAML). */
export function authorsTreeForPreset(name: string): Record<string, unknown> | undefined {
  const p = BLOCK_PRESETS[name];
  if (!p) return undefined;
  return {
    name,
    block_length: 4,
    max_length: 2048,
    ...(p.pad ? { random_pad_first_block: true } : {}),
    embedder: { cls: 'lookup', projection_method: 'concat', config: { vocab_size: 50304, hidden_size: p.d / 4 } },
    block_decoder: { cls: 'gpt-neo-x', config: { num_hidden_layers: p.layers, hidden_size: p.d } },
    token_decoder: {
      cls: 'gpt-neo-x',
      expansion_method: 'expansion_layer',
      expansion_ratio: 2,
      decoding_strategy: 'prefix',
      config: { num_hidden_layers: p.layers, hidden_size: p.d },
    },
  };
}

/** The HF config.json of a vanilla preset (what is written beside the authors' vanilla checkpoints). */
export function hfConfigForPreset(name: string): Record<string, unknown> | undefined {
  const v = VANILLA_PRESETS[name];
  if (!v) return undefined;
  return {
    architectures: ['GPTNeoXForCausalLM'],
    model_type: 'gpt_neox',
    hidden_size: v.d,
    num_hidden_layers: v.layers,
    num_attention_heads: v.heads,
    intermediate_size: 4 * v.d,
    vocab_size: 50304,
    rotary_pct: 0.25,
    rotary_emb_base: 10000,
    max_position_embeddings: 2048,
    layer_norm_eps: 1e-5,
    use_parallel_residual: true,
    hidden_act: 'gelu',
    tie_word_embeddings: false,
  };
}

export function presetSpec(name: string): ModelSpec {
  const tree = authorsTreeForPreset(name);
  if (tree) return blockSpecFromAuthors(tree, { name });
  const hf = hfConfigForPreset(name);
  if (hf) return vanillaSpecFromHf(hf, name);
  throw new ConfigError(`unknown preset '${name}'; known presets: ${PRESET_NAMES.join(', ')}`);
}
