// Drives one generation to a transport: opening chunks, a chunk per engine event, the usage chunk
// when asked, then done. An engine error is sent as an error message after which the other choices
// are aborted and the stream still ends with done (never a stream that just stops: serving.md).
import type { ErrorObject } from '../../protocol/types.ts';
import type { Generation } from '../generation.ts';
import type { Renderer } from './usage.ts';

export interface ChunkSink<TChunk> {
  chunk(chunk: TChunk): void;
  error(error: ErrorObject): void;
  done(): void;
  /** True once the client is gone: the generation is aborted and nothing more is written. */
  readonly closed: boolean;
}

export async function streamGeneration<TChunk>(
  gen: Generation,
  renderer: Renderer<TChunk, unknown>,
  sink: ChunkSink<TChunk>,
): Promise<void> {
  let failed = false;
  for (const c of renderer.opening()) sink.chunk(c);
  for await (const { choice, event } of gen.events()) {
    if (sink.closed) {
      gen.abort();
      continue; // keep draining so every engine stream reaches its end
    }
    if (event.type === 'error') {
      if (!failed) sink.error({ message: event.message, type: 'server_error', param: null, code: event.code });
      failed = true;
      gen.abort();
      continue;
    }
    if (failed) continue;
    for (const c of renderer.onEvent(choice, event)) sink.chunk(c);
  }
  if (sink.closed) return;
  if (!failed && gen.req.includeUsage) sink.chunk(renderer.usageChunk());
  sink.done();
}

/** Runs a generation to its end and returns the whole response, or throws on an engine error. */
export async function collectGeneration<TResponse>(
  gen: Generation,
  renderer: Renderer<unknown, TResponse>,
): Promise<TResponse | ErrorObject> {
  let error: ErrorObject | null = null;
  for await (const { choice, event } of gen.events()) {
    if (event.type === 'error') {
      error ??= { message: event.message, type: 'server_error', param: null, code: event.code };
      gen.abort();
      continue;
    }
    renderer.onEvent(choice, event);
  }
  return error ?? renderer.response();
}
