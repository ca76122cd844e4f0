// JSON Schemas (draft-07, the subset OpenAPI 3.0 understands) for every request and response body.
// The server validates requests with them and generates /openapi.json from them, so the documented
// contract and the enforced one cannot drift. Bounds that depend on the model (context length,
// vocabulary size) are checked in server code, which names the parameter the same way.
//
// Requests are closed (`additionalProperties: false`): an unknown or unsupported parameter is a 400
// that names it, never a silent ignore (the README's Serving section).

type Schema = Record<string, unknown>;

const SAFE_INT = 9007199254740991;

export const LIMITS = {
  maxN: 16,
  maxStop: 4,
  maxStopLength: 256,
  maxLogprobs: 20,
  maxMessages: 1024,
  maxLogitBias: 300,
  maxStopTokenIds: 64,
} as const;

const tokenId: Schema = { type: 'integer', minimum: 0, maximum: 2147483647 };
const tokenIds: Schema = { type: 'array', items: tokenId };

/** Parameters shared by /v1/completions and /v1/chat/completions. */
const commonParams: Record<string, Schema> = {
  model: { type: 'string', minLength: 1, maxLength: 256, description: 'Served model name; defaults to the only model served.' },
  max_tokens: { type: 'integer', minimum: 1, maximum: 1048576, description: 'Tokens to generate at most.' },
  temperature: { type: 'number', minimum: 0, maximum: 2, description: '0 is greedy.' },
  // `> 0` bounds are checked in server code: OpenAPI 3.0 and JSON Schema disagree on exclusiveMinimum.
  top_p: { type: 'number', minimum: 0, maximum: 1, description: 'Must be above 0.' },
  top_k: { type: 'integer', minimum: -1, maximum: 1048576, description: '-1 or 0 turn it off.' },
  min_p: { type: 'number', minimum: 0, maximum: 1 },
  frequency_penalty: { type: 'number', minimum: -2, maximum: 2 },
  presence_penalty: { type: 'number', minimum: -2, maximum: 2 },
  repetition_penalty: { type: 'number', minimum: 0, maximum: 10, description: 'Must be above 0; 1 is off.' },
  stop: {
    anyOf: [
      { type: 'string', minLength: 1, maxLength: LIMITS.maxStopLength },
      { type: 'array', maxItems: LIMITS.maxStop, items: { type: 'string', minLength: 1, maxLength: LIMITS.maxStopLength } },
    ],
    description: `Up to ${LIMITS.maxStop} stop strings; the text ends before the first one and excludes it.`,
  },
  stop_token_ids: { type: 'array', maxItems: LIMITS.maxStopTokenIds, items: tokenId },
  seed: {
    type: 'integer',
    minimum: -SAFE_INT,
    maximum: SAFE_INT,
    description: 'Per-request RNG seed: the same tokens whatever else is in the batch.',
  },
  n: { type: 'integer', minimum: 1, maximum: LIMITS.maxN, description: 'Choices to generate (each one engine request).' },
  logit_bias: {
    type: 'object',
    maxProperties: LIMITS.maxLogitBias,
    propertyNames: { pattern: '^(0|[1-9][0-9]{0,9})$' },
    additionalProperties: { type: 'number', minimum: -100, maximum: 100 },
    description: 'Token id (as a string) -> bias added to its logit.',
  },
  stream: { type: 'boolean' },
  stream_options: {
    type: 'object',
    additionalProperties: false,
    properties: { include_usage: { type: 'boolean' } },
    description: 'Only with stream: true. include_usage adds a last chunk with usage and no choices.',
  },
  user: { type: 'string', maxLength: 256 },
  ignore_eos: { type: 'boolean', description: 'Keep generating past the end-of-sequence token.' },
  return_token_ids: { type: 'boolean', description: 'Choices carry token_ids; the response carries prompt_token_ids.' },
};

export const completionRequestSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['prompt'],
  properties: {
    ...commonParams,
    prompt: {
      anyOf: [
        { type: 'string' },
        { type: 'array', minItems: 1, items: { type: 'string' } },
        { type: 'array', minItems: 1, items: tokenId },
        { type: 'array', minItems: 1, items: { type: 'array', minItems: 1, items: tokenId } },
      ],
      description: 'Text, list of texts, token ids, or list of token-id lists.',
    },
    logprobs: {
      type: 'integer',
      minimum: 0,
      maximum: LIMITS.maxLogprobs,
      description: 'Top logprobs per token (0: only the sampled one).',
    },
    echo: { type: 'boolean', description: 'Prepend the prompt to the returned text.' },
  },
};

const textPart: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'text'],
  properties: { type: { type: 'string', enum: ['text'] }, text: { type: 'string' } },
};

export const chatMessageSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['role', 'content'],
  properties: {
    role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant'] },
    content: { anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: textPart }] },
    name: { type: 'string', maxLength: 256 },
  },
};

const messagesSchema: Schema = { type: 'array', minItems: 1, maxItems: LIMITS.maxMessages, items: chatMessageSchema };

export const chatCompletionRequestSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['messages'],
  properties: {
    ...commonParams,
    messages: messagesSchema,
    max_completion_tokens: { type: 'integer', minimum: 1, maximum: 1048576, description: 'Same as max_tokens (the newer name).' },
    logprobs: { type: 'boolean' },
    top_logprobs: { type: 'integer', minimum: 0, maximum: LIMITS.maxLogprobs, description: 'Needs logprobs: true.' },
    response_format: {
      type: 'object',
      additionalProperties: false,
      required: ['type'],
      properties: { type: { type: 'string', enum: ['text'] } },
    },
  },
};

export const tokenizeRequestSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: commonParams.model,
    prompt: { type: 'string' },
    messages: messagesSchema,
    add_generation_prompt: { type: 'boolean', description: 'With messages: end with the assistant turn opener (default true).' },
  },
  description: 'Exactly one of prompt or messages (checked by the server).',
};

export const detokenizeRequestSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['tokens'],
  properties: { model: commonParams.model, tokens: tokenIds },
};

// ---- responses -------------------------------------------------------------------------------------

const nullable = (s: Schema): Schema => ({ ...s, nullable: true });
const finishReason: Schema = nullable({ type: 'string', enum: ['stop', 'length', 'abort', null] });

export const usageSchema: Schema = {
  type: 'object',
  required: ['prompt_tokens', 'completion_tokens', 'total_tokens'],
  properties: {
    prompt_tokens: { type: 'integer' },
    completion_tokens: { type: 'integer' },
    total_tokens: { type: 'integer' },
  },
};

const completionLogprobs: Schema = nullable({
  type: 'object',
  properties: {
    tokens: { type: 'array', items: { type: 'string' } },
    // null for prompt tokens the model cannot predict (echo with logprobs: the first token at least)
    token_logprobs: { type: 'array', items: { type: ['number', 'null'] } },
    top_logprobs: { type: 'array', items: { type: ['object', 'null'], additionalProperties: { type: 'number' } } },
    text_offset: { type: 'array', items: { type: 'integer' } },
  },
});

/** What every response object shares: id, object, created, model, choices and usage. */
function responseSchema(object: string, choice: Schema, extra: { required?: string[]; properties?: Record<string, Schema> } = {}): Schema {
  return {
    type: 'object',
    required: ['id', 'object', 'created', 'model', 'choices', ...(extra.required ?? [])],
    properties: {
      id: { type: 'string' },
      object: { type: 'string', enum: [object] },
      created: { type: 'integer' },
      model: { type: 'string' },
      choices: { type: 'array', items: choice },
      usage: usageSchema,
      ...extra.properties,
    },
  };
}

export const completionResponseSchema: Schema = responseSchema('text_completion', {
  type: 'object',
  required: ['index', 'text', 'logprobs', 'finish_reason'],
  properties: {
    index: { type: 'integer' },
    text: { type: 'string' },
    logprobs: completionLogprobs,
    finish_reason: finishReason,
    token_ids: tokenIds,
    prompt_token_ids: tokenIds,
  },
});

const topLogprob: Schema = {
  type: 'object',
  required: ['token', 'logprob', 'bytes'],
  properties: { token: { type: 'string' }, logprob: { type: 'number' }, bytes: { type: 'array', items: { type: 'integer' } } },
};
const chatLogprobs: Schema = nullable({
  type: 'object',
  required: ['content'],
  properties: {
    content: {
      type: 'array',
      items: {
        type: 'object',
        required: ['token', 'logprob', 'bytes', 'top_logprobs'],
        properties: { ...(topLogprob.properties as Schema), top_logprobs: { type: 'array', items: topLogprob } },
      },
    },
  },
});

export const chatCompletionResponseSchema: Schema = responseSchema(
  'chat.completion',
  {
    type: 'object',
    required: ['index', 'message', 'logprobs', 'finish_reason'],
    properties: {
      index: { type: 'integer' },
      message: {
        type: 'object',
        required: ['role', 'content'],
        properties: { role: { type: 'string', enum: ['assistant'] }, content: { type: 'string' } },
      },
      logprobs: chatLogprobs,
      finish_reason: finishReason,
      token_ids: tokenIds,
    },
  },
  { required: ['usage'], properties: { prompt_token_ids: tokenIds } },
);

export const modelCardSchema: Schema = {
  type: 'object',
  required: ['id', 'object', 'created', 'owned_by', 'root', 'max_model_len', 'demo'],
  properties: {
    id: { type: 'string' },
    object: { type: 'string', enum: ['model'] },
    created: { type: 'integer' },
    owned_by: { type: 'string' },
    root: { type: 'string' },
    max_model_len: { type: 'integer' },
    demo: { type: 'boolean', description: 'True for the built-in demo model, whose weights are random.' },
  },
};

export const modelListSchema: Schema = {
  type: 'object',
  required: ['object', 'data'],
  properties: { object: { type: 'string', enum: ['list'] }, data: { type: 'array', items: modelCardSchema } },
};

export const tokenizeResponseSchema: Schema = {
  type: 'object',
  required: ['count', 'max_model_len', 'tokens'],
  properties: { count: { type: 'integer' }, max_model_len: { type: 'integer' }, tokens: tokenIds },
};

export const detokenizeResponseSchema: Schema = {
  type: 'object',
  required: ['prompt'],
  properties: { prompt: { type: 'string' } },
};

export const errorBodySchema: Schema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['message', 'type', 'param', 'code'],
      properties: {
        message: { type: 'string' },
        type: { type: 'string' },
        param: nullable({ type: 'string' }),
        code: nullable({ type: 'string' }),
      },
    },
  },
};
