// A 413 that reaches a client still uploading. Fastify refuses an oversized body as soon as it knows
// (Content-Length over the limit, or the running count passing it) and closes the connection; a
// client still writing the body then gets EPIPE / ECONNRESET instead of the 413, and the openai SDKs
// retry that as a network error. So the rest of the body is read and discarded first (up to a bound,
// so a client cannot make the server read forever), then the 413 is sent with `connection: close`.
import type { IncomingMessage } from 'node:http';

/** Bytes discarded beyond the limit before the server gives up and closes anyway. */
export const DISCARD_MAX_BYTES = 64 * 2 ** 20;
/** Time given to a slow client to finish its upload. */
export const DISCARD_MAX_MS = 15_000;

/** Resolves when the request body has been read to its end, or the bound or the time is reached. */
export function discardRequestBody(raw: IncomingMessage, maxBytes = DISCARD_MAX_BYTES, maxMs = DISCARD_MAX_MS): Promise<void> {
  if (raw.complete || raw.readableEnded || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const finish = () => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', finish);
      raw.off('error', finish);
      raw.off('close', finish);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBytes) finish();
    };
    const timer = setTimeout(finish, maxMs);
    raw.on('data', onData);
    raw.on('end', finish);
    raw.on('error', finish);
    raw.on('close', finish);
    raw.resume();
  });
}
