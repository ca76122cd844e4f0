// What every route plugin receives: the state, metrics and the pieces built from the config.
import type { FastifyRequest } from 'fastify';
import { readFileSync } from 'node:fs';
import type { ServerConfig } from './config.ts';
import { ChatTemplate } from './chat-template.ts';
import type { Generation } from './generation.ts';
import type { ServerMetrics } from './metrics.ts';
import type { PrepareContext } from './prepare.ts';
import type { ServerState } from './state.ts';

export interface AppContext {
  config: ServerConfig;
  state: ServerState;
  metrics: ServerMetrics;
  /** The model-dependent context for preparing a request; throws 503 while loading or draining. */
  prepareContext(): PrepareContext;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by generation routes so the request log line can carry tokens and timings. */
    generation?: Generation;
  }
}

export function createContext(config: ServerConfig, state: ServerState, metrics: ServerMetrics): AppContext {
  const templateSource = config.chatTemplateFile ? readFileSync(config.chatTemplateFile, 'utf8') : undefined;
  let template: ChatTemplate | null = null;
  return {
    config,
    state,
    metrics,
    prepareContext() {
      const engine = state.requireEngine();
      // Built on first use: the special-token strings come from the loaded engine's tokenizer.
      template ??= new ChatTemplate(templateSource, { bos_token: '', eos_token: engine.tokenizer.decode([engine.info.eosTokenId]) });
      return { engine, servedModelName: state.servedModelName, chatTemplate: template };
    },
  };
}

export type { FastifyRequest };
