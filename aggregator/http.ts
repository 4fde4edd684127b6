/**
 * The operators' HTTP interface (fastify): JSON API with declared schemas, the SSE live stream and the dashboard.
 * Access: with a token, every route needs it, as `Authorization: Bearer T`, `?token=T` (for a browser's first
 * visit and EventSource) or the HttpOnly SameSite=Strict cookie that `GET /?token=T` sets for the page's own
 * requests. Without a token the server is open: only for a local demo (the CLI asks for --no-auth and warns).
 * Identities: `token` is the identity "operator"; `tokens` adds named ones (auth.ts), each read-only or allowed to
 * write (mark alerts). The name is the `by` of the marks a token makes.
 * Live streams are capped (`maxStreams`): each holds a socket and a listener set, so past the cap a client gets
 * 503 with Retry-After instead of the server growing without bound.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { IdsError, isIdsError } from '../shared/errors.ts';
import type { Store, AlertRow } from './store/store.ts';
import { TokenTable, identities, setIdentity, type TokenIdentity } from './auth.ts';
import { markRoutes } from './marks-routes.ts';
import { alertKey } from './store/marks.ts';
import type { LiveBus, TotalsEvent } from './live.ts';
import * as S from './schemas.ts';
import { rolloutRoutes } from './rollout/routes.ts';
import type { RolloutStore } from './rollout/store.ts';
import { timeParam } from './time-param.ts';

export interface HttpDeps {
  store: Store;
  live: LiveBus;
  token?: string;
  /** Named tokens (auth.ts); with `token`, the identities allowed in. None at all = open (local demo). */
  tokens?: readonly TokenIdentity[];
  /** The clock of marks (default Date.now). */
  now?: () => number;
  /** The correlator's windows, for mapping an incident to its alerts (store/marks.ts). */
  incidentLookbackMs?: { burst: number; outbreak: number };
  /** The summary's in-memory parts (this instance's ingest counters, open incidents). */
  summaryExtras: () => Omit<S.SummaryBody, 'alerts' | 'verdicts' | 'classes' | 'rawAlerts' | 'deadLetters' | 'hubs'>;
  openIncidents: () => unknown[];
  lastTotals: () => TotalsEvent | undefined;
  /** Concurrent SSE clients served (default MAX_STREAMS); more get 503. */
  maxStreams?: number;
  /** The rollouts table (GET /api/rollouts); absent: an empty list. */
  rollouts?: RolloutStore;
}

/** A dashboard is one stream per open tab: a few dozen operators with a few tabs each fit well under this. */
export const MAX_STREAMS = 64;

const PUBLIC = fileURLToPath(new URL('./public/', import.meta.url));
const require = createRequire(import.meta.url);
const COOKIE = 'iot_ids_token';

interface Asset {
  type: string;
  body: Buffer;
}

function loadAssets(): Record<string, Asset> {
  const a = (file: string, type: string): Asset => ({ type, body: readFileSync(file) });
  return {
    '/': a(join(PUBLIC, 'index.html'), 'text/html; charset=utf-8'),
    '/app.js': a(join(PUBLIC, 'app.js'), 'text/javascript; charset=utf-8'),
    '/rollouts.js': a(join(PUBLIC, 'rollouts.js'), 'text/javascript; charset=utf-8'),
    '/feedback.js': a(join(PUBLIC, 'feedback.js'), 'text/javascript; charset=utf-8'),
    '/style.css': a(join(PUBLIC, 'style.css'), 'text/css; charset=utf-8'),
    '/vendor/uplot.js': a(require.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8'),
    '/vendor/uplot.css': a(require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'),
  };
}

function cookieToken(req: FastifyRequest): string | undefined {
  const h = req.headers.cookie;
  if (!h) return undefined;
  for (const part of h.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) {
      try {
        return decodeURIComponent(v.join('='));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function presented(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  // RFC 9110 §11.1: the auth scheme is case-insensitive ("bearer", "BEARER" are the same scheme).
  const m = h === undefined ? null : /^bearer +(.*)$/i.exec(h);
  if (m) return m[1];
  const q = (req.query as Record<string, unknown> | undefined)?.token;
  if (typeof q === 'string') return q;
  return cookieToken(req);
}

const alertOut = (r: AlertRow) => {
  let evidence: unknown = null;
  if (r.evidence) {
    try {
      evidence = JSON.parse(r.evidence);
    } catch {
      evidence = null;
    }
  }
  return { ...r, evidence };
};

export async function buildHttp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const assets = loadAssets();
  const streams = new Set<FastifyReply>();
  const { store, live } = deps;
  const table = new TokenTable(identities(deps.token, deps.tokens));

  app.addHook('onRequest', async (req, reply) => {
    if (table.size === 0) return;
    const t = presented(req);
    const id = table.identify(t);
    if (id) {
      setIdentity(req, id);
      if (req.url === '/' || req.url.startsWith('/?')) {
        reply.header('set-cookie', `${COOKIE}=${encodeURIComponent(t!)}; HttpOnly; SameSite=Strict; Path=/`);
      }
      return;
    }
    reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'UNAUTHORIZED', message: 'a valid token is required' });
    return reply;
  });

  app.setErrorHandler((err, _req, reply) => {
    if (isIdsError(err, 'BAD_OPTION')) return reply.code(400).send({ error: err.code, message: err.message });
    const e = err as { statusCode?: number; validation?: unknown; message: string; code?: string };
    if (e.validation) return reply.code(400).send({ error: 'BAD_OPTION', message: e.message });
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    return reply.code(status).send({ error: isIdsError(err) ? err.code : status === 500 ? 'INTERNAL' : e.code ?? 'BAD_REQUEST', message: e.message });
  });

  app.addHook('preClose', async () => {
    for (const r of streams) r.raw.end();
    streams.clear();
  });

  for (const [path, asset] of Object.entries(assets)) {
    app.get(path, async (_req, reply) => {
      reply.header('cache-control', 'no-cache').type(asset.type).send(asset.body);
    });
  }

  app.get('/api/summary', { schema: { querystring: S.tokenQuery, response: { 200: S.summary } } }, async () => {
    // Counts only: the hub list (every hub's latest stats, parsed) is /api/hubs's.
    return { ...(await store.summary()), ...deps.summaryExtras() };
  });

  app.get('/api/hubs', { schema: { querystring: S.tokenQuery, response: { 200: S.hubsBody } } }, async () => ({ hubs: await store.hubs() }));

  app.get<{ Querystring: S.AlertsQuery }>('/api/alerts', { schema: { querystring: S.alertsQuery, response: { 200: S.alertsBody } } },
    async (req) => {
      const q = req.query;
      const aq = { site: q.site, hub: q.hub, class: q.class, since: timeParam('since', q.since), until: timeParam('until', q.until), limit: q.limit };
      const rows = q.marked ? await store.marks.alertsByMark(aq, q.marked) : await store.queryAlerts(aq);
      // Each alert with its effective mark (null: unmarked), so a list of alerts is also the feedback to give.
      const marks = await store.marks.effective(rows);
      return { alerts: rows.map((r) => ({ ...alertOut(r), mark: marks.get(alertKey(r.site, r.hub, r.seq)) ?? null })) };
    });

  app.get<{ Querystring: S.HourlyQuery }>('/api/hourly', { schema: { querystring: S.hourlyQuery, response: { 200: S.hourlyBody } } },
    async (req) => {
      const q = req.query;
      return { hours: await store.hourly({ site: q.site, hub: q.hub, class: q.class, since: timeParam('since', q.since), until: timeParam('until', q.until) }) };
    });

  app.get<{ Querystring: { state?: 'open' | 'closed' } }>('/api/incidents',
    { schema: { querystring: S.incidentsQuery, response: { 200: S.incidentsBody } } },
    async (req) => ({ incidents: await store.incidents(req.query.state) }));

  app.get<{ Querystring: { limit?: number } }>('/api/dead-letters',
    { schema: { querystring: S.deadLettersQuery, response: { 200: S.deadLettersBody } } },
    async (req) => ({
      deadLetters: (await store.deadLetters(req.query.limit)).map((d) => {
        const p = Buffer.from(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength);
        return { id: d.id, topic: d.topic, at: d.at, error: d.error, bytes: p.length, payload: p.toString('utf8'), payloadBase64: p.toString('base64') };
      }),
    }));

  rolloutRoutes(app, deps.rollouts);
  markRoutes(app, { store, now: deps.now ?? Date.now, incidentLookbackMs: deps.incidentLookbackMs });

  const maxStreams = deps.maxStreams ?? MAX_STREAMS;
  app.get('/api/events', { schema: { querystring: S.tokenQuery } }, async (_req, reply) => {
    if (streams.size >= maxStreams) {
      return reply.code(503).header('retry-after', '30')
        .send({ error: 'BUSY', message: `too many live streams (${maxStreams}); retry later` });
    }
    reply.hijack();
    // Counted from here, before the first await, so concurrent requests cannot all slip under the cap.
    streams.add(reply);
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const on = {
      rate: (p: unknown) => send('rate', p),
      incident: (i: unknown) => send('incident', i),
      hub: (h: unknown) => send('hub', h),
      totals: (t: unknown) => send('totals', t),
    };
    let ping: NodeJS.Timeout | undefined;
    let closed = false;
    // The response's close, not the request's: a request without a body may report 'close' as soon as it is read.
    res.on('close', () => {
      closed = true;
      clearInterval(ping);
      for (const [k, f] of Object.entries(on)) live.off(k as 'rate', f);
      streams.delete(reply);
    });
    res.write('retry: 2000\n\n');
    const hubs = await store.hubs();
    if (closed) return;
    send('hello', { rates: live.recent(), totals: deps.lastTotals() ?? null, incidents: deps.openIncidents(), hubs });
    for (const [k, f] of Object.entries(on)) live.on(k as 'rate', f);
    ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  });

  return app;
}
