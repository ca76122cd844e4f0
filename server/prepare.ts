// A schema-valid request body -> what the engine needs: prompt token ids (chat rendered through the
// template), SamplingParams, and the output options the renderers need. This file only maps wire
// names to engine names (and back, for errors): the rules on values (context length, vocabulary,
// bounds) are the engine's checkRequest (engine/requests.ts), applied when the request is submitted;
// only rules about the wire shape itself (parameters that need each other) are checked here.
import type { EngineRequestError, Engine, SamplingParams } from '../engine/api.ts';
import type { ChatCompletionRequest, CommonRequestParams, CompletionRequest } from '../protocol/types.ts';
import type { ChatTemplate } from './chat-template.ts';
import { ApiError } from './errors.ts';

/** OpenAI's default for legacy completions; chat defaults to the rest of the context. */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

export interface PromptInput {
  ids: number[];
  /** The prompt as text (decoded when it came as ids), for echo. */
  text: string;
}

export interface PreparedRequest {
  kind: 'completion' | 'chat';
  model: string;
  prompts: PromptInput[];
  /** Choices per prompt. */
  n: number;
  sampling: SamplingParams;
  stream: boolean;
  includeUsage: boolean;
  echo: boolean;
  returnTokenIds: boolean;
  /** Completions: top-logprobs count; chat: top_logprobs when logprobs is true. undefined = none. */
  logprobs: number | undefined;
  /** Completions with echo and logprobs: the prompt's logprobs too, with this many top entries. */
  promptLogprobs?: number;
  user?: string;
}

export interface PrepareContext {
  engine: Engine;
  servedModelName: string;
  chatTemplate: ChatTemplate;
}

export function resolveModel(requested: string | undefined, served: string): string {
  if (requested !== undefined && requested !== served) {
    throw new ApiError('model_not_found', `The model '${requested}' does not exist; this server serves '${served}'.`, 'model');
  }
  return served;
}

export function prepareCompletion(body: CompletionRequest, ctx: PrepareContext): PreparedRequest {
  const model = resolveModel(body.model, ctx.servedModelName);
  const tok = ctx.engine.tokenizer;
  const raw = body.prompt;
  let prompts: PromptInput[];
  if (typeof raw === 'string') prompts = [{ ids: tok.encode(raw), text: raw }];
  else if (raw.every((p) => typeof p === 'string')) prompts = (raw as string[]).map((t) => ({ ids: tok.encode(t), text: t }));
  else if (raw.every((p) => typeof p === 'number')) prompts = [idsPrompt(raw as number[], ctx)];
  else prompts = (raw as number[][]).map((ids) => idsPrompt(ids, ctx));
  const n = body.n ?? 1;
  const maxTokensDefault = COMPLETIONS_DEFAULT_MAX_TOKENS;
  return {
    kind: 'completion',
    model,
    prompts,
    n,
    sampling: sampling(body, prompts, ctx, body.max_tokens, maxTokensDefault, body.logprobs),
    stream: body.stream === true,
    includeUsage: streamUsage(body),
    echo: body.echo === true,
    returnTokenIds: body.return_token_ids === true,
    logprobs: body.logprobs,
    promptLogprobs: body.echo === true ? body.logprobs : undefined,
    user: body.user,
  };
}

export function prepareChat(body: ChatCompletionRequest, ctx: PrepareContext): PreparedRequest {
  const model = resolveModel(body.model, ctx.servedModelName);
  const text = ctx.chatTemplate.render(body.messages, true);
  const prompts = [{ ids: ctx.engine.tokenizer.encode(text), text }];
  if (body.top_logprobs !== undefined && body.logprobs !== true) {
    throw new ApiError('invalid_request', 'top_logprobs needs logprobs: true.', 'top_logprobs');
  }
  if (body.max_tokens !== undefined && body.max_completion_tokens !== undefined && body.max_tokens !== body.max_completion_tokens) {
    throw new ApiError('invalid_request', 'max_tokens and max_completion_tokens disagree; send one of them.', 'max_completion_tokens');
  }
  const logprobs = body.logprobs ? (body.top_logprobs ?? 0) : undefined;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  return {
    kind: 'chat',
    model,
    prompts,
    n: body.n ?? 1,
    sampling: sampling(body, prompts, ctx, maxTokens, undefined, logprobs),
    stream: body.stream === true,
    includeUsage: streamUsage(body),
    echo: false,
    returnTokenIds: body.return_token_ids === true,
    logprobs,
    user: body.user,
  };
}

function idsPrompt(ids: number[], ctx: PrepareContext): PromptInput {
  // Ids outside the vocabulary cannot be decoded; checkRequest refuses them at submit.
  const vocab = ctx.engine.info.vocabSize;
  return { ids, text: ids.every((id) => id < vocab) ? ctx.engine.tokenizer.decode(ids) : '' };
}

function streamUsage(body: CommonRequestParams): boolean {
  if (body.stream_options !== undefined && body.stream !== true) {
    throw new ApiError('invalid_request', "The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
  }
  return body.stream_options?.include_usage === true;
}

function sampling(
  body: CommonRequestParams,
  prompts: PromptInput[],
  ctx: PrepareContext,
  requestedMaxTokens: number | undefined,
  defaultMaxTokens: number | undefined,
  logprobs: number | undefined,
): SamplingParams {
  // The default fills the rest of the context (capped by the endpoint's default); checkRequest judges
  // whatever results, so a prompt that leaves no room is refused there, naming the prompt.
  const room = ctx.engine.limits.contextLength - Math.max(...prompts.map((p) => p.ids.length));
  const maxTokens = requestedMaxTokens ?? Math.max(1, Math.min(defaultMaxTokens ?? room, room));
  const logitBias: Record<number, number> = {};
  for (const [key, bias] of Object.entries(body.logit_bias ?? {})) logitBias[Number(key)] = bias;
  const stopTokenIds = body.stop_token_ids ?? [];
  const params: SamplingParams = {
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    topK: body.top_k ?? 0,
    minP: body.min_p ?? 0,
    frequencyPenalty: body.frequency_penalty ?? 0,
    presencePenalty: body.presence_penalty ?? 0,
    repetitionPenalty: body.repetition_penalty ?? 1,
    logitBias,
    stop: body.stop === undefined ? [] : typeof body.stop === 'string' ? [body.stop] : [...body.stop],
    stopTokenIds: [...stopTokenIds],
    maxTokens,
    ignoreEos: body.ignore_eos === true,
  };
  if (body.seed !== undefined) params.seed = body.seed;
  if (logprobs !== undefined) params.logprobs = logprobs;
  return params;
}

/** Engine request fields by their wire names (for errors); promptIds is handled by wireParam. */
const WIRE_NAMES: Record<string, string> = {
  maxTokens: 'max_tokens',
  temperature: 'temperature',
  topP: 'top_p',
  topK: 'top_k',
  minP: 'min_p',
  frequencyPenalty: 'frequency_penalty',
  presencePenalty: 'presence_penalty',
  repetitionPenalty: 'repetition_penalty',
  logitBias: 'logit_bias',
  stopTokenIds: 'stop_token_ids',
  seed: 'seed',
};

/** The wire parameter an engine request field came from, for the prompt at `promptIndex`. */
export function wireParam(req: PreparedRequest, field: string, promptIndex: number, index?: number): string | null {
  const at = index !== undefined ? `[${index}]` : '';
  if (field === 'promptIds') {
    if (req.kind === 'chat') return 'messages';
    return `${req.prompts.length > 1 ? `prompt[${promptIndex}]` : 'prompt'}${at}`;
  }
  if (field === 'logprobs') return req.kind === 'chat' ? 'top_logprobs' : 'logprobs';
  if (field === 'promptLogprobs') return 'echo';
  if (field === 'maxTokens' && req.kind === 'chat') return 'max_tokens';
  const name = WIRE_NAMES[field];
  return name ? `${name}${at}` : null;
}

/** An engine refusal as the API error naming the wire parameter. */
export function engineRefusal(e: EngineRequestError, req: PreparedRequest, promptIndex: number): ApiError {
  if (e.code === 'queue_full') return new ApiError('rate_limit_exceeded', `Server is at capacity: ${e.detail}; retry later.`, null);
  if (e.code === 'engine_dead') return new ApiError('engine_dead', e.detail, null);
  const param = e.field ? wireParam(req, e.field, promptIndex, e.index) : null;
  if (e.code === 'context_length_exceeded') {
    const base = param?.split('[')[0];
    return new ApiError('context_length_exceeded', base && !e.detail.includes(base) ? `${param}: ${e.detail}` : e.detail, param);
  }
  return new ApiError('invalid_request', param ? `Invalid value for '${param}': ${e.detail}.` : e.message, param);
}
