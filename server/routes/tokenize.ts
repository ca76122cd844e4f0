// POST /tokenize and POST /detokenize (vLLM's shapes): the served model's tokenizer, and for chat
// messages the same template the chat route uses, so clients can count tokens exactly.
import type { FastifyInstance } from 'fastify';
import type { DetokenizeRequest, TokenizeRequest } from '../../protocol/types.ts';
import {
  detokenizeRequestSchema,
  detokenizeResponseSchema,
  tokenizeRequestSchema,
  tokenizeResponseSchema,
} from '../../protocol/schemas.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { resolveModel } from '../prepare.ts';
import { errorResponses } from './responses.ts';

export async function tokenizeRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;
  app.post<{ Body: TokenizeRequest }>(
    '/tokenize',
    {
      schema: {
        summary: 'Text or chat messages -> token ids',
        body: tokenizeRequestSchema,
        response: { 200: tokenizeResponseSchema, ...errorResponses(false) },
      },
    },
    async (request) => {
      const pc = ctx.prepareContext();
      resolveModel(request.body.model, pc.servedModelName);
      const { prompt, messages, add_generation_prompt } = request.body;
      if ((prompt === undefined) === (messages === undefined)) {
        throw new ApiError('invalid_request', 'Send exactly one of prompt or messages.', prompt === undefined ? 'prompt' : 'messages');
      }
      const text = messages !== undefined ? pc.chatTemplate.render(messages, add_generation_prompt ?? true) : prompt!;
      const tokens = pc.engine.tokenizer.encode(text);
      return { count: tokens.length, max_model_len: pc.engine.info.contextLength, tokens };
    },
  );
  app.post<{ Body: DetokenizeRequest }>(
    '/detokenize',
    {
      schema: {
        summary: 'Token ids -> text',
        body: detokenizeRequestSchema,
        response: { 200: detokenizeResponseSchema, ...errorResponses(false) },
      },
    },
    async (request) => {
      const pc = ctx.prepareContext();
      resolveModel(request.body.model, pc.servedModelName);
      const vocab = pc.engine.info.vocabSize;
      const bad = request.body.tokens.findIndex((id) => id >= vocab);
      if (bad >= 0)
        throw new ApiError(
          'invalid_request',
          `tokens[${bad}]: token id ${request.body.tokens[bad]} is outside the vocabulary (size ${vocab}).`,
          `tokens[${bad}]`,
        );
      return { prompt: pc.engine.tokenizer.decode(request.body.tokens) };
    },
  );
}
