// One table of error codes, each with its HTTP status and OpenAI error `type`, and the one error
// handler that renders every failure (ours, Fastify's, the engine's) as the OpenAI error body.
// Bad input is always a 4xx naming the parameter: the openai SDK retries 5xx twice, so a 500 for
// bad input would arrive three times (serving.md).
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorObject } from '../protocol/types.ts';
import { EngineRequestError } from '../engine/api.ts';
import { discardRequestBody } from './body-drain.ts';

export const ERROR_TABLE = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  invalid_json: { status: 400, type: 'invalid_request_error' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error' },
  unsupported_parameter: { status: 400, type: 'invalid_request_error' },
  invalid_api_key: { status: 401, type: 'invalid_request_error' },
  model_not_found: { status: 404, type: 'invalid_request_error' },
  not_found: { status: 404, type: 'invalid_request_error' },
  method_not_allowed: { status: 405, type: 'invalid_request_error' },
  request_too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error' },
  server_error: { status: 500, type: 'server_error' },
  model_loading: { status: 503, type: 'service_unavailable' },
  server_shutting_down: { status: 503, type: 'service_unavailable' },
  engine_dead: { status: 503, type: 'service_unavailable' },
} as const;

export type ErrorCode = keyof typeof ERROR_TABLE;

/** Seconds a client should wait after a 429 before retrying (sent as `retry-after`). */
export const RETRY_AFTER_S = 1;

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
  get status(): number {
    return ERROR_TABLE[this.code].status;
  }
  toWire(): ErrorObject {
    return { message: this.message, type: ERROR_TABLE[this.code].type, param: this.param, code: this.code };
  }
}

/** Ajv's instancePath (`/messages/0/role`) as the parameter name clients know (`messages[0].role`). */
export function paramFromPath(instancePath: string, extra?: string): string | null {
  const parts = instancePath.split('/').filter(Boolean);
  if (extra) parts.push(extra);
  if (!parts.length) return null;
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

interface AjvLikeError {
  instancePath?: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/**
 * One Ajv failure as an ApiError. An unknown property is named itself ("Unrecognized request
 * argument"), a missing one by its name, anything else by the path of the offending value. Among
 * several errors (anyOf branches) the deepest path wins: it is the most specific.
 */
export function validationError(errors: AjvLikeError[], what = 'body'): ApiError {
  const ranked = [...errors].sort((a, b) => depth(b) - depth(a));
  const e = ranked.find((x) => x.keyword !== 'anyOf' && x.keyword !== 'oneOf') ?? ranked[0];
  const path = e.instancePath ?? '';
  if (e.keyword === 'additionalProperties') {
    const name = String(e.params.additionalProperty);
    const param = paramFromPath(path, name);
    return new ApiError('unsupported_parameter', `Unrecognized request argument supplied: ${param}`, param);
  }
  if (e.keyword === 'required') {
    const param = paramFromPath(path, String(e.params.missingProperty));
    return new ApiError('invalid_request', `Missing required parameter: '${param}'.`, param);
  }
  if (e.keyword === 'oneOf' && !path) {
    return new ApiError(
      'invalid_request',
      `The ${what} needs exactly one of the alternatives its schema allows (e.g. 'prompt' or 'messages').`,
      null,
    );
  }
  const param = paramFromPath(path);
  const shown = param ?? what;
  let detail = e.message ?? 'is invalid';
  if (e.keyword === 'enum' && Array.isArray(e.params.allowedValues))
    detail = `must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  return new ApiError('invalid_request', `Invalid value for '${shown}': ${detail}.`, param);
}

function depth(e: AjvLikeError): number {
  return (e.instancePath ?? '').split('/').length;
}

/** Any thrown value as an ApiError; `log` receives the ones that are real bugs. */
export function toApiError(err: unknown, log?: (e: unknown) => void): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof EngineRequestError) {
    switch (err.code) {
      case 'context_length_exceeded':
        return new ApiError('context_length_exceeded', err.message, 'prompt');
      case 'invalid_request':
        return new ApiError('invalid_request', err.message, null);
      case 'queue_full':
        return new ApiError('rate_limit_exceeded', `Server is at capacity: ${err.message}; retry later.`, null);
      case 'engine_dead':
        return new ApiError('engine_dead', err.message, null);
    }
  }
  const fe = err as Partial<FastifyError> & { validation?: AjvLikeError[]; validationContext?: string };
  if (fe && Array.isArray(fe.validation)) return validationError(fe.validation, fe.validationContext);
  switch (fe?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('request_too_large', 'Request body is larger than the server accepts (see --body-limit-mb).', null);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type', 'Send the body as application/json.', null);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('invalid_json', 'The body is empty; send a JSON object.', null);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('invalid_request', 'Content-Length does not match the body.', null);
  }
  if (err instanceof SyntaxError || fe?.statusCode === 400) {
    return new ApiError('invalid_json', `We could not parse the JSON body of your request: ${(err as Error).message}`, null);
  }
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code: ErrorCode =
      fe.statusCode === 404
        ? 'not_found'
        : fe.statusCode === 413
          ? 'request_too_large'
          : fe.statusCode === 405
            ? 'method_not_allowed'
            : 'invalid_request';
    return new ApiError(code, fe.message ?? 'Bad request', null);
  }
  log?.(err);
  return new ApiError('server_error', 'Internal server error', null);
}

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  if (err.code === 'rate_limit_exceeded') reply.header('retry-after', String(RETRY_AFTER_S));
  return reply.code(err.status).type('application/json').send({ error: err.toWire() });
}

/** Fastify's setErrorHandler target. */
export async function errorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const apiErr = toApiError(err, (e) => request.log.error({ err: e }, 'unhandled error'));
  // Answer an oversized body only once the client has stopped sending it (server/body-drain.ts).
  if (apiErr.code === 'request_too_large') await discardRequestBody(request.raw);
  return sendError(reply, apiErr);
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(reply, new ApiError('not_found', `No route for ${request.method} ${request.url.split('?')[0]}`, null));
}
