// One streaming request over undici, timed chunk by chunk. Timestamps are taken in the socket's
// 'data' handler (not an async iterator that may read late) so queueing inside the client does not
// leak into TTFT or inter-token gaps.
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { SseParser } from './sse.ts';
import type { Endpoint, RequestRecord, WorkItem } from './types.ts';

export interface ClientOptions {
  baseUrl: string;
  endpoint: Endpoint;
  model: string;
  apiKey?: string;
  ignoreEos: boolean;
  temperature?: number;
  timeoutMs: number;
}

export class StreamingClient {
  readonly agent: Agent;
  private readonly url: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly opts: ClientOptions) {
    // No connection cap: an open-loop generator must never queue requests behind busy sockets.
    this.agent = new Agent({ connections: null, pipelining: 1, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000 });
    this.url = opts.baseUrl + (opts.endpoint === 'chat' ? '/v1/chat/completions' : '/v1/completions');
    this.headers = { 'content-type': 'application/json', accept: 'text/event-stream' };
    if (opts.apiKey) this.headers.authorization = `Bearer ${opts.apiKey}`;
  }

  body(item: WorkItem): string {
    const o = this.opts;
    const req: Record<string, unknown> = { model: o.model, max_tokens: item.maxTokens, stream: true, stream_options: { include_usage: true } };
    if (o.endpoint === 'chat') req.messages = item.messages ?? [{ role: 'user', content: item.prompt ?? '' }];
    else req.prompt = item.prompt ?? '';
    if (o.ignoreEos) req.ignore_eos = true;
    if (o.temperature !== undefined) req.temperature = o.temperature;
    return JSON.stringify(req);
  }

  /** Sends one request; never throws: every failure becomes a record with ok = false. */
  async send(index: number, item: WorkItem, phaseStart: number, scheduledAtMs: number | null): Promise<RequestRecord> {
    const payload = this.body(item);
    const t0 = performance.now();
    const rec: RequestRecord = {
      index, scheduledAtMs, sentAtMs: round(t0 - phaseStart), endAtMs: 0, ttftMs: null, itlMs: [], e2eMs: 0,
      promptTokens: null, outputTokens: null, tokensFromUsage: false, contentChunks: 0, finishReason: null,
      status: null, ok: false, errorKind: null, error: null, maxTokens: item.maxTokens, responseId: null,
    };
    const finish = (tEnd: number) => {
      rec.e2eMs = round(tEnd - t0);
      rec.endAtMs = round(tEnd - phaseStart);
      return rec;
    };
    let res;
    try {
      res = await request(this.url, {
        method: 'POST', headers: this.headers, body: payload, dispatcher: this.agent,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
    } catch (err) {
      fail(rec, classifyThrown(err), describe(err));
      return finish(performance.now());
    }
    rec.status = res.statusCode;
    if (res.statusCode !== 200) {
      let text = '';
      try {
        text = await res.body.text();
      } catch {
        /* the status is the error either way */
      }
      fail(rec, String(res.statusCode), errorMessage(text) ?? `HTTP ${res.statusCode}`);
      return finish(performance.now());
    }
    const tEnd = await readStream(res.body, rec, t0);
    return finish(tEnd);
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

type Body = Awaited<ReturnType<typeof request>>['body'];

/** Consumes the SSE body, filling the record; resolves with the time the stream ended. */
function readStream(body: Body, rec: RequestRecord, t0: number): Promise<number> {
  return new Promise((resolve) => {
    const parser = new SseParser();
    let lastContent = 0;
    let doneAt = 0;
    let settled = false;
    const settle = (t: number) => {
      if (settled) return;
      settled = true;
      body.removeAllListeners('data');
      resolve(t);
    };
    const stop = (kind: string, msg: string, t: number) => {
      fail(rec, kind, msg);
      settle(t);
      body.destroy();
    };
    body.on('data', (chunk: Buffer) => {
      const now = performance.now();
      if (settled) return;
      for (const data of parser.push(chunk)) {
        if (doneAt) return stop('bad-frame', 'data after [DONE]', now);
        if (data === '[DONE]') {
          doneAt = now;
          continue;
        }
        let obj: any;
        try {
          obj = JSON.parse(data);
        } catch {
          return stop('bad-json', `unparseable chunk: ${data.slice(0, 80)}`, now);
        }
        if (obj === null || typeof obj !== 'object') return stop('bad-frame', `chunk is not an object: ${data.slice(0, 80)}`, now);
        if (obj.error) return stop('stream-error', String(obj.error.message ?? JSON.stringify(obj.error)).slice(0, 200), now);
        if (rec.responseId === null && typeof obj.id === 'string') rec.responseId = obj.id;
        const choice = Array.isArray(obj.choices) ? obj.choices[0] : undefined;
        if (choice) {
          const text = choice.text ?? choice.delta?.content ?? choice.delta?.reasoning_content ?? choice.delta?.reasoning;
          if (typeof text === 'string' && text.length > 0) {
            if (rec.contentChunks === 0) rec.ttftMs = round(now - t0);
            else rec.itlMs.push(round(now - lastContent));
            lastContent = now;
            rec.contentChunks++;
          }
          if (choice.finish_reason) rec.finishReason = choice.finish_reason;
        }
        if (obj.usage && typeof obj.usage === 'object') {
          if (typeof obj.usage.prompt_tokens === 'number') rec.promptTokens = obj.usage.prompt_tokens;
          if (typeof obj.usage.completion_tokens === 'number') {
            rec.outputTokens = obj.usage.completion_tokens;
            rec.tokensFromUsage = true;
          }
        }
      }
    });
    body.on('end', () => {
      const now = performance.now();
      if (settled) return;
      if (!doneAt) {
        fail(rec, 'no-done', 'stream ended without data: [DONE]');
      } else {
        rec.ok = true;
        if (!rec.tokensFromUsage) rec.outputTokens = rec.contentChunks;
      }
      settle(doneAt || now);
    });
    body.on('error', (err: unknown) => {
      if (settled) return;
      fail(rec, classifyThrown(err), `mid-stream: ${describe(err)}`);
      settle(performance.now());
    });
    body.on('close', () => {
      // A socket destroyed without 'end' or 'error' still ends the record.
      if (!settled) {
        fail(rec, doneAt ? 'network' : 'no-done', 'stream closed early');
        settle(performance.now());
      }
    });
  });
}

function fail(rec: RequestRecord, kind: string, msg: string): void {
  if (rec.errorKind) return; // keep the first cause
  rec.ok = false;
  rec.errorKind = kind;
  rec.error = msg;
}

function classifyThrown(err: unknown): string {
  const e = err as { name?: string; code?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || e?.code === 'UND_ERR_ABORTED') return 'timeout';
  return 'network';
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return [e?.code, e?.message].filter(Boolean).join(': ') || String(err);
}

function errorMessage(text: string): string | null {
  try {
    const obj = JSON.parse(text);
    const m = obj?.error?.message ?? obj?.message ?? obj?.detail;
    return typeof m === 'string' ? m.slice(0, 300) : null;
  } catch {
    return text ? text.slice(0, 300) : null;
  }
}

/** Microsecond rounding keeps run.json small without losing anything a person could see. */
export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
