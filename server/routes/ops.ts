// Operator endpoints: GET /health (liveness: 200 while the process and engine are alive, loading
// included; 503 once the engine has died, so an orchestrator restarts the pod), GET /ready (model
// loaded, engine alive and not draining: route traffic here), GET /metrics (Prometheus).
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';

const statusSchema = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string' },
    reason: { type: 'string' },
    ready: { type: 'boolean' },
    loading: {
      type: 'object',
      nullable: true,
      properties: { done: { type: 'number' }, total: { type: 'number' }, what: { type: 'string' } },
    },
  },
};

export async function opsRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { state, metrics } = opts.ctx;
  app.get('/health', { schema: { summary: 'Liveness', response: { 200: statusSchema, 503: statusSchema } } }, async (_req, reply) => {
    if (state.engineDead) return reply.code(503).send({ status: 'engine_dead', reason: state.engineFailure });
    return { status: 'ok' };
  });
  app.get('/ready', { schema: { summary: 'Readiness', response: { 200: statusSchema, 503: statusSchema } } }, async (_req, reply) => {
    const status = state.ready ? 'ready' : state.engineDead ? 'engine_dead' : state.draining ? 'draining' : 'loading';
    return reply.code(state.ready ? 200 : 503).send({ status, ready: state.ready, loading: state.engine ? null : state.loadProgress });
  });
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        produces: ['text/plain'],
        response: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_req, reply) => {
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body);
    },
  );
}
