// The error responses every route documents in /openapi.json (so schema fuzzers accept them).
import { errorBodySchema } from '../../protocol/schemas.ts';

const err = (description: string) => ({ description, ...errorBodySchema });

export function errorResponses(generates: boolean): Record<number, unknown> {
  const out: Record<number, unknown> = {
    400: err('Invalid request; `param` names the offending parameter.'),
    401: err('Missing or wrong API key.'),
    404: err('Unknown model or route.'),
    413: err('Body larger than --body-limit-mb.'),
    415: err('Body is not JSON.'),
    500: err('A bug in the server.'),
    503: err('Model loading, server draining, or engine failed.'),
  };
  if (generates) out[429] = err('Queue full: retry after `retry-after` seconds.');
  return out;
}
