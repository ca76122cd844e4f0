// The plain records passed between schedule(), the runner and update(): no behaviour, no model types
// beyond the runner's FeedItem.
import type { FeedItem } from '../runner-api.ts';

export interface PlannedFeed {
  seqId: string;
  /** The sequence's arrival number: tells it apart from a later request reusing an aborted id. */
  arrival: number;
  /** Tokens fed (== item.tokens.length). */
  numTokens: number;
  /** True for a decode step (one sampled token fed), false for a prefill / recompute chunk. */
  isDecode: boolean;
  /** The feed completes at least one block, so the block decoder runs for this sequence (block models). */
  runsBlockDecoder: boolean;
  /** Index of this sequence's logits row in the step output, or -1 when it wants none. */
  logitsRow: number;
}

export interface StepPlan {
  /** What the runner executes, in order; items[i] belongs to feeds[i]. */
  items: FeedItem[];
  feeds: PlannedFeed[];
  /** Number of logits rows the runner returns (items with wantLogits). */
  numLogitsRows: number;
  /** Sequences that left the queue for the first time this step. */
  started: string[];
  /** Sequences preempted this step (pages freed, back in the queue). */
  preempted: string[];
  /**
   * Sequences that cannot grow because the whole pool is theirs alone: the loop must finish them with
   * 'length' (they are not fed this step).
   */
  outOfCache: string[];
  /** Total tokens fed this step. */
  numTokens: number;
}

export interface SampledToken {
  seqId: string;
  token: number;
}

/** Running averages of how full steps are (see Scheduler.metrics). */
export interface StepMetrics {
  steps: number;
  /** Mean over steps of (sequences fed / maxNumSeqs). */
  stepFill: number;
  /** Mean over steps of (tokens fed / maxBatchTokens). */
  tokenFill: number;
  /**
   * Block models: over steps where the block decoder runs for some decoding sequence, the mean fraction
   * of that step's decoding sequences whose block-decoder step falls in it (1 = phases perfectly aligned,
   * about 1/L = phases spread evenly). NaN when no such step happened (vanilla models).
   */
  blockSync: number;
  /** Steps in which some decoding sequence ran the block decoder. */
  blockSteps: number;
  /**
   * Block models: fraction of steps in which the block decoder runs at all (for anyone, prefill
   * included). With phases aligned and no prefill this approaches 1/L: every other step is a pure
   * token-decoder step that never reads the block decoder's weights.
   */
  blockDecoderStepFraction: number;
}
