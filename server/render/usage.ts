import type { UsageWire } from '../../protocol/types.ts';
import type { Generation } from '../generation.ts';

export function usageOf(gen: Generation): UsageWire {
  const { promptTokens, completionTokens } = gen.usageTotals();
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** Renders one API request's engine events as wire chunks (streaming) or one response (not). */
export interface Renderer<TChunk, TResponse> {
  /** Chunks sent before any engine event (chat: the role chunk; completions with echo: the prompt). */
  opening(): TChunk[];
  /** Chunks for one engine event of one choice (often one, sometimes none or two). */
  onEvent(choice: number, event: import('../../engine/api.ts').EngineEvent): TChunk[];
  /** The extra last chunk of stream_options.include_usage: no choices, the usage. */
  usageChunk(): TChunk;
  /** The non-streaming response, once every choice has finished. */
  response(): TResponse;
}
