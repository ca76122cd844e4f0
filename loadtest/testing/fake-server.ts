// A fake OpenAI-compatible server with scripted timings, so tests know the true TTFT, inter-token
// gaps and token counts the load tester should measure. Plain node:http, loopback only. It records
// when it actually wrote each chunk (its own clock), which is the truth the client is checked
// against when timers run late under load.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

export type Fault = 'ok' | 'bad-json' | 'no-done' | 'http-500' | 'http-429' | 'http-503' | 'drop' | 'error-event';

export interface FakeScript {
  /** Delay from request arrival (or from getting a slot) to the first content chunk. */
  ttftMs: number;
  /** Gap between content chunks. */
  itlMs: number;
  /** Tokens to generate; default: the request's max_tokens. */
  outputTokens?: number;
  /** Behaviour of request i is faults[i % faults.length]; default all 'ok'. */
  faults?: Fault[];
  /** At most this many requests generate at once; the rest wait in FIFO order (queueing). */
  slots?: number;
  /** Serve /tokenize (see countTokens); default true. */
  tokenize?: boolean;
}

/** What the server did for one request, measured on its own clock. */
export interface TruthRecord {
  id: string;
  fault: Fault;
  promptTokens: number;
  outputTokens: number;
  /** From arrival to the write of the first content chunk. */
  ttftMs: number;
  /** Gaps between content-chunk writes. */
  gapsMs: number[];
  e2eMs: number;
  arrivalMs: number;
  endMs: number;
}

/** The request fields the fake reads, from an untrusted JSON body. */
interface RequestBody {
  model?: unknown;
  prompt?: unknown;
  messages?: { content?: unknown }[];
  max_tokens?: unknown;
  stream_options?: { include_usage?: unknown };
}

// The fake's tokenizer: a word of n letters is ceil(n / 3) tokens, so word counts and token counts
// differ and the load tester's /tokenize correction is really exercised.
export const countTokens = (s: string) =>
  s
    .split(/\s+/)
    .filter(Boolean)
    .reduce((n, w) => n + Math.ceil(w.length / 3), 0);

export function createFakeServer(script: FakeScript): http.Server {
  const truth: TruthRecord[] = [];
  let requestCount = 0;
  let running = 0;
  const waiting: Array<() => void> = [];
  let generated = 0;
  const slots = script.slots ?? Infinity;
  const faults = script.faults ?? ['ok'];

  const acquire = (): Promise<void> => {
    if (running < slots) {
      running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => waiting.push(() => resolve()));
  };
  const release = () => {
    const next = waiting.shift();
    if (next)
      next(); // the slot passes straight on
    else running--;
  };

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const stream = async (res: http.ServerResponse, body: RequestBody, chat: boolean, arrival: number) => {
    const index = requestCount++;
    const fault = faults[index % faults.length];
    const id = `${chat ? 'chatcmpl' : 'cmpl'}-fake-${index}`;
    if (fault === 'http-500')
      return json(res, 500, { error: { message: 'scripted failure', type: 'server_error', param: null, code: null } });
    if (fault === 'http-429')
      return json(
        res,
        429,
        { error: { message: 'queue full', type: 'rate_limit_exceeded', param: null, code: null } },
        { 'retry-after': '1' },
      );
    if (fault === 'http-503')
      return json(res, 503, { error: { message: 'draining', type: 'service_unavailable', param: null, code: null } });
    const promptText = chat ? (body.messages ?? []).map((m) => String(m.content)).join(' ') : String(body.prompt ?? '');
    const promptTokens = countTokens(promptText);
    const outputTokens = script.outputTokens ?? Number(body.max_tokens ?? 16);
    const includeUsage = body.stream_options?.include_usage === true;
    const created = Math.floor(Date.now() / 1000);
    const frame = (choice: unknown, extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: chat ? 'chat.completion.chunk' : 'text_completion', created, model: body.model, choices: choice ? [choice] : [], ...extra })}\n\n`;
    const piece = (k: number) =>
      chat ? { index: 0, delta: { content: ` tok${k}` }, finish_reason: null } : { index: 0, text: ` tok${k}`, finish_reason: null };

    await acquire();
    let closed = false;
    res.on('close', () => {
      closed = true;
    });
    const start = performance.now();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (chat) res.write(frame({ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }));
    const writes: number[] = [];
    let flushed: Promise<void> = Promise.resolve();
    try {
      for (let k = 0; k < outputTokens && !closed; k++) {
        const due = start + script.ttftMs + k * script.itlMs; // absolute targets: no drift
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (closed) break;
        if (fault === 'drop' && k === 2) {
          // Wait until the chunks so far reached the kernel, so the client really saw a stream start.
          await flushed;
          res.socket?.destroy();
          break;
        }
        if (fault === 'bad-json' && k === 1) res.write('data: {"id": oops not json\n\n');
        if (fault === 'error-event' && k === 1) {
          res.write(`data: ${JSON.stringify({ error: { message: 'scripted mid-stream error', type: 'server_error' } })}\n\n`);
          res.end('data: [DONE]\n\n');
          break;
        }
        if (k === 1) flushed = new Promise<void>((resolve) => res.write(frame(piece(k)), () => resolve()));
        else res.write(frame(piece(k)));
        writes.push(performance.now());
        generated++;
      }
      if (!closed && !res.writableEnded && !res.destroyed) {
        const finish = chat ? { index: 0, delta: {}, finish_reason: 'length' } : { index: 0, text: '', finish_reason: 'length' };
        res.write(frame(finish));
        if (includeUsage)
          res.write(
            frame(null, {
              usage: { prompt_tokens: promptTokens, completion_tokens: writes.length, total_tokens: promptTokens + writes.length },
            }),
          );
        if (fault === 'no-done') res.end();
        else res.end('data: [DONE]\n\n');
      }
    } finally {
      release();
    }
    const end = performance.now();
    truth.push({
      id,
      fault,
      promptTokens,
      outputTokens: writes.length,
      ttftMs: writes.length ? writes[0] - arrival : NaN,
      gapsMs: writes.slice(1).map((t, i) => t - writes[i]),
      e2eMs: end - arrival,
      arrivalMs: arrival,
      endMs: end,
    });
  };

  const server = http.createServer((req, res) => {
    const arrival = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      let body: RequestBody = {};
      if (chunks.length) {
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return json(res, 400, { error: { message: 'bad json body', type: 'invalid_request_error', param: null, code: null } });
        }
      }
      if (req.method === 'POST' && url === '/v1/completions') return void stream(res, body, false, arrival);
      if (req.method === 'POST' && url === '/v1/chat/completions') return void stream(res, body, true, arrival);
      if (req.method === 'GET' && url === '/v1/models')
        return json(res, 200, { object: 'list', data: [{ id: 'fake-model', object: 'model', owned_by: 'test', max_model_len: 4096 }] });
      if (req.method === 'POST' && url === '/tokenize' && script.tokenize !== false) {
        const n = countTokens(String(body.prompt ?? ''));
        return json(res, 200, { count: n, max_model_len: 4096, tokens: Array.from({ length: n }, (_, i) => i + 1) });
      }
      if (req.method === 'GET' && url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        return void res.end(
          '# HELP fake:num_requests_running Requests generating.\n# TYPE fake:num_requests_running gauge\n' +
            `fake:num_requests_running{model="fake-model"} ${running - 0}\n` +
            '# TYPE fake:num_requests_waiting gauge\n' +
            `fake:num_requests_waiting{model="fake-model"} ${waiting.length}\n` +
            '# TYPE fake:generation_tokens_total counter\n' +
            `fake:generation_tokens_total{model="fake-model"} ${generated}\n`,
        );
      }
      if (req.method === 'GET' && url === '/_truth') return json(res, 200, truth);
      if (req.method === 'POST' && url === '/_reset') {
        truth.length = 0;
        requestCount = 0;
        return json(res, 200, {});
      }
      json(res, 404, { error: { message: `no route ${url}`, type: 'invalid_request_error', param: null, code: null } });
    });
  });
  server.keepAliveTimeout = 30_000;
  return server;
}

export async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
