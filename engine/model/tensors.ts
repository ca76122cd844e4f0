// The checkpoint layout each model family expects: every tensor name with its shape. Used by the
// strict loader (missing / unexpected / mis-shaped) and by random initialisation.

import type { BlockModelSpec, ModelSpec, NeoxStackSpec, VanillaModelSpec } from '../config/spec.ts';

export interface TensorSpec {
  name: string;
  shape: number[];
  /** How random initialisation fills it. */
  init: 'normal' | 'zeros' | 'ones';
}

function stackTensors(prefix: string, s: NeoxStackSpec): TensorSpec[] {
  const d = s.hiddenSize,
    f = s.intermediateSize;
  const out: TensorSpec[] = [];
  for (let i = 0; i < s.numLayers; i++) {
    const p = `${prefix}.layers.${i}`;
    out.push(
      { name: `${p}.input_layernorm.weight`, shape: [d], init: 'ones' },
      { name: `${p}.input_layernorm.bias`, shape: [d], init: 'zeros' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [d], init: 'ones' },
      { name: `${p}.post_attention_layernorm.bias`, shape: [d], init: 'zeros' },
      { name: `${p}.attention.query_key_value.weight`, shape: [3 * d, d], init: 'normal' },
      { name: `${p}.attention.query_key_value.bias`, shape: [3 * d], init: 'zeros' },
      { name: `${p}.attention.dense.weight`, shape: [d, d], init: 'normal' },
      { name: `${p}.attention.dense.bias`, shape: [d], init: 'zeros' },
      { name: `${p}.mlp.dense_h_to_4h.weight`, shape: [f, d], init: 'normal' },
      { name: `${p}.mlp.dense_h_to_4h.bias`, shape: [f], init: 'zeros' },
      { name: `${p}.mlp.dense_4h_to_h.weight`, shape: [d, f], init: 'normal' },
      { name: `${p}.mlp.dense_4h_to_h.bias`, shape: [d], init: 'zeros' },
    );
  }
  out.push(
    { name: `${prefix}.final_layer_norm.weight`, shape: [d], init: 'ones' },
    { name: `${prefix}.final_layer_norm.bias`, shape: [d], init: 'zeros' },
  );
  return out;
}

/** Tensors in the authors' checkpoints that the model never reads (not loaded, not required). */
export const UNUSED_BLOCK_TENSORS = new Set(['block_decoder.gpt_neox.embed_in.weight']);

function blockTensors(spec: BlockModelSpec): TensorSpec[] {
  const db = spec.blockDecoder.hiddenSize,
    dt = spec.tokenDecoder.hiddenSize,
    V = spec.vocabSize,
    R = spec.expansionRatio;
  return [
    { name: 'embedder.embeddings.weight', shape: [V, spec.embedderDim], init: 'normal' },
    ...stackTensors('block_decoder.gpt_neox', spec.blockDecoder),
    { name: 'token_decoder.gpt_neox.embed_in.weight', shape: [V, dt], init: 'normal' },
    ...stackTensors('token_decoder.gpt_neox', spec.tokenDecoder),
    { name: 'token_decoder.embed_out.weight', shape: [V, dt], init: 'normal' },
    // Conv1d(db, R*dt, kernel 1): a Linear db -> R*dt stored with a trailing kernel dim.
    { name: 'token_decoder.expansion_layer.weight', shape: [R * dt, db, 1], init: 'normal' },
    { name: 'token_decoder.expansion_layer.bias', shape: [R * dt], init: 'zeros' },
  ];
}

function vanillaTensors(spec: VanillaModelSpec): TensorSpec[] {
  const d = spec.decoder.hiddenSize,
    V = spec.vocabSize;
  return [
    { name: 'gpt_neox.embed_in.weight', shape: [V, d], init: 'normal' },
    ...stackTensors('gpt_neox', spec.decoder),
    { name: 'embed_out.weight', shape: [V, d], init: 'normal' },
  ];
}

export function expectedTensors(spec: ModelSpec): TensorSpec[] {
  return spec.kind === 'block' ? blockTensors(spec) : vanillaTensors(spec);
}
