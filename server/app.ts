// The Fastify application: plugins (CORS, swagger, websocket), auth, logging, the error table, and
// the route plugins. Built from a config and a ServerState whose engine may still be loading, so
// main.ts can listen (health, readiness) before the model is ready, and tests can inject() into it.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ServerConfig } from './config.ts';
import { ApiKeyCheck, WS_KEY_PROTOCOL_PREFIX } from './auth.ts';
import { createContext, type AppContext } from './context.ts';
import { errorHandler, notFoundHandler, sendError, toApiError } from './errors.ts';
import { ServerMetrics } from './metrics.ts';
import { ServerState } from './state.ts';
import { generationRoutes } from './routes/generate.ts';
import { modelRoutes } from './routes/models.ts';
import { opsRoutes } from './routes/ops.ts';
import { pageRoutes } from './routes/page.ts';
import { tokenizeRoutes } from './routes/tokenize.ts';
import { wsRoutes } from './routes/ws.ts';

export interface BuiltApp {
  app: FastifyInstance;
  state: ServerState;
  ctx: AppContext;
}

export interface BuildOptions {
  state?: ServerState;
  /** A pino logger (main.ts), or false for none (tests). */
  logger?: Logger | false;
}

export async function buildApp(config: ServerConfig, options: BuildOptions = {}): Promise<BuiltApp> {
  const state = options.state ?? new ServerState(config);
  const metrics = new ServerMetrics(state);
  const ctx = createContext(config, state, metrics);
  const fastifyOptions: FastifyServerOptions = {
    bodyLimit: Math.round(config.bodyLimitMb * 1024 * 1024),
    // close() ends every connection: keep-alive ones clients left open (some never send a request)
    // would otherwise hold shutdown for the keep-alive timeout. main.ts closes only after every
    // response has been written, so nothing in flight is cut.
    forceCloseConnections: true,
    logController: new LogController({ disableRequestLogging: true }), // one line per request: onResponse below
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomBytes(8).toString('hex');
    },
    ajv: {
      // Bodies are typed JSON: no coercion ("1" is not 1), nothing silently removed or defaulted.
      // allErrors lets errors.ts pick the most specific failure (bodies are size-limited).
      customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: true },
    },
  };
  const app = Fastify({
    ...fastifyOptions,
    ...(options.logger ? { loggerInstance: options.logger as unknown as FastifyBaseLogger } : { logger: false }),
  }) as unknown as FastifyInstance;

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);

  if (config.corsOrigins.length) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      methods: ['GET', 'POST', 'OPTIONS'],
      // allowedHeaders unset: the preflight's requested headers are reflected, which admits the SDK's
      // X-Stainless-* family (whose members change between SDK versions) as well as Authorization.
      exposedHeaders: ['retry-after', 'x-request-id'],
      maxAge: 600,
    });
  }

  // Before the auth hook: its onRequest hook marks upgrade requests so that a refused upgrade (401)
  // gets its socket closed.
  await app.register(websocket, {
    options: {
      maxPayload: Math.round(config.bodyLimitMb * 1024 * 1024),
      // A browser that offered subprotocols needs one chosen: prefer one that is not the key carrier.
      handleProtocols: (protocols: Set<string>) => {
        const list = [...protocols];
        return list.find((p) => !p.startsWith(WS_KEY_PROTOCOL_PREFIX)) ?? list[0] ?? false;
      },
    },
  });

  const keys = new ApiKeyCheck(config);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (!request.headers.upgrade) {
      state.responseOpened();
      reply.raw.once('close', () => state.responseClosed());
    }
    if (request.method === 'OPTIONS') return;
    const path = request.url.split('?')[0];
    if (!keys.protects(path)) return;
    try {
      keys.check(request);
    } catch (e) {
      return sendError(reply, toApiError(e));
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const gen = request.generation;
    const line = {
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
      ...(gen ? gen.summary() : {}),
    };
    if (reply.statusCode >= 500 && reply.statusCode !== 503) request.log.error(line, 'request');
    else request.log.info(line, 'request');
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'blockserve',
        description: 'OpenAI-compatible inference server for the Block Transformer and GPT-NeoX/Pythia.',
        version: '0.1.0',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });

  await app.register(generationRoutes, { ctx });
  await app.register(modelRoutes, { ctx });
  await app.register(tokenizeRoutes, { ctx });
  await app.register(opsRoutes, { ctx });
  await app.register(wsRoutes, { ctx });
  await app.register(pageRoutes, { ctx });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return { app, state, ctx };
}
