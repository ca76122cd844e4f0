// The engine's public face: what server/ (and bench/, tests) may use. Neutral of HTTP and of models:
// requests in, per-request event streams out. The server renders events as OpenAI chunks.
import type { RequestLimits } from './requests.ts';

export interface SamplingParams {
  /** 0 means greedy. */
  temperature: number;
  topP: number; // 1 = off
  topK: number; // 0 or -1 = off
  minP: number; // 0 = off
  frequencyPenalty: number;
  presencePenalty: number;
  repetitionPenalty: number; // 1 = off
  /** token id -> bias added to its logit before sampling. */
  logitBias: Record<number, number>;
  /** Per-request RNG seed: the same tokens whatever else is in the batch. Absent = random. */
  seed?: number;
  /** Stop strings; generation ends before the first occurrence and it is not returned. */
  stop: string[];
  stopTokenIds: number[];
  maxTokens: number;
  ignoreEos: boolean;
  /** Number of top logprobs to return per token; undefined = none. 0 = only the chosen token's. */
  logprobs?: number;
}

export interface GenerateRequest {
  /** Unique per engine; used by abort(). */
  id: string;
  promptIds: number[];
  sampling: SamplingParams;
  /**
   * Logprobs of the prompt's own tokens (each given the tokens before it), with this many top
   * entries per token; undefined = none. Sent once, in a 'prompt_logprobs' event before any token.
   */
  promptLogprobs?: number;
}

export interface TokenLogprob {
  tokenId: number;
  token: string;
  logprob: number;
  top: { tokenId: number; token: string; logprob: number }[];
}

/**
 * A prompt token's logprob. null where the model cannot predict the token: the first token, and for
 * block models every token of the first block (it has no context block before it).
 */
export interface PromptTokenLogprob {
  tokenId: number;
  token: string;
  logprob: number | null;
  top: { tokenId: number; token: string; logprob: number }[] | null;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export type EngineEvent =
  /** The request left the queue and started computing (lets the server stop queue keep-alives). */
  | { type: 'started' }
  /** The prompt's logprobs, one entry per prompt token (requests with promptLogprobs only). */
  | { type: 'prompt_logprobs'; logprobs: PromptTokenLogprob[] }
  /**
   * New tokens. `text` is the UTF-8-safe text delta they complete (may be '' when a character or a
   * possible stop string is held back); logprobs has one entry per token when asked for.
   */
  | { type: 'token'; tokenIds: number[]; text: string; logprobs?: TokenLogprob[] }
  | { type: 'finished'; reason: FinishReason; usage: Usage; text?: string }
  | { type: 'error'; code: string; message: string };

export interface EngineInfo {
  /** Name of the model as served (e.g. "block_main_b4_85" or a directory name). */
  modelName: string;
  kind: 'block' | 'vanilla';
  /** Max prompt + generated tokens. */
  contextLength: number;
  vocabSize: number;
  eosTokenId: number;
  /** True for the random-weight demo model. */
  demo: boolean;
  /** The kernel path computing, in words (Backend.describe), for the startup log; absent for fakes. */
  compute?: string;
}

export interface EngineStats {
  running: number;
  waiting: number;
  kvPagesUsed: number;
  kvPagesTotal: number;
  abortedTotal: number;
  preemptedTotal: number;
  stepsTotal: number;
  /** Mean fraction of each step's batch capacity that held real work. */
  stepFill: number;
}

export interface TokenizerLike {
  encode(text: string): number[];
  decode(ids: number[]): string;
  readonly vocabSize: number;
}

/** Raised (synchronously, by submit) when the engine cannot take the request at all. */
export class EngineRequestError extends Error {
  constructor(
    readonly code: 'context_length_exceeded' | 'invalid_request' | 'queue_full' | 'engine_dead',
    /** What is wrong, without the field's name when `field` is set (the server names the wire parameter). */
    readonly detail: string,
    /** The GenerateRequest field at fault (`maxTokens`, `topP`, `promptIds`, ...), when one is. */
    readonly field?: string,
    /** Index into an array field (promptIds, stopTokenIds). */
    readonly index?: number,
  ) {
    super(field && code === 'invalid_request' ? `${field}${index !== undefined ? `[${index}]` : ''} ${detail}` : detail);
  }
}

export interface Engine {
  readonly info: EngineInfo;
  readonly tokenizer: TokenizerLike;
  /** What checkRequest() and admit() (engine/requests.ts) hold every request to. */
  readonly limits: RequestLimits;
  /**
   * Starts a request; its events end with exactly one 'finished' or 'error'. Throws EngineRequestError
   * synchronously for a request that can never run or does not fit now (queue_full): never as an event.
   * Leaving the stream early (break, return()) aborts the request.
   */
  submit(req: GenerateRequest): AsyncIterable<EngineEvent>;
  /** Stops a request at once and frees its cache; its stream ends with finished{reason:'abort'}. */
  abort(id: string): void;
  stats(): EngineStats;
  /** Why the engine died (null while it is alive). A dead engine refuses every request with engine_dead. */
  readonly failure: string | null;
  /** Called once, when the engine dies (a step failed, the worker exited); not called on close(). */
  onFailure(listener: (reason: string) => void): void;
  close(): Promise<void>;
}
