// GET /: a one-file demo page that chats with the model over the WebSocket (server/public/index.html).
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { sourceUrl } from '../../kernels/assets.ts';
import type { AppContext } from '../context.ts';

const page = readFileSync(sourceUrl('../public/index.html', import.meta.url), 'utf8');

export async function pageRoutes(app: FastifyInstance, _opts: { ctx: AppContext }): Promise<void> {
  app.get('/', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page),
  );
}
