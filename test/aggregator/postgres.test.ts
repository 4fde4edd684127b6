/**
 * PostgreSQL-only behaviour against the real server (skipped with a message when it is not reachable): twins
 * creating one schema at once, poison messages that once stopped all ingestion, and errors told apart as
 * permanent (the data) or transient (the database).
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { PostgresStore } from '../../aggregator/store/postgres.ts';
import { Ingest } from '../../aggregator/ingest.ts';
import { isPermanentStoreError } from '../../aggregator/store/store.ts';
import { encodeAlert } from '../../shared/payloads.ts';
import { startAggregator } from '../../aggregator/aggregator.ts';
import { PG_URL, alertPayload, postgresReachable, row, uniqueSchema, waitFor } from './fixtures.ts';
import { hasMosquitto, startMosquitto } from './broker.ts';
import { publisher } from './publisher.ts';

const quiet = () => {};
const topic = (site: string, hub: string) => `ids/v1/${site}/${hub}/alert`;
const good = (seq: number) => Buffer.from(encodeAlert(alertPayload('s1', 'h1', seq)));
/** A payload the schema used to accept, written by hand (encodeAlert would refuse it now). */
const raw = (seq: number, over: Record<string, unknown>) =>
  Buffer.from(JSON.stringify({ ...alertPayload('s1', 'h1', seq), ...over }));

async function withStore(tag: string, fn: (s: PostgresStore) => Promise<void>): Promise<void> {
  const store = new PostgresStore({ connectionString: PG_URL, schema: uniqueSchema(tag) });
  await store.open();
  try {
    await fn(store);
  } finally {
    await store.dropSchema();
    await store.close();
  }
}

describe('postgres store', () => {
  let skip: string | undefined;
  before(async () => {
    if (!(await postgresReachable())) skip = `PostgreSQL not reachable at ${PG_URL}: skipped`;
  });

  it('two instances started together on an empty schema: 10 of 10 start', async (t) => {
    if (skip) return t.skip(skip);
    const failures: string[] = [];
    for (let trial = 0; trial < 10; trial++) {
      const schema = uniqueSchema(`twin${trial}`);
      const twins = [0, 1].map(() => new PostgresStore({ connectionString: PG_URL, schema }));
      const r = await Promise.allSettled(twins.map((s) => s.open()));
      for (const x of r) if (x.status === 'rejected') failures.push(`trial ${trial}: ${(x.reason as Error).message}`);
      await Promise.all(twins.map((s) => s.close()));
      // A fresh store drops it: a twin that failed to open has no pool left to do it with.
      const cleaner = new PostgresStore({ connectionString: PG_URL, schema });
      await cleaner.open();
      await cleaner.dropSchema();
      await cleaner.close();
    }
    assert.deepEqual(failures, []);
  });

  it('names the schema in its errors', async (t) => {
    if (skip) return t.skip(skip);
    const store = new PostgresStore({ connectionString: PG_URL.replace(/\/[^/]*$/, '/no_such_db_iot_ids'), schema: 'named_here' });
    await assert.rejects(store.open(), /schema "named_here"/);
  });

  it('tells the data\'s errors (permanent) from the database\'s (transient)', async (t) => {
    if (skip) return t.skip(skip);
    await withStore('classify', async (store) => {
      const T0 = Date.UTC(2026, 11, 4);
      const refused = async (r: ReturnType<typeof row>) => {
        const e = await store.writeBatch([r], []).then(() => undefined, (x: unknown) => x);
        assert.ok(e, 'refused');
        return e;
      };
      assert.equal(isPermanentStoreError(await refused({ ...row('s', 'h', 1, T0), count: 2 ** 31 })), true);
      assert.equal(isPermanentStoreError(await refused({ ...row('s', 'h', 2, T0), class: 'a\u0000b' })), true);
      assert.equal(isPermanentStoreError(await refused({ ...row('s', 'h', 3, T0), seq: 2 ** 64 })), true);
      // The database going away is not the data's fault.
      await store.close();
      assert.equal(isPermanentStoreError(await refused(row('s', 'h', 4, T0))), false);
      await store.open();
    });
  });

  it('poison alerts (count 2^31, NUL in a text field, huge ts) are refused, and a good alert sent after them is stored', { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    await withStore('poison', async (store) => {
      const ingest = new Ingest({ store, log: quiet });
      let acks = 0;
      const poisons = [
        raw(1, { count: 2 ** 31 }), raw(2, { model: 'm\u0000' }), raw(3, { class: '\u0000' }),
        raw(4, { flow: { src: '10.0.0.1\u0000', dst: 'x', sport: 1, dport: 2, proto: 6 } }), raw(5, { ts: 2 ** 53 - 1 }),
      ];
      for (const p of poisons) ingest.handle(topic('s1', 'h1'), p, () => acks++);
      ingest.handle(topic('s1', 'h1'), good(6), () => acks++);
      await ingest.flush();
      assert.equal(acks, 6);
      assert.equal(ingest.counters.invalidByReason.schema, 5);
      const s = await store.summary();
      assert.equal(s.alerts, 1);
      assert.deepEqual((await store.queryAlerts({})).map((a) => a.seq), [6]);
    });
  });

  it('a message the database refuses mid-batch is dead-lettered; the rest of the batch is stored', { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    await withStore('dead', async (store) => {
      // A rule this database has and the payload schema cannot know about.
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`ALTER TABLE ${store.schema}.alerts ADD CONSTRAINT no_seq_13 CHECK (seq <> 13)`);
      await c.end();
      const ingest = new Ingest({ store, log: quiet });
      const acked: number[] = [];
      for (let seq = 0; seq < 30; seq++) ingest.handle(topic('s1', 'h1'), good(seq), () => acked.push(seq));
      ingest.handle(topic('s2', 'h2'), Buffer.from(encodeAlert(alertPayload('s2', 'h2', 1))), () => acked.push(100));
      await ingest.flush();
      assert.equal(acked.length, 31);
      const s = await store.summary();
      assert.equal(s.alerts, 30);
      assert.equal(s.deadLetters, 1);
      const [d] = await store.deadLetters();
      assert.equal(d.topic, topic('s1', 'h1'));
      assert.equal(JSON.parse(Buffer.from(d.payload).toString('utf8')).seq, 13);
      assert.match(d.error, /no_seq_13/);
    });
  });

  it('over the wire: poison from one hub stops nobody: other hubs are stored, shutdown is quick, nothing comes back after a restart', { timeout: 60_000 }, async (t) => {
    if (skip) return t.skip(skip);
    if (!hasMosquitto()) return t.skip('mosquitto not installed: skipped');
    const broker = await startMosquitto();
    const schema = uniqueSchema('wire');
    const db = `${PG_URL}?schema=${schema}`;
    const start = () => startAggregator({ broker: broker.url, db, clientId: `wire-${schema}`, log: quiet });
    let agg = await start();
    const pub = await publisher(broker.url);
    try {
      await pub.raw(topic('s1', 'h1'), raw(1, { count: 2 ** 31 }));
      await pub.raw(topic('s1', 'h1'), raw(2, { evidence: { kind: 'arp-ip-conflict', ip: '10.0.0.1', macs: [], detail: '\u0000' } }));
      await pub.raw(topic('s1', 'h1'), raw(3, { ts: 2 ** 53 - 1 }));
      await pub.alerts([['s2', 'h2'], ['s3', 'h3']], 0, 50);
      await pub.raw(topic('s1', 'h1'), good(4));
      await waitFor(async () => (await agg.store.summary()).alerts === 101, 20_000, '101 good alerts stored');
      assert.equal(agg.ingest.counters.invalidByReason.schema, 3);
      const t0 = Date.now();
      await agg.close();
      assert.ok(Date.now() - t0 < 10_000, `close took ${Date.now() - t0} ms`);
      // Everything was acked: a restart on the same session gets nothing back.
      agg = await start();
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(agg.ingest.counters.received, 0, 'no redelivery after the restart');
      assert.equal((await agg.store.summary()).alerts, 101);
    } finally {
      await pub.close();
      await agg.close();
      const s = new PostgresStore({ connectionString: PG_URL, schema });
      await s.open();
      await s.dropSchema();
      await s.close();
      await broker.stop();
    }
  });
});
