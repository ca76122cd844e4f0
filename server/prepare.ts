// A schema-valid request body -> what the engine needs: prompt token ids (chat rendered through the
// template), SamplingParams, and the output options the renderers need. Checks that depend on the
// model (context length, vocabulary) or on combinations of parameters live here, each throwing a
// 400 that names the parameter.
import type { Engine, SamplingParams } from '../engine/api.ts';
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
  else if (raw.every((p) => typeof p === 'number')) prompts = [idsPrompt(raw as number[], ctx, 'prompt')];
  else prompts = (raw as number[][]).map((ids, i) => idsPrompt(ids, ctx, `prompt[${i}]`));
  const n = body.n ?? 1;
  const maxTokensDefault = COMPLETIONS_DEFAULT_MAX_TOKENS;
  return {
    kind: 'completion',
    model,
    prompts,
    n,
    sampling: sampling(body, prompts, ctx, body.max_tokens, maxTokensDefault, 'prompt', body.logprobs),
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
    sampling: sampling(body, prompts, ctx, maxTokens, undefined, 'messages', logprobs),
    stream: body.stream === true,
    includeUsage: streamUsage(body),
    echo: false,
    returnTokenIds: body.return_token_ids === true,
    logprobs,
    user: body.user,
  };
}

function idsPrompt(ids: number[], ctx: PrepareContext, param: string): PromptInput {
  const vocab = ctx.engine.info.vocabSize;
  const bad = ids.findIndex((id) => id >= vocab);
  if (bad >= 0) throw new ApiError('invalid_request', `${param}[${bad}]: token id ${ids[bad]} is outside the vocabulary (size ${vocab}).`, `${param}[${bad}]`);
  return { ids, text: ctx.engine.tokenizer.decode(ids) };
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
  promptParam: string,
  logprobs: number | undefined,
): SamplingParams {
  const { contextLength, vocabSize } = ctx.engine.info;
  const longest = Math.max(...prompts.map((p) => p.ids.length));
  const emptyAt = prompts.findIndex((p) => p.ids.length === 0);
  if (emptyAt >= 0) throw new ApiError('invalid_request', 'The prompt is empty.', prompts.length > 1 ? `${promptParam}[${emptyAt}]` : promptParam);
  if (longest >= contextLength) {
    throw new ApiError(
      'context_length_exceeded',
      `This model's maximum context length is ${contextLength} tokens, but the ${promptParam} has ${longest} tokens (at least one token must be left to generate).`,
      promptParam,
    );
  }
  const room = contextLength - longest;
  const maxTokens = requestedMaxTokens ?? Math.min(defaultMaxTokens ?? room, room);
  if (maxTokens > room) {
    throw new ApiError(
      'context_length_exceeded',
      `This model's maximum context length is ${contextLength} tokens; you asked for ${longest + maxTokens} (${longest} in the ${promptParam}, ${maxTokens} to generate). Lower max_tokens to at most ${room}.`,
      'max_tokens',
    );
  }
  for (const name of ['top_p', 'repetition_penalty'] as const) {
    if (body[name] === 0) throw new ApiError('invalid_request', `Invalid value for '${name}': must be above 0.`, name);
  }
  const logitBias: Record<number, number> = {};
  for (const [key, bias] of Object.entries(body.logit_bias ?? {})) {
    const id = Number(key);
    if (id >= vocabSize) throw new ApiError('invalid_request', `logit_bias names token ${id}, outside the vocabulary (size ${vocabSize}).`, 'logit_bias');
    logitBias[id] = bias;
  }
  const stopTokenIds = body.stop_token_ids ?? [];
  const badStop = stopTokenIds.findIndex((id) => id >= vocabSize);
  if (badStop >= 0) throw new ApiError('invalid_request', `stop_token_ids[${badStop}]: token id ${stopTokenIds[badStop]} is outside the vocabulary.`, `stop_token_ids[${badStop}]`);
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
