// One streaming request over undici, timed chunk by chunk. Timestamps are taken in undici's
// dispatch callbacks (not a stream that may be read late) so buffering inside the client does not
// leak into TTFT or inter-token gaps.
import { performance } from 'node:perf_hooks';
import { Agent, type Dispatcher } from 'undici';
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
  private readonly origin: string;
  private readonly path: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly opts: ClientOptions) {
    // No connection cap: an open-loop generator must never queue requests behind busy sockets.
    this.agent = new Agent({ connections: null, pipelining: 1, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000 });
    const base = new URL(opts.baseUrl);
    this.origin = base.origin;
    this.path = base.pathname.replace(/\/+$/, '') + (opts.endpoint === 'chat' ? '/v1/chat/completions' : '/v1/completions');
    this.headers = { 'content-type': 'application/json', accept: 'text/event-stream' };
    if (opts.apiKey) this.headers.authorization = `Bearer ${opts.apiKey}`;
  }

  body(item: WorkItem): string {
    const o = this.opts;
    const req: Record<string, unknown> = {
      model: o.model,
      max_tokens: item.maxTokens,
      stream: true,
      stream_options: { include_usage: true },
    };
    if (o.endpoint === 'chat') req.messages = item.messages ?? [{ role: 'user', content: item.prompt ?? '' }];
    else req.prompt = item.prompt ?? '';
    if (o.ignoreEos) req.ignore_eos = true;
    if (o.temperature !== undefined) req.temperature = o.temperature;
    return JSON.stringify(req);
  }

  /** Sends one request; never throws: every failure becomes a record with ok = false. */
  send(index: number, item: WorkItem, phaseStart: number, scheduledAtMs: number | null): Promise<RequestRecord> {
    const payload = this.body(item);
    const t0 = performance.now();
    const rec: RequestRecord = {
      index,
      scheduledAtMs,
      sentAtMs: round(t0 - phaseStart),
      endAtMs: 0,
      ttftMs: null,
      itlMs: [],
      e2eMs: 0,
      promptTokens: null,
      outputTokens: null,
      tokensFromUsage: false,
      contentChunks: 0,
      finishReason: null,
      status: null,
      ok: false,
      errorKind: null,
      error: null,
      maxTokens: item.maxTokens,
      responseId: null,
    };
    return new Promise((resolve) => {
      const stream = new StreamRecorder(rec, t0, (tEnd) => {
        clearTimeout(timer);
        rec.e2eMs = round(tEnd - t0);
        rec.endAtMs = round(tEnd - phaseStart);
        resolve(rec);
      });
      const timer = setTimeout(() => stream.abort('timeout', `no complete answer within ${this.opts.timeoutMs} ms`), this.opts.timeoutMs);
      // undici's dispatch handler API: callbacks straight from the HTTP parser, so each chunk is
      // timed when it is parsed, with no stream buffering in between.
      try {
        this.agent.dispatch({ origin: this.origin, path: this.path, method: 'POST', headers: this.headers, body: payload }, stream);
      } catch (err) {
        stream.abort('network', describe(err)); // e.g. the agent was already closed
      }
    });
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** The fields the recorder reads of a stream chunk; those it type-checks before use are unknown. */
interface StreamChunk {
  id?: unknown;
  error?: { message?: unknown };
  choices?: StreamChoice[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
}

interface StreamChoice {
  text?: unknown;
  delta?: { content?: unknown; reasoning_content?: unknown; reasoning?: unknown };
  finish_reason?: string | null;
}

/** Turns the dispatch callbacks of one response into a filled RequestRecord. */
class StreamRecorder implements Dispatcher.DispatchHandler {
  private readonly parser = new SseParser();
  private controller: Dispatcher.DispatchController | null = null;
  private lastContent = 0;
  private doneAt = 0;
  private settled = false;
  private errorBody: Buffer[] | null = null;

  constructor(
    private readonly rec: RequestRecord,
    private readonly t0: number,
    private readonly onEnd: (tEnd: number) => void,
  ) {}

  abort(kind: string, msg: string): void {
    if (this.settled) return;
    this.stop(kind, msg, performance.now());
  }

  private settle(t: number): void {
    if (this.settled) return;
    this.settled = true;
    this.onEnd(t);
  }

  private stop(kind: string, msg: string, t: number): void {
    fail(this.rec, kind, msg);
    this.settle(t);
    try {
      this.controller?.abort(new Error(msg));
    } catch {
      /* already finished */
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.settled) controller.abort(new Error('aborted before start'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number): void {
    this.rec.status = statusCode;
    if (statusCode !== 200) this.errorBody = [];
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    const now = performance.now();
    if (this.settled) return;
    if (this.errorBody) {
      if (this.errorBody.length < 64) this.errorBody.push(chunk);
      return;
    }
    const rec = this.rec;
    for (const data of this.parser.push(chunk)) {
      if (this.doneAt) {
        this.stop('bad-frame', 'data after [DONE]', now);
        return;
      }
      if (data === '[DONE]') {
        this.doneAt = now;
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch {
        this.stop('bad-json', `unparseable chunk: ${data.slice(0, 80)}`, now);
        return;
      }
      if (parsed === null || typeof parsed !== 'object') {
        this.stop('bad-frame', `chunk is not an object: ${data.slice(0, 80)}`, now);
        return;
      }
      const obj = parsed as StreamChunk;
      if (obj.error) {
        this.stop('stream-error', String(obj.error.message ?? JSON.stringify(obj.error)).slice(0, 200), now);
        return;
      }
      if (rec.responseId === null && typeof obj.id === 'string') rec.responseId = obj.id;
      const choice = Array.isArray(obj.choices) ? obj.choices[0] : undefined;
      if (choice) {
        const text = choice.text ?? choice.delta?.content ?? choice.delta?.reasoning_content ?? choice.delta?.reasoning;
        if (typeof text === 'string' && text.length > 0) {
          if (rec.contentChunks === 0) rec.ttftMs = round(now - this.t0);
          else rec.itlMs.push(round(now - this.lastContent));
          this.lastContent = now;
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
  }

  onResponseEnd(): void {
    const now = performance.now();
    if (this.settled) return;
    const rec = this.rec;
    if (this.errorBody) {
      const text = Buffer.concat(this.errorBody).toString('utf8');
      fail(rec, String(rec.status), errorMessage(text) ?? `HTTP ${rec.status}`);
    } else if (!this.doneAt) {
      fail(rec, 'no-done', 'stream ended without data: [DONE]');
    } else {
      rec.ok = true;
      if (!rec.tokensFromUsage) rec.outputTokens = rec.contentChunks;
    }
    this.settle(this.doneAt || now);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.settled) return;
    const rec = this.rec;
    // An error status whose body was cut is still that status.
    if (this.errorBody) fail(rec, String(rec.status), `HTTP ${rec.status}; body cut: ${describe(err)}`);
    else fail(rec, 'network', `${rec.status === null ? '' : 'mid-stream: '}${describe(err)}`);
    this.settle(performance.now());
  }
}

function fail(rec: RequestRecord, kind: string, msg: string): void {
  if (rec.errorKind) return; // keep the first cause
  rec.ok = false;
  rec.errorKind = kind;
  rec.error = msg;
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
