// Server-Sent Events framing per serving.md: `data: {json}\n\n` frames, `data: [DONE]` last, and a
// `:` comment as keep-alive whenever nothing was written for a while (e.g. while the request waits in
// the engine queue), so proxies and clients do not time the stream out. Never an `event:` line: the
// openai SDK JSON-parses every event.
import { PassThrough } from 'node:stream';
import type { ErrorObject } from '../../protocol/types.ts';
import type { ChunkSink } from './stream.ts';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const;

export class SseSink<TChunk> implements ChunkSink<TChunk> {
  readonly stream = new PassThrough();
  closed = false;
  private lastWriteMs = performance.now();
  private readonly keepAlive: NodeJS.Timeout;

  constructor(keepaliveS: number) {
    const everyMs = keepaliveS * 1000;
    this.keepAlive = setInterval(
      () => {
        if (performance.now() - this.lastWriteMs >= everyMs * 0.9) this.write(': keep-alive\n\n');
      },
      Math.max(5, everyMs / 2),
    );
    this.keepAlive.unref();
  }

  /** The client went away: stop writing (the caller aborts the generation). */
  markClosed(): void {
    this.closed = true;
    clearInterval(this.keepAlive);
  }

  chunk(chunk: TChunk): void {
    this.write(`data: ${JSON.stringify(chunk)}\n\n`);
  }

  error(error: ErrorObject): void {
    this.write(`data: ${JSON.stringify({ error })}\n\n`);
  }

  done(): void {
    this.write('data: [DONE]\n\n');
    clearInterval(this.keepAlive);
    this.stream.end();
  }

  private write(text: string): void {
    if (this.closed || this.stream.writableEnded) return;
    this.lastWriteMs = performance.now();
    this.stream.write(text);
  }
}
