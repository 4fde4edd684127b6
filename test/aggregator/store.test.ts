/** One suite, both stores: SQLite (always) and PostgreSQL (skipped with a message when unreachable). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HOUR_MS } from '../../aggregator/store/store.ts';
import type { Incident } from '../../shared/payloads.ts';
import { openStore, row, storeMakers, type StoreMaker } from './fixtures.ts';

const T0 = Date.UTC(2026, 10, 30, 8, 0, 0);

function suite(name: string, make: StoreMaker) {
  describe(`${name} store`, () => {
    const opened = openStore(make);

    it('inserts a batch and removes duplicates within it and against stored rows', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      const a = [row('s1', 'h1', 1, T0), row('s1', 'h1', 2, T0 + 1), row('s1', 'h1', 1, T0), row('s1', 'h2', 1, T0 + 2, 'DoS')];
      assert.deepEqual(await opened.store.writeBatch(a, []), [true, true, false, true]);
      assert.deepEqual(await opened.store.writeBatch([row('s1', 'h1', 2, T0 + 1), row('s1', 'h1', 3, T0 + 3)], []), [false, true]);
      // Same hub id at another site is another hub.
      assert.deepEqual(await opened.store.writeBatch([row('s2', 'h1', 1, T0 + 4)], []), [true]);
      const s = await opened.store.summary();
      assert.equal(s.alerts, 5);
      assert.equal(s.rawAlerts, 5);
      assert.deepEqual(s.classes, { Mirai: 4, DoS: 1 });
    });

    it('queries by site, hub, class and time, newest first, with a limit', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      assert.equal((await opened.store.queryAlerts({})).length, 5);
      assert.deepEqual((await opened.store.queryAlerts({ site: 's1', hub: 'h1' })).map((r) => r.seq), [3, 2, 1]);
      assert.deepEqual((await opened.store.queryAlerts({ class: 'DoS' })).map((r) => r.hub), ['h2']);
      assert.deepEqual((await opened.store.queryAlerts({ since: T0 + 1, until: T0 + 3 })).map((r) => r.ts), [T0 + 2, T0 + 1]);
      assert.equal((await opened.store.queryAlerts({ limit: 2 })).length, 2);
      const r = (await opened.store.queryAlerts({ hub: 'h2' }))[0];
      assert.equal(r.confidence, 0.9);
      assert.equal(r.dport, 23);
      assert.equal(r.site, 's1');
    });

    it('keeps hub status, bundle, last seen and stats, and counts alerts per hub', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      await opened.store.writeBatch([], [
        { site: 's1', hub: 'h1', seenAt: T0 + 10, state: 'online', bundle: 'b-1' },
        { site: 's1', hub: 'h2', seenAt: T0 + 11, stats: JSON.stringify({ flows: 7 }), statsAt: T0 + 11 },
      ]);
      await opened.store.writeBatch([], [{ site: 's1', hub: 'h1', seenAt: T0 + 20, state: 'offline' }]);
      const hubs = await opened.store.hubs();
      const h1 = hubs.find((h) => h.hub === 'h1' && h.site === 's1')!;
      assert.equal(h1.state, 'offline');
      assert.equal(h1.bundle, 'b-1');
      assert.equal(h1.lastSeen, T0 + 20);
      assert.equal(h1.alerts, 3);
      const h2 = hubs.find((h) => h.hub === 'h2')!;
      assert.equal(h2.state, 'unknown');
      assert.deepEqual(h2.stats, { flows: 7 });
      assert.equal(h2.lastStatsAt, T0 + 11);
      assert.equal(h2.alerts, 1);
      // The summary counts hubs by state without listing them; it agrees with the list.
      const count = (st: string) => hubs.filter((h) => h.state === st).length;
      assert.deepEqual((await opened.store.summary()).hubs, { total: hubs.length, online: count('online'), offline: count('offline'), unknown: count('unknown') });
    });

    it('upserts incidents and lists them by state', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      const inc: Incident = {
        v: 1, id: 'outbreak:Mirai:1', kind: 'outbreak', state: 'open', class: 'Mirai', sites: ['s1'], hubs: ['s1/h1'],
        alerts: 3, openedAt: T0, updatedAt: T0, summary: 'Mirai on 3 hubs',
      };
      await opened.store.upsertIncident(inc);
      await opened.store.upsertIncident({ ...inc, id: 'burst:x:1', kind: 'burst' });
      assert.equal((await opened.store.incidents('open')).length, 2);
      await opened.store.upsertIncident({ ...inc, state: 'closed', closedAt: T0 + 5, updatedAt: T0 + 5 });
      assert.deepEqual((await opened.store.incidents('open')).map((i) => i.id), ['burst:x:1']);
      const closed = await opened.store.incidents('closed');
      assert.equal(closed.length, 1);
      assert.equal(closed[0].closedAt, T0 + 5);
      assert.equal((await opened.store.incidents()).length, 2);
    });

    it('rolls old alerts up into hourly counts, keeps totals right and still removes late duplicates', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      const old = T0 - 5 * HOUR_MS;
      const batch = [];
      for (let i = 0; i < 30; i++) batch.push(row('s3', 'h9', 100 + i, old + i * 60_000, i % 3 === 0 ? 'Scan' : 'Mirai', 2));
      await opened.store.writeBatch(batch, []);
      const before = await opened.store.summary();
      const r = await opened.store.rollup(T0 - HOUR_MS);
      assert.equal(r.rolled, 30);
      const after = await opened.store.summary();
      assert.equal(after.alerts, before.alerts);
      assert.deepEqual(after.classes, before.classes);
      assert.equal(after.verdicts, before.verdicts);
      assert.equal(after.rawAlerts, before.rawAlerts - 30);
      assert.equal((await opened.store.queryAlerts({ hub: 'h9' })).length, 0);
      const hours = await opened.store.hourly({ hub: 'h9' });
      assert.equal(hours.reduce((n, h) => n + h.alerts, 0), 30);
      assert.equal(hours.reduce((n, h) => n + h.verdicts, 0), 60);
      assert.equal(hours.filter((h) => h.class === 'Scan').reduce((n, h) => n + h.alerts, 0), 10);
      for (const h of hours) assert.equal(h.hour % HOUR_MS, 0);
      // A QoS 1 redelivery of a rolled-up alert is still a duplicate; a newer seq is not.
      assert.deepEqual(await opened.store.writeBatch([row('s3', 'h9', 110, old), row('s3', 'h9', 500, T0)], []), [false, true]);
      // Rolling up again into the same hours adds, never overwrites.
      await opened.store.writeBatch([row('s3', 'h9', 501, old + 10)], []);
      await opened.store.rollup(T0 - HOUR_MS);
      const hours2 = await opened.store.hourly({ hub: 'h9', until: T0 - HOUR_MS });
      assert.equal(hours2.reduce((n, h) => n + h.alerts, 0), 31);
      assert.equal((await opened.store.summary()).alerts, before.alerts + 2);
    });

    it('keeps dead letters as received (bytes, topic, error), newest first, and counts them', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      assert.equal((await opened.store.summary()).deadLetters, 0);
      const bytes = Buffer.from([0x7b, 0x00, 0xff, 0xfe, 0x7d]);
      await opened.store.deadLetter([
        { topic: 'ids/v1/s1/h1/alert', payload: bytes, error: 'value "a\u0000" out of range', at: T0 },
        { topic: 'ids/v1/s1/h2/alert', payload: Buffer.from('{}'), error: 'second', at: T0 + 1 },
      ]);
      assert.equal((await opened.store.summary()).deadLetters, 2);
      const list = await opened.store.deadLetters();
      assert.deepEqual(list.map((d) => d.topic), ['ids/v1/s1/h2/alert', 'ids/v1/s1/h1/alert']);
      assert.deepEqual(Buffer.from(list[1].payload), bytes);
      assert.equal(list[1].at, T0);
      assert.equal(list[1].error, 'value "a\uFFFD" out of range', 'NUL in the error text is replaced');
      assert.equal((await opened.store.deadLetters(1)).length, 1);
    });

    it('keeps the newest stats whatever order batches commit in', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      await opened.store.writeBatch([], [{ site: 's5', hub: 'h1', seenAt: T0 + 9, stats: JSON.stringify({ n: 2 }), statsAt: T0 + 9 }]);
      await opened.store.writeBatch([], [{ site: 's5', hub: 'h1', seenAt: T0 + 5, stats: JSON.stringify({ n: 1 }), statsAt: T0 + 5 }]);
      await opened.store.writeBatch([], [{ site: 's5', hub: 'h1', seenAt: T0 + 3 }]);
      const h = (await opened.store.hubs()).find((x) => x.site === 's5')!;
      assert.deepEqual(h.stats, { n: 2 });
      assert.equal(h.lastStatsAt, T0 + 9);
      assert.equal(h.lastSeen, T0 + 9);
    });
  });
}

for (const [name, make] of storeMakers('store')) suite(name, make);
