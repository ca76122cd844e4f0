// The contract between the engine loop (scheduler, sampler: model-agnostic) and the model runner
// (engine/runner.ts: owns weights, KV tensors and backend). The loop decides *what* each sequence
// feeds this step and *where* its cache entries live; the runner computes and returns logits.
//
// One abstraction serves both families:
// - vanilla GPT-NeoX: one KV entry per token (tokensPerEntry = 1).
// - Block Transformer: one block-decoder KV entry per complete block of L tokens (tokensPerEntry = L),
//   plus a fixed per-sequence token-decoder window (R + L - 1 rows) addressed by `localSlot`.
//   Feeding the token that completes a block runs the block decoder for it (and every earlier
//   complete block not yet computed), then the token decoder's phase 0 for the next block.
//   Feeding tokens inside a block runs only the token decoder.

export interface FeedItem {
  /** Stable per running sequence; the runner keeps no state across steps except the KV tensors. */
  seqId: string;
  /**
   * Tokens appended this step: a prompt chunk, or the one token sampled last step. Block models
   * with first-block padding get the pad tokens here explicitly (the loop adds them).
   */
  tokens: number[];
  /** How many tokens of this sequence were fed in earlier steps (or come from a prefix-cache hit). */
  position: number;
  /**
   * Cache slot of every KV entry of the sequence in position order, covering all entries that exist
   * after this step (earlier entries plus those this step creates). Slot = page * pageSize + offset.
   */
  kvSlots: number[];
  /** Block models: index of this sequence's token-decoder window (0 .. maxNumSeqs-1). */
  localSlot?: number;
  /** True when the loop will sample after this step (false for non-final prefill chunks). */
  wantLogits: boolean;
}

export interface StepOutput {
  /**
   * Next-token logits, [numWantLogits, vocab] row-major, rows in item order of wantLogits items. A view
   * of the runner's reused host buffer: valid until the next execute() (copy it to keep it).
   */
  logits: Float32Array;
  vocabSize: number;
}

export interface RunnerInfo {
  kind: 'block' | 'vanilla';
  /** Tokens per KV entry: L for block models, 1 for vanilla. */
  tokensPerEntry: number;
  /** Bytes one KV entry takes across all layers (K and V), to size the page pool from --kv-cache-mb. */
  bytesPerEntry: number;
  vocabSize: number;
  contextLength: number;
  eosTokenId: number;
  /** Block models: L (first-block left padding to a multiple of this); 1 for vanilla. */
  blockLength: number;
  /** Block models trained with first-block padding (token 0) get prompts left-padded to a multiple of L. */
  padFirstBlock: boolean;
}

export interface Runner {
  readonly info: RunnerInfo;
  /** Allocates the cache tensors: `numSlots` KV entries and `numLocalSlots` token-decoder windows. */
  allocateCache(numSlots: number, numLocalSlots: number): void;
  execute(items: FeedItem[]): Promise<StepOutput>;
  /**
   * Teacher-forced logits over a prompt (as given: without padding; the runner pads as its scoring rule
   * says, config/padding.ts), for prompt logprobs. Row r predicts ids[first + r]; there are
   * max(0, ids.length - first) rows. Uses no cache slot and leaves running sequences untouched.
   */
  scoreTokens?(ids: number[]): Promise<{ logits: Float32Array; first: number }>;
  dispose(): void;
}
