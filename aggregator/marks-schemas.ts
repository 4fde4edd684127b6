/** JSON schemas of the feedback routes (marks-routes.ts): parameters, queries and responses. Bodies are zod-checked there. */

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const nullable = <T extends { type: string }>(s: T) => ({ ...s, type: [s.type, 'null'] }) as const;
const idParam = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } as const;
/** Incident ids are "kind:site/hub:class:ms" and the like: printable, bounded. */
const incidentId = { type: 'string', minLength: 1, maxLength: 512, pattern: '^[\\x20-\\x7E]+$' } as const;

export const alertParams = {
  type: 'object',
  properties: { site: idParam, hub: idParam, seq: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
  required: ['site', 'hub', 'seq'],
} as const;

export const incidentParams = { type: 'object', properties: { id: incidentId }, required: ['id'] } as const;
export const markParams = {
  type: 'object', properties: { id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } }, required: ['id'],
} as const;

export const mark = {
  type: 'object',
  properties: {
    id: int, site: str, hub: str, seq: int, verdict: { type: 'string', enum: ['false-positive', 'confirmed'] }, class: str,
    by: str, at: int, incident: nullable(str), undoneAt: nullable(int), undoneBy: nullable(str),
  },
} as const;

export const marksQuery = {
  type: 'object',
  properties: {
    token: str, site: idParam, hub: idParam, incident: incidentId,
    since: { type: 'string', maxLength: 40, description: 'marks made at or after: ms since the epoch or ISO 8601' },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
  additionalProperties: false,
} as const;
export interface MarksQuery {
  site?: string;
  hub?: string;
  incident?: string;
  since?: string;
  limit?: number;
}

export const marksBody = { type: 'object', properties: { marks: { type: 'array', items: mark } } } as const;

export const incidentMarkBody = {
  type: 'object',
  properties: { incident: str, marked: int, verdict: str, class: nullable(str), by: str, at: int },
} as const;
export const incidentUndoBody = { type: 'object', properties: { incident: str, undone: int } } as const;

export const whoamiBody = {
  type: 'object', properties: { name: str, permission: { type: 'string', enum: ['read', 'write'] } },
} as const;

export const feedbackQuery = {
  type: 'object',
  properties: { token: str, hours: { type: 'integer', minimum: 1, maximum: 24 * 90, default: 24 } },
  additionalProperties: false,
} as const;

const counts = {
  alerts: { ...int, description: 'alert messages in the window (stored and rolled up); a burst summary is one' },
  alertsLastHour: int,
  alertsPerHour: num,
  stored: { ...int, description: 'of those, still stored as rows: the ones that can be marked' },
  falsePositive: int,
  confirmed: int,
  unmarked: int,
  falsePositiveShare: { ...nullable(num), description: 'falsePositive / stored; null when nothing is stored' },
  confirmedShare: nullable(num),
  unmarkedShare: nullable(num),
} as const;

export const feedbackBody = {
  type: 'object',
  properties: {
    at: int,
    hours: int,
    labels: { type: 'array', items: str },
    hubs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          site: str, hub: str, state: str, bundle: nullable(str), lastSeen: nullable(int), ...counts,
        },
      },
    },
    fleet: { type: 'object', properties: counts },
  },
} as const;
