// WebSocket at /v1/ws: many concurrent requests on one socket. The client sends
//   {"type": "completion.create" | "chat.completion.create", "id": "r1", ...the REST body}
//   {"type": "cancel", "id": "r1"}
// and receives, tagged with its id, {"type": "chunk", "id", "data": <the SSE chunk object>}, then
// {"type": "done", "id"}; a failure is {"type": "error", "id", "error": {...}} followed by done
// (except for an unreadable message, answered with id null and no done). Requests always stream;
// `stream` in the body is ignored, stream_options.include_usage works as over SSE. Closing the
// socket aborts all of its requests. Admission, validation and errors are those of the REST routes.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { chatCompletionRequestSchema, completionRequestSchema } from '../../protocol/schemas.ts';
import type { ChatCompletionRequest, CompletionRequest, ErrorObject, WsServerMessage } from '../../protocol/types.ts';
import type { AppContext } from '../context.ts';
import { ApiError, toApiError, validationError } from '../errors.ts';
import type { Generation } from '../generation.ts';
import { prepareChat, prepareCompletion } from '../prepare.ts';
import { streamGeneration, type ChunkSink } from '../render/stream.ts';
import type { Renderer } from '../render/usage.ts';
import { startGeneration } from './generate.ts';

const MAX_ID_LENGTH = 256;

type Validator = ((data: unknown) => boolean) & { errors?: unknown[] | null };

export async function wsRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;
  app.get('/v1/ws', { websocket: true, schema: { hide: true } }, (socket: WebSocket, request: FastifyRequest) => {
    // The same validator compiler (same Ajv options) as the REST routes.
    const validators: Record<string, Validator> = {
      'completion.create': request.compileValidationSchema(completionRequestSchema) as Validator,
      'chat.completion.create': request.compileValidationSchema(chatCompletionRequestSchema) as Validator,
    };
    const active = new Map<string, Generation>();
    const send = (msg: WsServerMessage) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(msg));
    };
    const fail = (id: string | null, err: ApiError) => {
      send({ type: 'error', id, error: err.toWire() });
      if (id !== null) send({ type: 'done', id });
    };

    socket.on('message', (data, isBinary) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString());
        if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('not an object');
      } catch (e) {
        return fail(null, new ApiError('invalid_json', `Messages must be JSON objects: ${(e as Error).message}`));
      }
      const { type, id, ...body } = msg;
      if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
        return fail(null, new ApiError('invalid_request', `Every message needs a string id of 1-${MAX_ID_LENGTH} characters.`, 'id'));
      }
      if (type === 'cancel') {
        active.get(id)?.abort();
        return;
      }
      const validate = typeof type === 'string' ? validators[type] : undefined;
      if (!validate) {
        return fail(id, new ApiError('invalid_request', "type must be 'completion.create', 'chat.completion.create' or 'cancel'.", 'type'));
      }
      if (active.has(id)) return fail(id, new ApiError('invalid_request', `Request id '${id}' is already in flight on this socket.`, 'id'));
      delete body.stream; // always streamed here
      if (!validate(body)) return fail(id, validationError((validate.errors ?? []) as never));
      let gen: Generation;
      let renderer: Renderer<unknown, unknown>;
      try {
        const pc = ctx.prepareContext();
        const prepared =
          type === 'chat.completion.create'
            ? prepareChat({ ...(body as unknown as ChatCompletionRequest), stream: true }, pc)
            : prepareCompletion({ ...(body as unknown as CompletionRequest), stream: true }, pc);
        ({ gen, renderer } = startGeneration(ctx, prepared));
      } catch (e) {
        return fail(
          id,
          toApiError(e, (err) => request.log.error({ err }, 'ws request failed')),
        );
      }
      active.set(id, gen);
      const sink: ChunkSink<unknown> = {
        get closed() {
          return socket.readyState !== socket.OPEN;
        },
        chunk: (chunk) => send({ type: 'chunk', id, data: chunk as never }),
        error: (error: ErrorObject) => send({ type: 'error', id, error }),
        done: () => send({ type: 'done', id }),
      };
      streamGeneration(gen, renderer, sink)
        .catch((err: unknown) => {
          request.log.error({ err }, 'ws stream failed');
          fail(id, new ApiError('server_error', 'Internal server error'));
        })
        .finally(() => {
          active.delete(id);
          request.log.info({ ws: true, ...gen.summary() }, 'ws request');
        });
    });

    socket.on('close', () => {
      for (const gen of active.values()) gen.abort();
    });
  });
}
