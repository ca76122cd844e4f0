// The engine's request rules, each in one place: checkRequest() decides whether a GenerateRequest can
// ever run on this engine (400-class problems), admit() whether it may enter now (the 429 rule).
// Every Engine front door calls them: the worker client on the HTTP thread (so the answer is known
// before any byte of a 200 is sent), the engine loop when it is used directly (bench, CLI, tests), the
// server's scripted fake engine. The HTTP schema stays the outer gate for wire types; the server maps
// `field` back to the wire parameter name.
import { EngineRequestError, type GenerateRequest } from './api.ts';
import { firstBlockPad } from './config/padding.ts'; // the one first-block padding rule

/** What a request is checked against; the engine sends it across the worker boundary once, at start. */
export interface RequestLimits {
  vocabSize: number;
  /** Max prompt (with block padding) + generated tokens. */
  contextLength: number;
  /** Tokens per KV entry: the block length L for block models, 1 for vanilla. */
  tokensPerEntry: number;
  padFirstBlock: boolean;
  /** KV pool size, in pages of `pageSize` entries. */
  numPages: number;
  pageSize: number;
  /** False when the runner cannot score prompts (promptLogprobs). */
  canScorePrompt: boolean;
  /** Engine requests admitted at once: running (max-num-seqs) + waiting (max-queue). */
  maxInFlight: number;
}

/** Throws the EngineRequestError (with the offending field) that says why `req` can never run here. */
export function checkRequest(req: GenerateRequest, limits: RequestLimits): void {
  const bad = (field: string, detail: string, index?: number): never => {
    throw new EngineRequestError('invalid_request', detail, field, index);
  };
  if (typeof req.id !== 'string' || req.id === '') bad('id', 'must be a non-empty string');
  const ids = req.promptIds;
  if (!Array.isArray(ids) || ids.length === 0) bad('promptIds', 'is empty: the prompt must hold at least one token');
  const V = limits.vocabSize;
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!Number.isInteger(t) || t < 0 || t >= V) bad('promptIds', `token id ${t} is outside the vocabulary (size ${V})`, i);
  }
  checkPromptFits(ids.length, limits);
  const s = req.sampling;
  if (!Number.isInteger(s.maxTokens) || s.maxTokens < 1) bad('maxTokens', `must be a positive integer, got ${s.maxTokens}`);
  if (!(s.temperature >= 0 && Number.isFinite(s.temperature))) bad('temperature', `must be a finite number >= 0, got ${s.temperature}`);
  if (!(s.topP > 0 && s.topP <= 1)) bad('topP', `must be above 0 and at most 1, got ${s.topP}`);
  if (!Number.isInteger(s.topK) || s.topK < -1) bad('topK', `must be -1, 0 or a positive integer, got ${s.topK}`);
  if (!(s.minP >= 0 && s.minP <= 1)) bad('minP', `must be in [0, 1], got ${s.minP}`);
  if (!(s.repetitionPenalty > 0 && Number.isFinite(s.repetitionPenalty)))
    bad('repetitionPenalty', `must be above 0, got ${s.repetitionPenalty}`);
  if (!Number.isFinite(s.frequencyPenalty)) bad('frequencyPenalty', `must be a finite number, got ${s.frequencyPenalty}`);
  if (!Number.isFinite(s.presencePenalty)) bad('presencePenalty', `must be a finite number, got ${s.presencePenalty}`);
  for (const [key, bias] of Object.entries(s.logitBias)) {
    const id = Number(key);
    if (!Number.isInteger(id) || id < 0 || id >= V) bad('logitBias', `names token ${key}, outside the vocabulary (size ${V})`);
    if (!Number.isFinite(bias)) bad('logitBias', `bias of token ${key} must be a finite number, got ${bias}`);
  }
  for (let i = 0; i < s.stopTokenIds.length; i++) {
    const t = s.stopTokenIds[i];
    if (!Number.isInteger(t) || t < 0 || t >= V) bad('stopTokenIds', `token id ${t} is outside the vocabulary (size ${V})`, i);
  }
  if (s.logprobs !== undefined && !(Number.isInteger(s.logprobs) && s.logprobs >= 0))
    bad('logprobs', `must be a non-negative integer, got ${s.logprobs}`);
  if (req.promptLogprobs !== undefined) {
    if (!(Number.isInteger(req.promptLogprobs) && req.promptLogprobs >= 0))
      bad('promptLogprobs', `must be a non-negative integer, got ${req.promptLogprobs}`);
    if (!limits.canScorePrompt) bad('promptLogprobs', 'cannot be computed by this model runner');
  }
  // Counted without the padding, as OpenAI and vLLM count it: a padded prompt may end with 'length'
  // a few tokens early, which is what the padding costs.
  const C = limits.contextLength;
  if (ids.length + s.maxTokens > C) {
    throw new EngineRequestError(
      'context_length_exceeded',
      `This model's maximum context length is ${C} tokens; you asked for ${ids.length + s.maxTokens} (${ids.length} in the prompt, ${s.maxTokens} to generate). Lower max_tokens to at most ${C - ids.length}.`,
      'maxTokens',
    );
  }
}

/** The context-length and cache rules for the prompt itself (with its block padding). */
export function checkPromptFits(promptLength: number, limits: RequestLimits): void {
  const C = limits.contextLength;
  const pad = firstBlockPad(promptLength, limits.tokensPerEntry, limits.padFirstBlock);
  const padded = promptLength + pad;
  const withPad = pad > 0 ? ` (${padded} with block padding)` : '';
  if (padded >= C) {
    throw new EngineRequestError(
      'context_length_exceeded',
      `This model's maximum context length is ${C} tokens, but the prompt has ${promptLength} tokens${withPad} (at least one token must be left to generate).`,
      'promptIds',
    );
  }
  const pages = Math.ceil((Math.floor(padded / limits.tokensPerEntry) + 1) / limits.pageSize);
  if (pages > limits.numPages) {
    throw new EngineRequestError(
      'context_length_exceeded',
      `The prompt of ${promptLength} tokens needs ${pages} KV-cache pages but the whole cache holds ${limits.numPages} (raise --kv-cache-mb).`,
      'promptIds',
    );
  }
}

/**
 * The one admission rule: at most maxInFlight engine requests (running + waiting) at once; beyond that
 * queue_full, which the server answers with 429 and retry-after. `inFlight` counts requests submitted
 * and not yet ended, as seen by the caller (the worker client counts until the worker reports the end,
 * so its count is never below the loop's: the loop never needs to refuse what the client admitted).
 */
export function admit(inFlight: number, adding: number, limits: Pick<RequestLimits, 'maxInFlight'>): void {
  if (inFlight + adding > limits.maxInFlight) {
    throw new EngineRequestError('queue_full', `the engine is at capacity (${inFlight} requests in flight, limit ${limits.maxInFlight})`);
  }
}
