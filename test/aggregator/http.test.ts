/** The HTTP API: token check, declared schemas (validation and output), filters, SSE, and that the README lists every route. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildHttp } from '../../aggregator/http.ts';
import { LiveBus } from '../../aggregator/live.ts';
import { SqliteStore } from '../../aggregator/store/sqlite.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';
import { row, tempDir } from './fixtures.ts';

const T0 = Date.UTC(2026, 10, 30, 6);
const extras = () => ({
  incidents: { open: 0 },
  invalid: { total: 3, byReason: { 'not-json': 3 } },
  ingest: { received: 10, stored: 7, duplicates: 0, batches: 2, storeErrors: 0 },
  uptimeSec: 1,
});

describe('http', () => {
  const tmp = tempDir();
  const store = new SqliteStore(join(tmp.dir, 'a.db'));
  const live = new LiveBus();
  let app: FastifyInstance;
  const routes: string[] = [];
  before(async () => {
    await store.open();
    await store.writeBatch(
      [row('s1', 'h1', 1, T0), row('s1', 'h1', 2, T0 + 1000, 'DoS'), row('s1', 'h2', 1, T0 + 2000), row('s2', 'h3', 1, T0 + 3000, 'Scan', 4)],
      [{ site: 's1', hub: 'h1', seenAt: T0, state: 'online', bundle: 'b-7' }, { site: 's2', hub: 'h3', seenAt: T0, state: 'offline' }],
    );
    await store.upsertIncident({ v: 1, id: 'i1', kind: 'burst', state: 'open', class: 'DoS', sites: ['s1'], hubs: ['s1/h1'], alerts: 9, openedAt: T0, updatedAt: T0, summary: 'x' });
    app = await buildHttp({ store, live, token: 'sekret', summaryExtras: extras, openIncidents: () => [], lastTotals: () => undefined });
    await app.ready();
    for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
      const m = /(api\/[a-z-]+) \(GET/.exec(line);
      if (m) routes.push('/' + m[1]);
    }
  });
  after(async () => {
    await app.close();
    await store.close();
    tmp.cleanup();
  });
  const get = (url: string, headers: Record<string, string> = { authorization: 'Bearer sekret' }) => app.inject({ method: 'GET', url, headers });

  it('refuses every route without the right token, accepts Bearer, ?token= and the cookie set by the page', async () => {
    for (const u of ['/', '/app.js', '/vendor/uplot.js', '/api/summary', '/api/hubs', '/api/alerts', '/api/incidents', '/api/hourly', '/api/events']) {
      assert.equal((await get(u, {})).statusCode, 401, u);
      assert.equal((await get(u, { authorization: 'Bearer wrong' })).statusCode, 401, u);
    }
    assert.equal((await get('/api/summary')).statusCode, 200);
    assert.equal((await get('/api/summary?token=sekret', {})).statusCode, 200);
    const page = await get('/?token=sekret', {});
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /text\/html/);
    const cookie = String(page.headers['set-cookie']).split(';')[0];
    assert.match(String(page.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
    assert.equal((await get('/api/hubs', { cookie })).statusCode, 200);
    assert.equal((await get('/app.js', { cookie })).statusCode, 200);
  });

  it('the Bearer scheme is case-insensitive (RFC 9110): bearer, BEARER work; the token itself is not', async () => {
    for (const a of ['bearer sekret', 'BEARER sekret', 'bEaReR sekret']) {
      assert.equal((await get('/api/summary', { authorization: a })).statusCode, 200, a);
    }
    assert.equal((await get('/api/summary', { authorization: 'bearer SEKRET' })).statusCode, 401);
    assert.equal((await get('/api/summary', { authorization: 'Basic sekret' })).statusCode, 401);
  });

  it('summary: totals, classes, hubs online/offline, invalid counts', async () => {
    const s = (await get('/api/summary')).json();
    assert.equal(s.alerts, 4);
    assert.equal(s.verdicts, 7);
    assert.deepEqual(s.classes, { Mirai: 2, DoS: 1, Scan: 1 });
    assert.deepEqual(s.hubs, { total: 2, online: 1, offline: 1, unknown: 0 });
    assert.deepEqual(s.invalid, { total: 3, byReason: { 'not-json': 3 } });
    assert.equal(s.ingest.stored, 7);
  });

  it('hubs: status, bundle, last seen, alert counts', async () => {
    const { hubs } = (await get('/api/hubs')).json();
    const h1 = hubs.find((h: { hub: string }) => h.hub === 'h1');
    assert.deepEqual({ state: h1.state, bundle: h1.bundle, lastSeen: h1.lastSeen, alerts: h1.alerts }, { state: 'online', bundle: 'b-7', lastSeen: T0, alerts: 2 });
  });

  it('alerts: filters by site, hub, class and time (ms or ISO), limit; bad parameters are 400 naming them', async () => {
    const q = async (s: string) => (await get(`/api/alerts?${s}`)).json().alerts as { hub: string; seq: number; ts: number }[];
    assert.equal((await q('')).length, 4);
    assert.deepEqual((await q('site=s1&hub=h1')).map((a) => a.seq), [2, 1]);
    assert.deepEqual((await q('class=Scan')).map((a) => a.hub), ['h3']);
    assert.deepEqual((await q(`since=${T0 + 1000}&until=${T0 + 3000}`)).map((a) => a.ts), [T0 + 2000, T0 + 1000]);
    assert.equal((await q(`since=${new Date(T0 + 2500).toISOString()}`)).length, 1);
    assert.equal((await q('limit=1')).length, 1);
    for (const [bad, name] of [['limit=0', 'limit'], ['limit=x', 'limit'], ['since=yesterday', 'since'], ['hub=a/b', 'hub'], ['until=2026-13-45', 'until']]) {
      const r = await get(`/api/alerts?${bad}`);
      assert.equal(r.statusCode, 400, bad);
      assert.match(r.json().message, new RegExp(name), bad);
    }
  });

  it('incidents by state, hourly counts', async () => {
    assert.equal((await get('/api/incidents?state=open')).json().incidents.length, 1);
    assert.equal((await get('/api/incidents?state=closed')).json().incidents.length, 0);
    assert.equal((await get('/api/incidents?state=bogus')).statusCode, 400);
    const { hours } = (await get('/api/hourly?site=s1')).json();
    assert.equal(hours.reduce((n: number, h: { alerts: number }) => n + h.alerts, 0), 3);
  });

  it('SSE: hello first, then live events as they happen', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };
    const ac = new AbortController();
    const r = await fetch(`http://127.0.0.1:${port}/api/events?token=sekret`, { signal: ac.signal });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /text\/event-stream/);
    const reader = r.body!.getReader();
    let text = '';
    const until = async (re: RegExp) => {
      while (!re.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        text += Buffer.from(value).toString();
      }
    };
    await until(/event: hello\ndata: .*\n\n/);
    const hello = JSON.parse(/event: hello\ndata: (.*)\n/.exec(text)![1]);
    assert.equal(hello.hubs.length, 2);
    live.emit('incident', { v: 1, id: 'live-1', kind: 'outbreak', state: 'open', sites: [], hubs: [], alerts: 1, openedAt: 1, updatedAt: 1, summary: 's' });
    live.emit('rate', { t: 1000, classes: { Mirai: 5 } });
    await until(/event: rate\ndata: .*\n\n/);
    assert.match(text, /event: incident\ndata: \{"v":1,"id":"live-1"/);
    assert.match(text, /event: rate\ndata: \{"t":1000,"classes":\{"Mirai":5\}\}/);
    ac.abort();
  });

  it('aggregator/README.md documents every /api route', () => {
    const readme = readFileSync(join(PROJECT_ROOT, 'aggregator', 'README.md'), 'utf8');
    assert.ok(routes.length >= 6, `routes found: ${routes}`);
    for (const r of new Set(routes)) assert.ok(readme.includes('`GET ' + r + '`'), `README lacks GET ${r}`);
  });
});

describe('http live streams', () => {
  it('serves SSE clients up to the cap, answers 503 with Retry-After past it, and frees a slot when one leaves', async () => {
    const tmp = tempDir();
    const store = new SqliteStore(join(tmp.dir, 'a.db'));
    await store.open();
    const app = await buildHttp({ store, live: new LiveBus(), token: 't', maxStreams: 3, summaryExtras: extras, openIncidents: () => [], lastTotals: () => undefined });
    const open: AbortController[] = [];
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as { port: number };
      const connect = async () => {
        const ac = new AbortController();
        const r = await fetch(`http://127.0.0.1:${port}/api/events?token=t`, { signal: ac.signal });
        if (r.status === 200) open.push(ac);
        else await r.body?.cancel();
        return r;
      };
      // Concurrent connects: the cap holds even when they all arrive before any has been answered.
      const first = await Promise.all(Array.from({ length: 5 }, connect));
      assert.deepEqual(first.map((r) => r.status).sort(), [200, 200, 200, 503, 503]);
      const busy = first.find((r) => r.status === 503)!;
      assert.equal(busy.headers.get('retry-after'), '30');
      assert.equal((await connect()).status, 503);
      open.pop()!.abort();
      let again = 503;
      for (let i = 0; i < 50 && again !== 200; i++) {
        await new Promise((r) => setTimeout(r, 20));
        again = (await connect()).status;
      }
      assert.equal(again, 200, 'a slot is freed when a client leaves');
    } finally {
      for (const ac of open) ac.abort();
      await app.close();
      await store.close();
      tmp.cleanup();
    }
  });
});

describe('http without a token', () => {
  it('is open (the local demo)', async () => {
    const tmp = tempDir();
    const store = new SqliteStore(join(tmp.dir, 'a.db'));
    await store.open();
    const app = await buildHttp({ store, live: new LiveBus(), summaryExtras: extras, openIncidents: () => [], lastTotals: () => undefined });
    try {
      const r = await app.inject({ method: 'GET', url: '/api/summary' });
      assert.equal(r.statusCode, 200);
      assert.equal(r.json().alerts, 0);
    } finally {
      await app.close();
      await store.close();
      tmp.cleanup();
    }
  });
});

describe('http dead letters', () => {
  it('counts them in the summary and lists them, newest first, with the payload as text and as base64', async () => {
    const tmp = tempDir();
    const store = new SqliteStore(join(tmp.dir, 'a.db'));
    await store.open();
    const app = await buildHttp({ store, live: new LiveBus(), token: 't', summaryExtras: extras, openIncidents: () => [], lastTotals: () => undefined });
    const get = (url: string) => app.inject({ method: 'GET', url, headers: { authorization: 'Bearer t' } });
    try {
      await store.deadLetter([
        { topic: 'ids/v1/s1/h1/alert', payload: Buffer.from('{"v":1,"class":"\u0000"}'), error: 'first', at: T0 },
        { topic: 'ids/v1/s1/h1/alert', payload: Buffer.from([0xff, 0x00]), error: 'second', at: T0 + 1 },
      ]);
      assert.equal((await get('/api/summary')).json().deadLetters, 2);
      const r = await get('/api/dead-letters?limit=5');
      assert.equal(r.statusCode, 200);
      const list = r.json().deadLetters as { id: number; error: string; bytes: number; payload: string; payloadBase64: string; at: number }[];
      assert.deepEqual(list.map((d) => d.error), ['second', 'first']);
      assert.equal(list[0].bytes, 2);
      assert.equal(Buffer.from(list[0].payloadBase64, 'base64').toString('hex'), 'ff00');
      assert.equal(list[1].payload, '{"v":1,"class":"\u0000"}');
      assert.equal(list[1].at, T0);
      assert.equal((await get('/api/dead-letters?limit=1000')).statusCode, 400, 'limit is bounded');
      assert.equal((await app.inject({ method: 'GET', url: '/api/dead-letters' })).statusCode, 401);
    } finally {
      await app.close();
      await store.close();
      tmp.cleanup();
    }
  });
});
