/**
 * GET /api/rollouts and GET /api/rollouts/{id}: the rollouts table as the API shows it (registered by http.ts;
 * the token check there covers these routes too). Without a rollout store (an aggregator started on an opened
 * Store object) the list is empty and every id is unknown.
 */
import type { FastifyInstance } from 'fastify';
import { ROLLOUT_STATES, type RolloutRow, type RolloutStore } from './store.ts';

const int = { type: 'integer' } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
const release = { type: 'object', properties: { version: { type: 'string' }, release: int } } as const;

export const rolloutSchema = {
  type: 'object',
  properties: {
    id: int,
    bundle: release,
    previous: { type: ['object', 'null'], properties: release.properties },
    canaries: { type: 'array', items: { type: 'object', properties: { site: { type: 'string' }, hub: { type: 'string' } } } },
    state: { type: 'string', enum: [...ROLLOUT_STATES] },
    startedAt: int,
    watchUntil: nullableInt,
    finishedAt: nullableInt,
    updatedAt: int,
    decision: { type: ['object', 'null'], additionalProperties: true },
  },
} as const;

const listQuery = {
  type: 'object',
  properties: { token: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
  additionalProperties: false,
} as const;

const idParams = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] } as const;

export const rolloutOut = (r: RolloutRow) => ({
  id: r.id,
  bundle: { version: r.bundle.version, release: r.bundle.release },
  previous: r.previous && { version: r.previous.version, release: r.previous.release },
  canaries: r.canaries,
  state: r.state,
  startedAt: r.startedAt,
  watchUntil: r.watchUntil,
  finishedAt: r.finishedAt,
  updatedAt: r.updatedAt,
  decision: r.decision,
});

export function rolloutRoutes(app: FastifyInstance, store: RolloutStore | undefined): void {
  app.get<{ Querystring: { limit?: number } }>('/api/rollouts', {
    schema: { querystring: listQuery, response: { 200: { type: 'object', properties: { rollouts: { type: 'array', items: rolloutSchema } } } } },
  }, async (req) => ({ rollouts: store ? (await store.list(req.query.limit)).map(rolloutOut) : [] }));

  app.get<{ Params: { id: number } }>('/api/rollouts/:id', {
    schema: { params: idParams, response: { 200: rolloutSchema } },
  }, async (req, reply) => {
    const r = store && (await store.get(req.params.id));
    if (!r) return reply.code(404).send({ error: 'NOT_FOUND', message: `no rollout ${req.params.id}` });
    return rolloutOut(r);
  });
}
