// POST /v1/completions and POST /v1/chat/completions: validate (schema) -> prepare (template,
// tokenize, sampling) -> admit and submit -> stream SSE or collect one JSON response. A client that
// disconnects aborts its engine requests at once.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChatCompletionRequest, CompletionRequest, ErrorObject } from '../../protocol/types.ts';
import {
  chatCompletionRequestSchema,
  chatCompletionResponseSchema,
  completionRequestSchema,
  completionResponseSchema,
} from '../../protocol/schemas.ts';
import type { AppContext } from '../context.ts';
import { ApiError, ERROR_TABLE, type ErrorCode } from '../errors.ts';
import { Generation } from '../generation.ts';
import { prepareChat, prepareCompletion, type PreparedRequest } from '../prepare.ts';
import { ChatRenderer } from '../render/chat.ts';
import { CompletionRenderer } from '../render/completion.ts';
import { SSE_HEADERS, SseSink } from '../render/sse.ts';
import { collectGeneration, streamGeneration } from '../render/stream.ts';
import type { Renderer } from '../render/usage.ts';
import { errorResponses } from './responses.ts';

export function requestId(kind: 'completion' | 'chat'): string {
  return `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
}

/** Starts a generation for a prepared request (admission + submit); shared with the WebSocket. */
export function startGeneration(ctx: AppContext, prepared: PreparedRequest): { gen: Generation; renderer: Renderer<unknown, unknown> } {
  const engine = ctx.state.requireEngine();
  const gen = new Generation(requestId(prepared.kind), prepared, engine, ctx.state, ctx.metrics);
  gen.start();
  const renderer = prepared.kind === 'chat' ? new ChatRenderer(gen) : new CompletionRenderer(gen);
  return { gen, renderer };
}

/** An engine error after submit, for a response that has not started yet. */
export function engineErrorToApi(e: ErrorObject): ApiError {
  // queue_full is decided at submit (a 429 before the response starts); should it ever arrive late,
  // it is still a 429, never a 500.
  if (e.code === 'queue_full') return new ApiError('rate_limit_exceeded', `Server is at capacity: ${e.message}`, null);
  const code = (e.code && e.code in ERROR_TABLE ? e.code : 'server_error') as ErrorCode;
  return new ApiError(code, e.message, null);
}

async function handle(ctx: AppContext, prepared: PreparedRequest, request: FastifyRequest, reply: FastifyReply) {
  const { gen, renderer } = startGeneration(ctx, prepared);
  request.generation = gen;
  if (!prepared.stream) {
    // reply.raw 'close' before the response finished means the client is gone.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) gen.abort();
    });
    const result = await collectGeneration(gen, renderer);
    if ('message' in (result as object)) throw engineErrorToApi(result as ErrorObject);
    return result;
  }
  const sink = new SseSink<unknown>(ctx.config.sseKeepaliveS);
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) {
      sink.markClosed();
      gen.abort();
    }
  });
  streamGeneration(gen, renderer, sink).catch((err: unknown) => {
    request.log.error({ err }, 'stream failed');
    sink.error({ message: 'Internal server error', type: 'server_error', param: null, code: 'server_error' });
    sink.done();
  });
  return reply.headers(SSE_HEADERS).send(sink.stream);
}

const streamed = (schema: Record<string, unknown>) => ({
  description: 'The response (or, with stream: true, Server-Sent Events of chunks ending with `data: [DONE]`).',
  content: {
    'application/json': { schema },
    'text/event-stream': { schema: { type: 'string' } },
  },
});

export async function generationRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;
  app.post<{ Body: CompletionRequest }>(
    '/v1/completions',
    {
      schema: {
        summary: 'Text completion',
        body: completionRequestSchema,
        response: { 200: streamed(completionResponseSchema), ...errorResponses(true) },
        security: [{ bearer: [] }],
      },
    },
    async (request, reply) => handle(ctx, prepareCompletion(request.body, ctx.prepareContext()), request, reply),
  );
  app.post<{ Body: ChatCompletionRequest }>(
    '/v1/chat/completions',
    {
      schema: {
        summary: 'Chat completion (prompt rendered by the chat template)',
        body: chatCompletionRequestSchema,
        response: { 200: streamed(chatCompletionResponseSchema), ...errorResponses(true) },
        security: [{ bearer: [] }],
      },
    },
    async (request, reply) => handle(ctx, prepareChat(request.body, ctx.prepareContext()), request, reply),
  );
}
