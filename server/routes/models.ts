// GET /v1/models and GET /v1/models/:model: the one model served, flagged when it is the demo.
import type { FastifyInstance } from 'fastify';
import type { ModelCard } from '../../protocol/types.ts';
import { modelCardSchema, modelListSchema } from '../../protocol/schemas.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { errorResponses } from './responses.ts';

const startedAt = Math.floor(Date.now() / 1000);

export async function modelRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { state } = opts.ctx;
  const card = (): ModelCard => {
    const engine = state.requireEngine();
    return {
      id: state.servedModelName,
      object: 'model',
      created: startedAt,
      owned_by: engine.info.demo ? 'blockserve-demo' : 'blockserve',
      root: engine.info.modelName,
      max_model_len: engine.info.contextLength,
      demo: engine.info.demo,
    };
  };
  app.get(
    '/v1/models',
    { schema: { summary: 'Models served', response: { 200: modelListSchema, ...errorResponses(false) }, security: [{ bearer: [] }] } },
    async () => ({
      object: 'list',
      data: [card()],
    }),
  );
  app.get<{ Params: { model: string } }>(
    '/v1/models/:model',
    {
      schema: {
        summary: 'One model',
        params: { type: 'object', required: ['model'], properties: { model: { type: 'string' } } },
        response: { 200: modelCardSchema, ...errorResponses(false) },
        security: [{ bearer: [] }],
      },
    },
    async (request) => {
      const c = card();
      if (request.params.model !== c.id)
        throw new ApiError('model_not_found', `The model '${request.params.model}' does not exist.`, 'model');
      return c;
    },
  );
}
