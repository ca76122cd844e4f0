// API keys: `Authorization: Bearer KEY` on the API paths, compared in constant time (both sides are
// hashed to equal length first, and every configured key is compared, so timing reveals neither the
// key nor which one matched). Browsers cannot set headers on a WebSocket, so /v1/ws also accepts the
// key as a subprotocol `openai-insecure-api-key.KEY` (the convention of OpenAI's realtime API).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ServerConfig } from './config.ts';
import { ApiError } from './errors.ts';

export const WS_KEY_PROTOCOL_PREFIX = 'openai-insecure-api-key.';

const digest = (s: string) => createHash('sha256').update(s).digest();

export class ApiKeyCheck {
  private readonly digests: Buffer[];
  constructor(private readonly config: ServerConfig) {
    this.digests = config.apiKeys.map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** Whether a path needs a key: the API always, metrics and the schema only if configured. */
  protects(path: string): boolean {
    if (!this.enabled) return false;
    if (path.startsWith('/v1/') || path === '/tokenize' || path === '/detokenize') return true;
    return this.config.protectMetrics && (path === '/metrics' || path === '/openapi.json');
  }

  matches(key: string): boolean {
    const d = digest(key);
    let ok = false;
    for (const k of this.digests) ok = timingSafeEqual(d, k) || ok;
    return ok;
  }

  /** Throws 401 unless the request carries a configured key. */
  check(request: FastifyRequest): void {
    const key = presentedKey(request);
    if (key === null) throw new ApiError('invalid_api_key', 'Missing API key: send it as `Authorization: Bearer KEY`.');
    if (!this.matches(key)) throw new ApiError('invalid_api_key', 'Incorrect API key provided.');
  }
}

function presentedKey(request: FastifyRequest): string | null {
  const auth = request.headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : '';
  }
  const protocols = request.headers['sec-websocket-protocol'];
  if (typeof protocols === 'string') {
    for (const p of protocols.split(',').map((s) => s.trim())) {
      if (p.startsWith(WS_KEY_PROTOCOL_PREFIX)) return p.slice(WS_KEY_PROTOCOL_PREFIX.length);
    }
  }
  return null;
}
