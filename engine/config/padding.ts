// First-block padding: the one rule for how many pad tokens (token 0) go before a block model's prompt,
// used by the scheduler (server, `generate` through the engine) and the single-sequence driver alike.
//
// Which models pad comes from how they were trained (the authors' `random_pad_first_block`): their
// eval notes (conf/eval/eval_multiple_ckpt.yaml at 17842dd) say the released 300M+ models were trained
// without it, and their YAMLs lack the key while the smaller ones set it true. So an absent key means
// "not trained with padding" (see authors.ts), and the preset table agrees (presets.ts).
//
// - Trained with padding: left-pad to a multiple of L, as the authors' generate() does.
// - Trained without: block boundaries start at the first token, as in training; only a prompt shorter
//   than one block is padded to one block, because the token decoder needs the block decoder to have
//   seen one complete block first.

/** Pad tokens (token 0) to put before a prompt of `promptLength` tokens. 0 for vanilla (L = 1). */
export function firstBlockPad(promptLength: number, blockLength: number, padFirstBlock: boolean): number {
  if (blockLength <= 1) return 0;
  if (padFirstBlock) return (blockLength - (promptLength % blockLength)) % blockLength;
  return promptLength < blockLength ? blockLength - promptLength : 0;
}

/**
 * How echo + logprobs scores a block model's prompt:
 * - 'authors' (default): the authors' lm-eval wrappers (lm_eval/models/block_transformer_{pad,nopad}.py)
 *   over their forward(): training positions 0..R+L-2 in the token decoder; a model trained with padding
 *   gets exactly L-1 pad tokens before the text (first block [P..P t0], every token but the first is
 *   scored), one trained without gets none (the first L tokens are not scored).
 * - 'decoding': the prompt padded as for generation (firstBlockPad) and scored with the window
 *   positions decoding uses (positionMode), so a prompt token's logprob equals what it would get had it
 *   been generated.
 */
export const PROMPT_SCORINGS = ['authors', 'decoding'] as const;
export type PromptScoring = (typeof PROMPT_SCORINGS)[number];

/** Pad tokens before the prompt when scoring it (see PromptScoring). */
export function scoringPad(promptLength: number, blockLength: number, padFirstBlock: boolean, scoring: PromptScoring): number {
  if (scoring === 'decoding') return firstBlockPad(promptLength, blockLength, padFirstBlock);
  return padFirstBlock ? blockLength - 1 : 0;
}
