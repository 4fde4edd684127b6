/**
 * The operators' feedback routes: mark an alert or a whole incident as a false positive or confirmed (with an
 * optional class correction), undo, list the history, and the per-hub feedback view (alerts/hour, shares marked).
 * Bodies are zod-checked and small (MARK_BODY_LIMIT); every refusal is a 4xx with a code and a message that
 * names the field. Writes need a token with write permission; the token's name is the mark's `by`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { identityOf } from './auth.ts';
import { timeParam } from './time-param.ts';
import type { HubRow, Store } from './store/store.ts';
import { HOUR_MS } from './store/store.ts';
import {
  INCIDENT_LOOKBACK_MS, MAX_INCIDENT_MARKS, VERDICTS, incidentScope, knownLabels, markLabel, type HubMarkCounts, type MarkInput,
} from './store/marks.ts';
import * as S from './schemas.ts';
import * as M from './marks-schemas.ts';

export interface MarkRouteDeps {
  store: Store;
  now: () => number;
  /** The correlator's windows (how far before an incident opened its alerts start); default the correlator's. */
  incidentLookbackMs?: { burst: number; outbreak: number };
}

/**
 * GET /api/feedback counts every stored alert of the window: 0.15-0.35 s for 200,000 alerts (PostgreSQL, SQLite;
 * bench/feedback.bench.ts), and an open feedback view asks every 5 s. So one computation per window
 * serves every request for FEEDBACK_CACHE_MS (concurrent requests share it); a mark or an undo made here starts
 * afresh, so an operator sees their click at once.
 */
export const FEEDBACK_CACHE_MS = 5000;

/** A mark body is two short fields: anything past this is not a mark. */
export const MARK_BODY_LIMIT = 1024;

/** The codes of this module's refusals (besides fastify's own 400s for parameters, and 401 from the token check). */
export const MARK_ERRORS = {
  BAD_REQUEST: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
} as const;

const MarkBody = z.strictObject({
  verdict: z.enum(VERDICTS, { error: `must be one of ${VERDICTS.join(', ')}` }),
  class: z.string().min(1).max(128).optional(),
});

function fail(reply: FastifyReply, code: keyof typeof MARK_ERRORS, message: string) {
  return reply.code(MARK_ERRORS[code]).send({ error: code, message });
}

function parseBody(body: unknown): { verdict: (typeof VERDICTS)[number]; class?: string } | { error: string } {
  const r = MarkBody.safeParse(body ?? null);
  if (r.success) return r.data;
  const i = r.error.issues[0];
  return { error: `body${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}` };
}

const share = (n: number, of: number): number | null => (of > 0 ? n / of : null);

export function markRoutes(app: FastifyInstance, deps: MarkRouteDeps): void {
  const { store, now } = deps;
  const lookback = deps.incidentLookbackMs ?? INCIDENT_LOOKBACK_MS;
  const cache = new Map<number, { until: number; body: Promise<unknown> }>();
  const changed = () => cache.clear();

  /** Identity with write permission, or the reply already sent. */
  const writer = (req: FastifyRequest, reply: FastifyReply) => {
    const id = identityOf(req);
    if (id.permission !== 'write') {
      fail(reply, 'FORBIDDEN', `token "${id.name}" may read but not mark`);
      return undefined;
    }
    return id;
  };

  /** The body as a mark, its label checked against the known ones, or the reply already sent. */
  const markInput = async (req: FastifyRequest, by: string, reply: FastifyReply): Promise<MarkInput | undefined> => {
    // JSON only: fastify would also hand over a text/plain body, the kind a cross-site form can send.
    if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      return void fail(reply, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json: {"verdict": "false-positive" | "confirmed", "class"?: label}');
    }
    const b = parseBody(req.body);
    if ('error' in b) return void fail(reply, 'BAD_REQUEST', b.error);
    const l = markLabel(b.verdict, b.class, knownLabels(await store.marks.reportedClasses()));
    if ('error' in l) return void fail(reply, 'BAD_REQUEST', l.error);
    return { verdict: b.verdict, class: l.label, by, at: now() };
  };

  app.get('/api/whoami', { schema: { querystring: S.tokenQuery, response: { 200: M.whoamiBody } } }, async (req) => identityOf(req));

  app.post<{ Params: { site: string; hub: string; seq: number } }>('/api/alerts/:site/:hub/:seq/mark',
    { bodyLimit: MARK_BODY_LIMIT, schema: { params: M.alertParams, querystring: S.tokenQuery, response: { 201: M.mark } } },
    async (req, reply) => {
      const id = writer(req, reply);
      if (!id) return reply;
      const m = await markInput(req, id.name, reply);
      if (!m) return reply;
      const { site, hub, seq } = req.params;
      const row = await store.marks.markAlert(site, hub, seq, m);
      changed();
      if (!row) return fail(reply, 'NOT_FOUND', `no stored alert ${site}/${hub}/${seq} (never received, or rolled up after the retention time)`);
      return reply.code(201).send(row);
    });

  app.post<{ Params: { id: string } }>('/api/incidents/:id/mark',
    { bodyLimit: MARK_BODY_LIMIT, schema: { params: M.incidentParams, querystring: S.tokenQuery, response: { 200: M.incidentMarkBody } } },
    async (req, reply) => {
      const id = writer(req, reply);
      if (!id) return reply;
      const m = await markInput(req, id.name, reply);
      if (!m) return reply;
      const inc = await store.marks.incident(req.params.id);
      if (!inc) return fail(reply, 'NOT_FOUND', `no incident "${req.params.id}"`);
      const scope = incidentScope(inc, m.at, lookback);
      if ('error' in scope) return fail(reply, 'CONFLICT', scope.error);
      const r = await store.marks.markIncident(scope, m, MAX_INCIDENT_MARKS);
      changed();
      if ('tooMany' in r) {
        return fail(reply, 'TOO_LARGE', `incident ${inc.id} stands for ${r.tooMany} stored alerts, more than ${MAX_INCIDENT_MARKS} in one mark: mark per hub or per alert`);
      }
      return { incident: inc.id, marked: r.marked, verdict: m.verdict, class: m.class ?? null, by: m.by, at: m.at };
    });

  app.delete<{ Params: { id: string } }>('/api/incidents/:id/mark',
    { schema: { params: M.incidentParams, querystring: S.tokenQuery, response: { 200: M.incidentUndoBody } } },
    async (req, reply) => {
      const id = writer(req, reply);
      if (!id) return reply;
      const n = await store.marks.undoIncident(req.params.id, id.name, now());
      changed();
      return { incident: req.params.id, undone: n };
    });

  app.delete<{ Params: { id: number } }>('/api/marks/:id',
    { schema: { params: M.markParams, querystring: S.tokenQuery, response: { 200: M.mark } } },
    async (req, reply) => {
      const id = writer(req, reply);
      if (!id) return reply;
      const r = await store.marks.undo(req.params.id, id.name, now());
      changed();
      if (!r) return fail(reply, 'NOT_FOUND', `no mark ${req.params.id}`);
      if ('already' in r) {
        return fail(reply, 'CONFLICT', `mark ${req.params.id} was already undone by ${r.already.undoneBy} at ${new Date(r.already.undoneAt ?? 0).toISOString()}`);
      }
      return r.undone;
    });

  app.get<{ Querystring: M.MarksQuery }>('/api/marks', { schema: { querystring: M.marksQuery, response: { 200: M.marksBody } } },
    async (req) => {
      const q = req.query;
      return { marks: await store.marks.list({ site: q.site, hub: q.hub, incident: q.incident, since: timeParam('since', q.since), limit: q.limit }) };
    });

  app.get<{ Querystring: { hours?: number } }>('/api/feedback', { schema: { querystring: M.feedbackQuery, response: { 200: M.feedbackBody } } },
    async (req) => {
      const hours = req.query.hours ?? 24;
      const hit = cache.get(hours);
      if (hit && hit.until > performance.now()) return hit.body;
      const body = (async () => {
        const at = now();
        const [counts, hubs, reported] = await Promise.all([
          store.marks.counts(at - hours * HOUR_MS, at - HOUR_MS), store.hubs(), store.marks.reportedClasses(),
        ]);
        return { at, hours, labels: knownLabels(reported), ...feedbackRows(counts, hubs, hours) };
      })();
      if (cache.size >= 16) cache.clear();
      cache.set(hours, { until: performance.now() + FEEDBACK_CACHE_MS, body });
      // A failed computation is not kept.
      body.catch(() => cache.get(hours)?.body === body && cache.delete(hours));
      return body;
    });
}

/** Every hub known (hubs table) or with alerts in the window, with its counts and shares; and the fleet's. */
function feedbackRows(counts: HubMarkCounts[], hubs: HubRow[], hours: number) {
  const byKey = new Map(counts.map((c) => [`${c.site}/${c.hub}`, c]));
  const keys = new Set([...hubs.map((h) => `${h.site}/${h.hub}`), ...byKey.keys()]);
  const hubOf = new Map(hubs.map((h) => [`${h.site}/${h.hub}`, h]));
  const fleet = { alerts: 0, alertsLastHour: 0, stored: 0, falsePositive: 0, confirmed: 0 };
  const rows = [...keys].sort().map((k) => {
    const c = byKey.get(k);
    const h = hubOf.get(k);
    const [site, ...rest] = k.split('/');
    const n = c ?? { alerts: 0, alertsLastHour: 0, stored: 0, falsePositive: 0, confirmed: 0 };
    for (const f of ['alerts', 'alertsLastHour', 'stored', 'falsePositive', 'confirmed'] as const) fleet[f] += n[f];
    return {
      site: h?.site ?? site, hub: h?.hub ?? rest.join('/'), state: h?.state ?? 'unknown', bundle: h?.bundle ?? null,
      lastSeen: h?.lastSeen ?? null, ...rates(n, hours),
    };
  });
  return { hubs: rows, fleet: rates(fleet, hours) };
}

function rates(n: { alerts: number; alertsLastHour: number; stored: number; falsePositive: number; confirmed: number }, hours: number) {
  const unmarked = Math.max(0, n.stored - n.falsePositive - n.confirmed);
  return {
    alerts: n.alerts, alertsLastHour: n.alertsLastHour, alertsPerHour: n.alerts / hours, stored: n.stored,
    falsePositive: n.falsePositive, confirmed: n.confirmed, unmarked,
    falsePositiveShare: share(n.falsePositive, n.stored), confirmedShare: share(n.confirmed, n.stored), unmarkedShare: share(unmarked, n.stored),
  };
}
