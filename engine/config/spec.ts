// The one frozen description of a model the engine runs, whatever it was configured from
// (built-in preset, the authors' trainer YAML/JSON, or an HF config.json).

import type { PromptScoring } from './padding.ts';

/** One GPT-NeoX / Pythia stack (the vanilla model, or either decoder of a Block Transformer). */
export interface NeoxStackSpec {
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly intermediateSize: number;
  /** Fraction of head_dim that is rotated (Pythia: 0.25). */
  readonly rotaryPct: number;
  readonly rotaryBase: number;
  readonly layerNormEps: number;
  readonly maxPositions: number;
  /** x + attn(ln1 x) + mlp(ln2 x) when true (Pythia); sequential residual otherwise. */
  readonly parallelResidual: boolean;
}

/**
 * How the token decoder's local rows [P0..P(R-1), t0..t(L-2)] are numbered for rotary:
 * - 'reference': what the authors' generate() really does (HF 4.39 derives positions from a mask):
 *   every prefix vector at 0, then token k of the block at k+1 (see BlockTransformer.windowPosition).
 * - 'contiguous': 0 .. R+L-2, as in training and scoring.
 */
export type PositionMode = 'reference' | 'contiguous';

export interface BlockModelSpec {
  readonly kind: 'block';
  readonly name: string;
  readonly vocabSize: number;
  /** L: tokens per block. */
  readonly blockLength: number;
  /** Embedder width = block decoder hidden / L (concat embedder). */
  readonly embedderDim: number;
  /** R: prefix vectors the expansion layer makes from one block-decoder output. */
  readonly expansionRatio: number;
  readonly blockDecoder: NeoxStackSpec;
  readonly tokenDecoder: NeoxStackSpec;
  /**
   * Trained with first-block padding (the authors' random_pad_first_block): decides how prompts are
   * padded for generation and for scoring (config/padding.ts).
   */
  readonly padFirstBlock: boolean;
  readonly positionMode: PositionMode;
  /** How echo + logprobs scores a prompt (config/padding.ts): the authors' evaluation by default. */
  readonly promptScoring: PromptScoring;
  /** Max tokens (prompt + generated). */
  readonly contextLength: number;
}

export interface VanillaModelSpec {
  readonly kind: 'vanilla';
  readonly name: string;
  readonly vocabSize: number;
  readonly decoder: NeoxStackSpec;
  readonly contextLength: number;
}

export type ModelSpec = BlockModelSpec | VanillaModelSpec;

/** Pythia-410m's config: the defaults the authors' presets inherit for everything they leave out. */
export const PYTHIA_DEFAULTS = {
  rotaryPct: 0.25,
  rotaryBase: 10000,
  layerNormEps: 1e-5,
  maxPositions: 2048,
  parallelResidual: true,
  vocabSize: 50304,
} as const;

export function headDim(s: NeoxStackSpec): number {
  return s.hiddenSize / s.numHeads;
}

export function rotaryDims(s: NeoxStackSpec): number {
  return Math.floor(headDim(s) * s.rotaryPct);
}

export class ConfigError extends Error {}

export function validateStack(where: string, s: NeoxStackSpec): void {
  const problems: string[] = [];
  for (const [k, v] of Object.entries(s)) {
    if (typeof v === 'number' && !(Number.isFinite(v) && v > 0) && k !== 'rotaryPct')
      problems.push(`${k} must be a positive number, got ${v}`);
  }
  if (s.hiddenSize % s.numHeads !== 0) problems.push(`hidden_size ${s.hiddenSize} is not divisible by num_attention_heads ${s.numHeads}`);
  if (!(s.rotaryPct >= 0 && s.rotaryPct <= 1)) problems.push(`rotary_pct must be in [0, 1], got ${s.rotaryPct}`);
  else if (rotaryDims(s) % 2 !== 0) problems.push(`rotary dims (head_dim * rotary_pct = ${headDim(s) * s.rotaryPct}) must be even`);
  if (problems.length) throw new ConfigError(`${where}: ${problems.join('; ')}`);
}

/** Parameter count of one stack's layers (no embeddings). */
export function stackParams(s: NeoxStackSpec): number {
  const d = s.hiddenSize,
    f = s.intermediateSize;
  return s.numLayers * (3 * d * d + 3 * d + d * d + d + d * f + f + f * d + d + 4 * d) + 2 * d;
}
