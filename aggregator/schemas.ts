/**
 * JSON schemas of the HTTP API (fastify validates queries and serialises responses with them). aggregator/README.md
 * documents the same shapes; test/aggregator/http.test.ts checks that every route listed there exists.
 */
import { mark } from './marks-schemas.ts';

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const idParam = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } as const;
const countMap = { type: 'object', additionalProperties: int } as const;

export const tokenQuery = { type: 'object', properties: { token: str } } as const;

export const alertsQuery = {
  type: 'object',
  properties: {
    token: str,
    site: idParam,
    hub: idParam,
    class: { type: 'string', maxLength: 256 },
    since: { type: 'string', maxLength: 40, description: 'ms since the epoch or ISO 8601; inclusive' },
    until: { type: 'string', maxLength: 40, description: 'ms since the epoch or ISO 8601; exclusive' },
    limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
    marked: { type: 'string', enum: ['marked', 'unmarked'], description: 'only alerts with, or without, an effective mark' },
  },
  additionalProperties: false,
} as const;
export interface AlertsQuery {
  marked?: 'marked' | 'unmarked';
  site?: string;
  hub?: string;
  class?: string;
  since?: string;
  until?: string;
  limit?: number;
}

export const hourlyQuery = {
  type: 'object',
  properties: { token: str, site: idParam, hub: idParam, class: alertsQuery.properties.class, since: alertsQuery.properties.since, until: alertsQuery.properties.until },
  additionalProperties: false,
} as const;
export type HourlyQuery = Omit<AlertsQuery, 'limit'>;

export const incidentsQuery = {
  type: 'object',
  properties: { token: str, state: { type: 'string', enum: ['open', 'closed'] } },
  additionalProperties: false,
} as const;

const alert = {
  type: 'object',
  properties: {
    site: str, hub: str, seq: int, ts: int, class: str, confidence: num, count: int, source: str, model: str,
    src: str, dst: str, sport: int, dport: int, proto: int,
    evidence: { type: ['object', 'null'], additionalProperties: true },
    receivedAt: int,
    mark: { ...mark, type: ['object', 'null'], description: "the alert's effective mark (marks-routes.ts); null when unmarked" },
  },
} as const;
export const alertsBody = { type: 'object', properties: { alerts: { type: 'array', items: alert } } } as const;

const hub = {
  type: 'object',
  properties: {
    site: str, hub: str, state: { type: 'string', enum: ['online', 'degraded', 'offline', 'unknown'] },
    bundle: { type: ['string', 'null'] }, lastSeen: int, lastStatsAt: { type: ['integer', 'null'] },
    stats: { type: ['object', 'null'], additionalProperties: true }, alerts: int, verdicts: int,
  },
} as const;
export const hubsBody = { type: 'object', properties: { hubs: { type: 'array', items: hub } } } as const;

const incident = {
  type: 'object',
  properties: {
    v: int, id: str, kind: { type: 'string', enum: ['outbreak', 'burst', 'hub-offline', 'hub-silent'] },
    state: { type: 'string', enum: ['open', 'updated', 'closed'] }, class: str,
    sites: { type: 'array', items: str }, hubs: { type: 'array', items: str }, alerts: int,
    openedAt: int, updatedAt: int, closedAt: int, summary: str,
  },
} as const;
export const incidentsBody = { type: 'object', properties: { incidents: { type: 'array', items: incident } } } as const;

export const hourlyBody = {
  type: 'object',
  properties: {
    hours: {
      type: 'array',
      items: { type: 'object', properties: { site: str, hub: str, class: str, hour: int, alerts: int, verdicts: int } },
    },
  },
} as const;

export const summary = {
  type: 'object',
  properties: {
    alerts: { ...int, description: 'alert messages stored (raw and rolled up)' },
    verdicts: { ...int, description: 'verdicts they stand for (sum of count)' },
    rawAlerts: int,
    deadLetters: { ...int, description: 'messages the store refused for good, kept in the dead-letter table' },
    classes: countMap,
    hubs: { type: 'object', properties: { total: int, online: int, offline: int, unknown: int } },
    incidents: { type: 'object', properties: { open: int } },
    invalid: { type: 'object', properties: { total: int, byReason: countMap } },
    ingest: { type: 'object', properties: { received: int, stored: int, duplicates: int, batches: int, storeErrors: int, deadLettered: int } },
    uptimeSec: num,
  },
} as const;

export interface SummaryBody {
  alerts: number;
  verdicts: number;
  rawAlerts: number;
  deadLetters: number;
  classes: Record<string, number>;
  hubs: { total: number; online: number; offline: number; unknown: number };
  incidents: { open: number };
  invalid: { total: number; byReason: Record<string, number> };
  ingest: { received: number; stored: number; duplicates: number; batches: number; storeErrors: number; deadLettered?: number };
  uptimeSec: number;
}

export const deadLettersQuery = {
  type: 'object',
  properties: { token: str, limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
  additionalProperties: false,
} as const;

export const deadLettersBody = {
  type: 'object',
  properties: {
    deadLetters: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: int, topic: str, at: int, error: str, bytes: int,
          payload: { ...str, description: 'the payload as UTF-8 text (invalid bytes replaced)' },
          payloadBase64: { ...str, description: 'the payload exactly as received' },
        },
      },
    },
  },
} as const;
