// HTTP for downloads: undici requests that follow redirects themselves, so that the token only ever goes
// to the Hub's own origin (a signed CDN URL, Dropbox or Google Drive never sees it) and a Range header
// survives every hop. Connection failures become HubError('network') naming the host.

import { request } from 'undici';
import type { Dispatcher } from 'undici';
import { HubError } from './errors.ts';

export interface HttpAuth {
  token?: string;
  /** Origin (scheme://host:port) the token may be sent to. */
  tokenOrigin?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered, after redirects. */
  url: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const STALL_MS = 60_000;

function flatHeaders(h: Dispatcher.ResponseData['headers']): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export async function httpRequest(
  url: string,
  opts: { method?: 'GET' | 'HEAD'; headers?: Record<string, string>; auth?: HttpAuth; followRedirects?: boolean; stallMs?: number } = {},
): Promise<HttpResponse> {
  let current = url;
  let method = opts.method ?? 'GET';
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'blockserve', ...opts.headers };
    if (opts.auth?.token && new URL(current).origin === opts.auth.tokenOrigin) headers.authorization = `Bearer ${opts.auth.token}`;
    let res: Dispatcher.ResponseData;
    try {
      // A body that stops arriving for stallMs fails like a cut connection (and is resumed like one).
      res = await request(current, { method, headers, headersTimeout: opts.stallMs ?? STALL_MS, bodyTimeout: opts.stallMs ?? STALL_MS });
    } catch (e) {
      const err = e as Error & { code?: string };
      throw new HubError(`cannot reach ${new URL(current).origin}: ${err.code ?? err.message}`, 'network');
    }
    const h = flatHeaders(res.headers);
    if (REDIRECTS.has(res.statusCode) && h.location && opts.followRedirects !== false) {
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw new HubError(`too many redirects fetching ${url}`, 'network');
      current = new URL(h.location, current).href;
      if (res.statusCode === 303) method = 'GET';
      continue;
    }
    return { status: res.statusCode, headers: h, body: res.body, url: current };
  }
}
