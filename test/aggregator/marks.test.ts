/**
 * Operator marks through the HTTP API, on every store (SQLite inline, SQLite with its writer thread, PostgreSQL
 * when reachable): token identities as `by`, read-only tokens, validation, 404s, newest mark wins, undo,
 * incident marks, and the false-positive share in /api/feedback.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildHttp } from '../../aggregator/http.ts';
import { LiveBus } from '../../aggregator/live.ts';
import type { Store } from '../../aggregator/store/store.ts';
import type { Incident } from '../../shared/payloads.ts';
import { row, storeMakers, type StoreMaker } from './fixtures.ts';

const NOW = Date.UTC(2026, 11, 4, 12);
const extras = () => ({
  incidents: { open: 0 }, invalid: { total: 0, byReason: {} },
  ingest: { received: 0, stored: 0, duplicates: 0, batches: 0, storeErrors: 0 }, uptimeSec: 1,
});
const TOKENS = [
  { name: 'alice', token: 'alice-secret-1', permission: 'write' as const },
  { name: 'noc', token: 'noc-secret-22', permission: 'read' as const },
];
const incident = (id: string, kind: Incident['kind'], hubs: string[], openedAt: number, cls?: string, closedAt?: number): Incident => ({
  v: 1, id, kind, state: closedAt ? 'closed' : 'open', ...(cls ? { class: cls } : {}), sites: [...new Set(hubs.map((h) => h.split('/')[0]))],
  hubs, alerts: 5, openedAt, updatedAt: closedAt ?? openedAt, ...(closedAt ? { closedAt } : {}), summary: id,
});

const BURST = 'burst:s1/h2:Mirai:' + (NOW - 50 * 60_000);
const OUTBREAK = 'outbreak:Scan:' + (NOW - 30 * 60_000);

function suite(name: string, make: StoreMaker) {
  describe(`marks API on ${name}`, () => {
    let store: Store;
    let done: (() => Promise<void>) | undefined;
    let skip: string | undefined;
    let app: FastifyInstance;
    before(async () => {
      const r = await make();
      if (typeof r === 'string') return void (skip = r);
      ({ store, done } = r);
      const min = 60_000;
      await store.writeBatch([
        // s1/h1: four Mirai alerts in the last hour, a DoS burst summary (40 verdicts) two hours ago.
        row('s1', 'h1', 1, NOW - 10 * min), row('s1', 'h1', 2, NOW - 9 * min), row('s1', 'h1', 3, NOW - 8 * min),
        row('s1', 'h1', 4, NOW - 7 * min), row('s1', 'h1', 5, NOW - 120 * min, 'DoS', 40),
        // s1/h2: a Mirai burst 50 min ago (3 alerts in its window, one before it), one Scan.
        row('s1', 'h2', 1, NOW - 52 * min), row('s1', 'h2', 2, NOW - 50 * min + 1000), row('s1', 'h2', 3, NOW - 50 * min + 2000),
        row('s1', 'h2', 4, NOW - 50 * min + 3000), row('s1', 'h2', 5, NOW - 30 * min, 'Scan'),
        // s2/h3: Scan in the outbreak's window; an old alert outside the 24 h window.
        row('s2', 'h3', 1, NOW - 30 * min - 5000, 'Scan'), row('s2', 'h3', 2, NOW - 25 * 60 * min, 'Scan'),
      ], [
        { site: 's1', hub: 'h1', seenAt: NOW - min, state: 'online', bundle: '2026-12-04.1-aaaa' },
        { site: 's1', hub: 'h2', seenAt: NOW - min, state: 'online', bundle: '2026-12-04.1-aaaa' },
        { site: 's2', hub: 'h3', seenAt: NOW - min, state: 'offline', bundle: '2026-11-30.2-bbbb' },
        { site: 's3', hub: 'quiet', seenAt: NOW - min, state: 'online', bundle: '2026-12-04.1-aaaa' },
      ]);
      await store.upsertIncident(incident(BURST, 'burst', ['s1/h2'], NOW - 50 * min, 'Mirai', NOW - 40 * min));
      await store.upsertIncident(incident(OUTBREAK, 'outbreak', ['s1/h2', 's2/h3'], NOW - 30 * min, 'Scan'));
      await store.upsertIncident(incident('hub-offline:s2/h3:1', 'hub-offline', ['s2/h3'], NOW - 5 * min));
      app = await buildHttp({
        store, live: new LiveBus(), token: 'op-secret', tokens: TOKENS, now: () => NOW, summaryExtras: extras,
        openIncidents: () => [], lastTotals: () => undefined,
      });
      await app.ready();
    });
    after(async () => {
      await app?.close();
      await done?.();
    });

    const as = (token: string | undefined) => (method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown) =>
      app.inject({
        method, url, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
    const alice = as('alice-secret-1');
    const operator = as('op-secret');
    const noc = as('noc-secret-22');
    const effective = async (site: string, hub: string) =>
      Object.fromEntries(((await alice('GET', `/api/alerts?site=${site}&hub=${hub}`)).json().alerts as { seq: number; mark: { verdict: string; class: string; by: string } | null }[])
        .map((a) => [a.seq, a.mark && `${a.mark.verdict}:${a.mark.class}:${a.mark.by}`]));

    it('refuses every feedback route without a valid token (401) and writes with a read-only one (403)', async (t) => {
      if (skip) return t.skip(skip);
      for (const [m, u] of [['POST', '/api/alerts/s1/h1/1/mark'], ['POST', `/api/incidents/${encodeURIComponent(BURST)}/mark`],
        ['DELETE', '/api/marks/1'], ['DELETE', `/api/incidents/${encodeURIComponent(BURST)}/mark`], ['GET', '/api/marks'],
        ['GET', '/api/feedback'], ['GET', '/api/whoami']] as const) {
        assert.equal((await as(undefined)(m, u, m === 'POST' ? { verdict: 'confirmed' } : undefined)).statusCode, 401, `${m} ${u}`);
        assert.equal((await as('alice-secret-2')(m, u, m === 'POST' ? { verdict: 'confirmed' } : undefined)).statusCode, 401, `${m} ${u}`);
      }
      assert.deepEqual((await alice('GET', '/api/whoami')).json(), { name: 'alice', permission: 'write' });
      assert.deepEqual((await operator('GET', '/api/whoami')).json(), { name: 'operator', permission: 'write' });
      assert.deepEqual((await noc('GET', '/api/whoami')).json(), { name: 'noc', permission: 'read' });
      const r = await noc('POST', '/api/alerts/s1/h1/1/mark', { verdict: 'false-positive' });
      assert.equal(r.statusCode, 403);
      assert.equal(r.json().error, 'FORBIDDEN');
      assert.equal((await noc('GET', '/api/feedback')).statusCode, 200, 'a read-only token reads');
      assert.deepEqual((await noc('GET', '/api/marks')).json().marks, [], 'nothing was written');
    });

    it('marks alerts with the token name as by: false positive → Normal, confirmed keeps the class or takes a correction', async (t) => {
      if (skip) return t.skip(skip);
      const fp = await alice('POST', '/api/alerts/s1/h1/1/mark', { verdict: 'false-positive' });
      assert.equal(fp.statusCode, 201, fp.body);
      const m = fp.json();
      assert.deepEqual({ ...m, id: 0 }, {
        id: 0, site: 's1', hub: 'h1', seq: 1, verdict: 'false-positive', class: 'Normal', by: 'alice', at: NOW, incident: null, undoneAt: null, undoneBy: null,
      });
      assert.equal((await operator('POST', '/api/alerts/s1/h1/2/mark', { verdict: 'confirmed' })).json().class, 'Mirai');
      assert.equal((await alice('POST', '/api/alerts/s1/h1/3/mark', { verdict: 'confirmed', class: 'DoS' })).json().class, 'DoS');
      assert.equal((await alice('POST', '/api/alerts/s1/h1/4/mark', { verdict: 'false-positive', class: 'Normal' })).json().class, 'Normal');
      // A burst summary is one alert row: one mark covers its 40 verdicts.
      assert.equal((await alice('POST', '/api/alerts/s1/h1/5/mark', { verdict: 'false-positive' })).statusCode, 201);
      assert.deepEqual(await effective('s1', 'h1'), {
        1: 'false-positive:Normal:alice', 2: 'confirmed:Mirai:operator', 3: 'confirmed:DoS:alice', 4: 'false-positive:Normal:alice', 5: 'false-positive:Normal:alice',
      });
    });

    it('refuses bad input with a 4xx naming what is wrong', async (t) => {
      if (skip) return t.skip(skip);
      const cases: [string, string, unknown, number, RegExp][] = [
        ['verdict', '/api/alerts/s1/h1/1/mark', { verdict: 'maybe' }, 400, /verdict/],
        ['no verdict', '/api/alerts/s1/h1/1/mark', {}, 400, /verdict/],
        ['extra field', '/api/alerts/s1/h1/1/mark', { verdict: 'confirmed', by: 'mallory' }, 400, /by|unrecognized/i],
        ['fp with a class', '/api/alerts/s1/h1/1/mark', { verdict: 'false-positive', class: 'DoS' }, 400, /false positive is Normal/],
        ['confirmed as Normal', '/api/alerts/s1/h1/1/mark', { verdict: 'confirmed', class: 'Normal' }, 400, /cannot be Normal/],
        ['unknown class', '/api/alerts/s1/h1/1/mark', { verdict: 'confirmed', class: 'Godzilla' }, 400, /not a known label/],
        ['class not text', '/api/alerts/s1/h1/1/mark', { verdict: 'confirmed', class: 7 }, 400, /class/],
        ['array body', '/api/alerts/s1/h1/1/mark', [1, 2], 400, /body/],
        ['not JSON', '/api/alerts/s1/h1/1/mark', '{"verdict":', 400, /JSON|Unexpected|body/i],
        ['huge body', '/api/alerts/s1/h1/1/mark', { verdict: 'confirmed', class: 'x'.repeat(5000) }, 413, /large|limit/i],
        ['seq not a number', '/api/alerts/s1/h1/x/mark', { verdict: 'confirmed' }, 400, /seq/],
        ['negative seq', '/api/alerts/s1/h1/-1/mark', { verdict: 'confirmed' }, 400, /seq/],
        ['bad hub id', '/api/alerts/s1/h%201/1/mark', { verdict: 'confirmed' }, 400, /hub/],
        ['no such alert', '/api/alerts/s1/h1/999/mark', { verdict: 'confirmed' }, 404, /no stored alert s1\/h1\/999/],
        ['no such hub', '/api/alerts/s9/h9/1/mark', { verdict: 'confirmed' }, 404, /no stored alert/],
        ['no such incident', '/api/incidents/nope/mark', { verdict: 'confirmed' }, 404, /no incident "nope"/],
        ['incident without alerts', `/api/incidents/${encodeURIComponent('hub-offline:s2/h3:1')}/mark`, { verdict: 'confirmed' }, 409, /stands for no alerts/],
      ];
      for (const [what, url, body, status, re] of cases) {
        const r = await alice('POST', url, body);
        assert.equal(r.statusCode, status, `${what}: ${r.body}`);
        assert.match(r.json().message, re, what);
      }
      const bare = await app.inject({ method: 'POST', url: '/api/alerts/s1/h1/1/mark', headers: { authorization: 'Bearer alice-secret-1' } });
      assert.equal(bare.statusCode, 415, 'no body at all');
      const form = await app.inject({ method: 'POST', url: '/api/alerts/s1/h1/1/mark', headers: { authorization: 'Bearer alice-secret-1', 'content-type': 'text/plain' }, payload: 'verdict=confirmed' });
      assert.equal(form.statusCode, 415, 'only JSON bodies (a cross-site form cannot post one)');
      for (const [url, status] of [['/api/marks/0', 400], ['/api/marks/abc', 400], ['/api/marks/999999', 404]] as const) {
        assert.equal((await alice('DELETE', url)).statusCode, status, url);
      }
      assert.equal((await alice('GET', '/api/marks?limit=5000')).statusCode, 400);
      assert.equal((await alice('GET', '/api/marks?since=yesterday')).statusCode, 400);
      assert.equal((await alice('GET', '/api/feedback?hours=0')).statusCode, 400);
      // Nothing above wrote a mark.
      assert.equal((await alice('GET', '/api/marks')).json().marks.length, 5);
    });

    it('the newest mark wins, history is kept; undo restores the previous mark and is recorded, never deleted', async (t) => {
      if (skip) return t.skip(skip);
      const again = (await operator('POST', '/api/alerts/s1/h1/1/mark', { verdict: 'confirmed', class: 'Scan' })).json();
      assert.equal((await effective('s1', 'h1'))[1], 'confirmed:Scan:operator');
      const hist = (await alice('GET', '/api/marks?site=s1&hub=h1')).json().marks as { id: number; seq: number; by: string }[];
      assert.deepEqual(hist.filter((m) => m.seq === 1).map((m) => m.by), ['operator', 'alice'], 'both kept, newest first');
      const u = await alice('DELETE', `/api/marks/${again.id}`);
      assert.equal(u.statusCode, 200, u.body);
      assert.deepEqual([u.json().undoneAt, u.json().undoneBy], [NOW, 'alice']);
      assert.equal((await effective('s1', 'h1'))[1], 'false-positive:Normal:alice', 'the older mark is effective again');
      const twice = await alice('DELETE', `/api/marks/${again.id}`);
      assert.equal(twice.statusCode, 409);
      assert.match(twice.json().message, /already undone by alice/);
      assert.equal((await noc('DELETE', `/api/marks/${hist[1].id}`)).statusCode, 403);
      const all = (await alice('GET', '/api/marks?site=s1&hub=h1&limit=100')).json().marks as { id: number; undoneBy: string | null }[];
      assert.equal(all.length, 6, 'the undone mark is still listed');
      assert.equal(all.find((m) => m.id === again.id)!.undoneBy, 'alice');
      assert.equal((await alice('GET', '/api/marks?limit=2')).json().marks.length, 2);
      assert.equal((await alice('GET', `/api/marks?since=${NOW + 1}`)).json().marks.length, 0);
    });

    it('marks every alert of an incident in one go (its class, its hubs, its window) and undoes them together', async (t) => {
      if (skip) return t.skip(skip);
      const r = await alice('POST', `/api/incidents/${encodeURIComponent(BURST)}/mark`, { verdict: 'false-positive' });
      assert.equal(r.statusCode, 200, r.body);
      // The burst opened 50 min ago: alerts 2, 3, 4 of s1/h2 (Mirai, in the window); not 1 (before the window), not 5 (Scan).
      assert.deepEqual(r.json(), { incident: BURST, marked: 3, verdict: 'false-positive', class: 'Normal', by: 'alice', at: NOW });
      assert.deepEqual(await effective('s1', 'h2'), { 1: null, 2: 'false-positive:Normal:alice', 3: 'false-positive:Normal:alice', 4: 'false-positive:Normal:alice', 5: null });
      // The outbreak covers two hubs' Scan alerts in its window; confirmed without a class keeps each alert's.
      const o = (await operator('POST', `/api/incidents/${encodeURIComponent(OUTBREAK)}/mark`, { verdict: 'confirmed' })).json();
      assert.equal(o.marked, 2);
      assert.equal((await effective('s1', 'h2'))[5], 'confirmed:Scan:operator');
      assert.equal((await effective('s2', 'h3'))[1], 'confirmed:Scan:operator');
      assert.equal((await alice('GET', `/api/marks?incident=${encodeURIComponent(BURST)}`)).json().marks.length, 3);
      const u = await alice('DELETE', `/api/incidents/${encodeURIComponent(OUTBREAK)}/mark`);
      assert.deepEqual(u.json(), { incident: OUTBREAK, undone: 2 });
      assert.equal((await effective('s2', 'h3'))[1], null);
      assert.deepEqual((await alice('DELETE', `/api/incidents/${encodeURIComponent(OUTBREAK)}/mark`)).json().undone, 0);
    });

    it('feedback: per hub alerts/hour, shares marked false positive, confirmed and unmarked, bundle and state', async (t) => {
      if (skip) return t.skip(skip);
      const f = (await noc('GET', '/api/feedback')).json();
      assert.equal(f.hours, 24);
      assert.ok(f.labels.includes('Mirai') && f.labels.includes('Normal'));
      const h = Object.fromEntries((f.hubs as Record<string, unknown>[]).map((x) => [`${x.site}/${x.hub}`, x]));
      assert.deepEqual(Object.keys(h), ['s1/h1', 's1/h2', 's2/h3', 's3/quiet']);
      // s1/h1: 5 alerts in 24 h (4 in the last hour); 1, 4, 5 false positive, 2 and 3 confirmed.
      assert.deepEqual(h['s1/h1'], {
        site: 's1', hub: 'h1', state: 'online', bundle: '2026-12-04.1-aaaa', lastSeen: NOW - 60_000,
        alerts: 5, alertsLastHour: 4, alertsPerHour: 5 / 24, stored: 5, falsePositive: 3, confirmed: 2, unmarked: 0,
        falsePositiveShare: 0.6, confirmedShare: 0.4, unmarkedShare: 0,
      });
      assert.deepEqual([h['s1/h2'].falsePositive, h['s1/h2'].unmarked, h['s1/h2'].falsePositiveShare], [3, 2, 0.6]);
      assert.deepEqual([h['s2/h3'].alerts, h['s2/h3'].state, h['s2/h3'].bundle, h['s2/h3'].unmarkedShare], [1, 'offline', '2026-11-30.2-bbbb', 1]);
      assert.deepEqual([h['s3/quiet'].alerts, h['s3/quiet'].falsePositiveShare], [0, null]);
      assert.deepEqual([f.fleet.alerts, f.fleet.falsePositive, f.fleet.confirmed, f.fleet.unmarked], [11, 6, 2, 3]);
      // The alert list narrowed to unmarked or marked alerts (newest first).
      const seqs = async (q: string) => ((await noc('GET', `/api/alerts?${q}`)).json().alerts as { seq: number }[]).map((a) => a.seq);
      assert.deepEqual(await seqs('site=s1&hub=h2&marked=unmarked'), [5, 1]);
      assert.deepEqual(await seqs('site=s1&hub=h2&marked=marked'), [4, 3, 2]);
      assert.deepEqual(await seqs('site=s1&marked=unmarked&limit=1'), [5]);
      assert.deepEqual(await seqs('hub=h3&marked=unmarked&class=Scan'), [1, 2]);
      assert.equal((await noc('GET', '/api/alerts?marked=maybe')).statusCode, 400);
      // A longer window reaches the old alert of s2/h3.
      const w = (await noc('GET', '/api/feedback?hours=48')).json();
      assert.equal(w.hubs.find((x: { hub: string }) => x.hub === 'h3').alerts, 2);
    });
  });
}

for (const [name, make] of storeMakers('marks')) suite(name, make);
