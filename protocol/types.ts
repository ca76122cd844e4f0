// OpenAI-compatible wire types: what goes over HTTP/SSE/WebSocket between clients and blockserve.
// Dependency-free so that server/ (which produces them) and loadtest/ (which checks them) share one
// definition. Field names are the wire's snake_case on purpose.

export type FinishReasonWire = 'stop' | 'length' | 'abort';

export interface StreamOptions {
  include_usage?: boolean;
}

/** Sampling and output parameters shared by completions and chat completions. */
export interface CommonRequestParams {
  model?: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  repetition_penalty?: number;
  stop?: string | string[];
  stop_token_ids?: number[];
  seed?: number;
  n?: number;
  logit_bias?: Record<string, number>;
  stream?: boolean;
  stream_options?: StreamOptions;
  user?: string;
  /** vLLM extension: keep generating past the end-of-sequence token (benchmarks need it). */
  ignore_eos?: boolean;
  /** vLLM extension: choices carry `token_ids`, the response carries `prompt_token_ids`. */
  return_token_ids?: boolean;
}

export type Prompt = string | string[] | number[] | number[][];

export interface CompletionRequest extends CommonRequestParams {
  prompt: Prompt;
  /** Number of top logprobs per token (0 = only the sampled token's). */
  logprobs?: number;
  echo?: boolean;
}

export interface ChatContentPart {
  type: 'text';
  text: string;
}

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string | ChatContentPart[];
  name?: string;
}

export interface ChatCompletionRequest extends CommonRequestParams {
  messages: ChatMessage[];
  max_completion_tokens?: number;
  logprobs?: boolean;
  top_logprobs?: number;
  /** Only `{type: 'text'}` is supported. */
  response_format?: { type: 'text' };
}

export interface UsageWire {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface CompletionLogprobs {
  tokens: string[];
  /** null for prompt tokens (echo) that the model cannot predict: the first one, or a block model's first block. */
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  finish_reason: FinishReasonWire | null;
  token_ids?: number[];
  prompt_token_ids?: number[];
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: UsageWire | null;
}

/** A streamed completion chunk has the same shape as the whole response (OpenAI's convention). */
export type CompletionChunk = Completion;

export interface ChatTopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface ChatTokenLogprob extends ChatTopLogprob {
  top_logprobs: ChatTopLogprob[];
}

export interface ChatLogprobs {
  content: ChatTokenLogprob[];
}

export interface ChatCompletionChoice {
  index: number;
  message: { role: 'assistant'; content: string };
  logprobs: ChatLogprobs | null;
  finish_reason: FinishReasonWire | null;
  token_ids?: number[];
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage: UsageWire;
  prompt_token_ids?: number[];
}

export interface ChatDelta {
  role?: 'assistant';
  content?: string;
}

export interface ChatChunkChoice {
  index: number;
  delta: ChatDelta;
  logprobs: ChatLogprobs | null;
  finish_reason: FinishReasonWire | null;
  token_ids?: number[];
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: ChatChunkChoice[];
  usage?: UsageWire | null;
  prompt_token_ids?: number[];
}

export interface ModelCard {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  root: string;
  max_model_len: number;
  /** True for the built-in demo model (random weights: its text is noise). */
  demo: boolean;
}

export interface ModelList {
  object: 'list';
  data: ModelCard[];
}

export interface TokenizeRequest {
  model?: string;
  prompt?: string;
  messages?: ChatMessage[];
  add_generation_prompt?: boolean;
}

export interface TokenizeResponse {
  count: number;
  max_model_len: number;
  tokens: number[];
}

export interface DetokenizeRequest {
  model?: string;
  tokens: number[];
}

export interface DetokenizeResponse {
  prompt: string;
}

export interface ErrorObject {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

export interface ErrorBody {
  error: ErrorObject;
}

// ---- WebSocket at /v1/ws --------------------------------------------------------------------------
// Several requests may be in flight on one socket; every server message names the request's `id`.

export type WsClientMessage =
  | ({ type: 'completion.create'; id: string } & CompletionRequest)
  | ({ type: 'chat.completion.create'; id: string } & ChatCompletionRequest)
  | { type: 'cancel'; id: string };

export type WsServerMessage =
  /** One streamed chunk, exactly the object an SSE `data:` frame would carry. */
  | { type: 'chunk'; id: string; data: CompletionChunk | ChatCompletionChunk }
  /** The request failed; `done` follows. `id` is null when the message itself could not be read. */
  | { type: 'error'; id: string | null; error: ErrorObject }
  /** The request's stream is over (the SSE `[DONE]`). */
  | { type: 'done'; id: string };
