// Starts the real server (buildApp + listen on an ephemeral port) around a FakeEngine, for tests.
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../app.ts';
import { defaultConfig, type ServerConfig } from '../config.ts';
import type { ServerState } from '../state.ts';
import { FakeEngine, type FakeEngineOptions } from './fake-engine.ts';

export interface TestServer {
  app: FastifyInstance;
  state: ServerState;
  engine: FakeEngine;
  url: string;
  close(): Promise<void>;
}

export async function startTestServer(
  engineOptions: FakeEngineOptions = {},
  configOverrides: Parameters<typeof defaultConfig>[0] = {},
  opts: { listen?: boolean } = {},
): Promise<TestServer> {
  const config: ServerConfig = defaultConfig({ port: 0, ...configOverrides });
  const engine = new FakeEngine(engineOptions);
  const { app, state } = await buildApp(config);
  state.engine = engine;
  let url = '';
  if (opts.listen !== false) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');
    url = `http://127.0.0.1:${addr.port}`;
  } else {
    await app.ready();
  }
  return {
    app,
    state,
    engine,
    url,
    async close() {
      await app.close();
      await engine.close();
    },
  };
}
