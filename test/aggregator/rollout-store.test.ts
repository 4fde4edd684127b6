/**
 * The rollouts table and the rollout's reads of the aggregator's tables (aggregator/rollout/store.ts), on SQLite
 * and, when it is reachable, PostgreSQL: rows round-trip, active and last promoted are found, hubs carry their
 * refusal counter, window counts take model alerts only and the effective false-positive marks.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pg from 'pg';
import { openStore } from '../../aggregator/store/open.ts';
import type { Store } from '../../aggregator/store/store.ts';
import type { PostgresStore } from '../../aggregator/store/postgres.ts';
import { RolloutStore, type NewRollout } from '../../aggregator/rollout/store.ts';
import { PG_URL, postgresReachable, row, tempDir, uniqueSchema } from './fixtures.ts';

const T0 = Date.UTC(2026, 11, 4, 10);

const newRollout = (over: Partial<NewRollout> = {}): NewRollout => ({
  bundle: { version: 'b-2', release: 200, dir: '/bundles/b-2' },
  previous: { version: 'b-1', release: 100, dir: '/bundles/b-1' },
  canaries: [{ site: 's1', hub: 'h1' }],
  state: 'canary', startedAt: T0, watchUntil: null, finishedAt: null, decision: null,
  options: { watchMs: 1000 },
  ...over,
});

/** The feedback contract's marks table (created here: the suite must not depend on who creates it). */
const MARKS_DDL = (serial: string) => `CREATE TABLE IF NOT EXISTS marks (id ${serial}, site TEXT, hub TEXT, seq BIGINT,
  verdict TEXT, class TEXT, by TEXT, at BIGINT, incident TEXT NULL, undone_at BIGINT NULL, undone_by TEXT NULL)`;

interface Db { url: string; exec(sql: string): Promise<void>; done(): Promise<void> }

const makers: [string, () => Promise<Db | string>][] = [
  ['sqlite', async () => {
    const tmp = tempDir('iot-ids-rollout-');
    const url = join(tmp.dir, 'r.db');
    const Database = (await import('better-sqlite3')).default;
    return {
      url,
      async exec(sql) {
        const db = new Database(url);
        db.exec(sql);
        db.close();
      },
      async done() { tmp.cleanup(); },
    };
  }],
  ['postgres', async () => {
    if (!(await postgresReachable())) return `PostgreSQL not reachable at ${PG_URL}: skipped`;
    const schema = uniqueSchema('rollout');
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    return {
      url: `${PG_URL}?schema=${schema}`,
      async exec(sql) { await client.query(`SET search_path = ${schema}`); await client.query(sql); },
      async done() { await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`); await client.end(); },
    };
  }],
];

for (const [name, make] of makers) {
  describe(`rollout store (${name})`, () => {
    let db: Db | string;
    let agg: Store;
    let rs: RolloutStore;
    before(async () => {
      db = await make();
      if (typeof db === 'string') return;
      agg = await openStore(db.url);
      rs = await RolloutStore.open(db.url);
    });
    after(async () => {
      if (typeof db === 'string') return;
      await rs?.close();
      await agg?.close();
      await db.done();
    });
    const skip = (t: { skip: (m: string) => void }) => {
      if (typeof db === 'string') t.skip(db);
      return typeof db === 'string';
    };

    it('creates, updates and reads rollouts; finds the active one and the last promoted', async (t) => {
      if (skip(t)) return;
      assert.equal(await rs.hasAggregatorTables(), true);
      const a = await rs.create(newRollout(), T0);
      const b = await rs.create(newRollout({ bundle: { version: 'b-3', release: 300, dir: '/bundles/b-3' } }), T0 + 1);
      assert.ok(b > a);
      assert.deepEqual((await rs.active()).map((r) => r.id), [a, b]);
      await rs.update(a, { state: 'promoted', finishedAt: T0 + 5, decision: { action: 'promote', reasons: ['ok'] } }, T0 + 5);
      await rs.update(b, { state: 'watching', watchUntil: T0 + 9000 }, T0 + 6);
      const got = await rs.get(a);
      assert.equal(got?.state, 'promoted');
      assert.deepEqual(got?.decision, { action: 'promote', reasons: ['ok'] });
      assert.deepEqual(got?.canaries, [{ site: 's1', hub: 'h1' }]);
      assert.deepEqual(got?.bundle, { version: 'b-2', release: 200, dir: '/bundles/b-2' });
      assert.equal(got?.updatedAt, T0 + 5);
      assert.equal((await rs.lastPromoted())?.id, a);
      assert.deepEqual((await rs.active()).map((r) => [r.id, r.state, r.watchUntil]), [[b, 'watching', T0 + 9000]]);
      assert.deepEqual((await rs.list()).map((r) => r.id), [b, a]);
      assert.equal(await rs.get(9999), undefined);
    });

    it('reads hubs with their bundle and refusal counter; counts model alerts and effective false-positive marks per window', async (t) => {
      if (skip(t)) return;
      const stats = JSON.stringify({ bundlesRejected: 2, lastError: 'bundle: signature check failed' });
      const rule = { ...row('s1', 'h1', 9, T0 + 500, 'Scan', 7), source: 'rule' as const };
      await agg.writeBatch(
        [row('s1', 'h1', 1, T0, 'DoS', 3), row('s1', 'h1', 2, T0 + 100), row('s1', 'h1', 3, T0 + 200), row('s1', 'h2', 1, T0 + 300), rule,
          row('s1', 'h1', 4, T0 + 5000)],
        [{ site: 's1', hub: 'h1', seenAt: T0, state: 'online', bundle: 'b-2', stats, statsAt: T0 }, { site: 's1', hub: 'h2', seenAt: T0, state: 'degraded' }],
      );
      const hubs = await rs.hubs();
      assert.deepEqual(hubs.map((h) => [h.site, h.hub, h.state, h.bundle, h.bundlesRejected]), [['s1', 'h1', 'online', 'b-2', 2], ['s1', 'h2', 'degraded', null, 0]]);
      assert.equal(hubs[0].lastError, 'bundle: signature check failed');
      let c = await rs.counts(T0, T0 + 1000, [{ site: 's1', hub: 'h1' }]);
      assert.deepEqual(c.get('s1/h1'), { verdicts: 5, alerts: 3, falsePositives: 0 }, 'model alerts only, without marks');
      assert.deepEqual(c.get('s1/h2'), { verdicts: 1, alerts: 1, falsePositives: 0 });
      const serial = name === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY';
      await (db as Db).exec(MARKS_DDL(serial));
      await (db as Db).exec(`INSERT INTO marks (site, hub, seq, verdict, class, by, at, undone_at) VALUES
        ('s1', 'h1', 1, 'false-positive', 'Normal', 'op', 1, NULL),
        ('s1', 'h1', 2, 'false-positive', 'Normal', 'op', 1, NULL), ('s1', 'h1', 2, 'confirmed', 'Mirai', 'op', 2, NULL),
        ('s1', 'h1', 3, 'false-positive', 'Normal', 'op', 1, 5)`);
      c = await rs.counts(T0, T0 + 1000, [{ site: 's1', hub: 'h1' }]);
      // seq 1: false positive; seq 2: confirmed by the newer mark; seq 3: the mark was undone.
      assert.deepEqual(c.get('s1/h1'), { verdicts: 5, alerts: 3, falsePositives: 1 });
      assert.equal((await rs.counts(T0 + 1000, T0 + 6000)).get('s1/h1')?.alerts, 1);
    });
  });
}
