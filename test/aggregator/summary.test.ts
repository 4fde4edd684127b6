/**
 * The API's reads do not wait behind the writes: with every batch write blocked (another session holds the lock
 * they need), the summary and the hub list still answer at once, from maintained counts. PostgreSQL: the reads
 * have connections of their own. SQLite with the writer thread: the reads use the main thread's connection, which
 * WAL lets read beside a writer. (Inline SQLite writes on the main thread: a blocked write holds the API too.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PostgresStore } from '../../aggregator/store/postgres.ts';
import { SqliteWorkerStore } from '../../aggregator/store/sqlite-worker.ts';
import type { Store } from '../../aggregator/store/store.ts';
import { PG_URL, postgresReachable, row, storeMakers, tempDir } from './fixtures.ts';

const T0 = Date.UTC(2026, 11, 4, 12);

/** Resolves with the value, or rejects after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`${what} took over ${ms} ms`)), ms).unref())]);
}

/** Writes 10 alerts, blocks the writes, checks the reads, unblocks, checks that the blocked writes land. */
async function blockedWrites(store: Store, block: () => Promise<void>, unblock: () => Promise<void>): Promise<void> {
  await store.writeBatch(Array.from({ length: 10 }, (_, i) => row('s1', 'h1', i, T0 + i)), [{ site: 's1', hub: 'h1', seenAt: T0 }]);
  await block();
  // More writes than the store runs at once, as a drain has (plus the watermark's and incidents' queries).
  const n = store.maxWritesInFlight + 2;
  const writes = Array.from({ length: n }, (_, k) => store.writeBatch([row('s1', 'h1', 100 + k, T0)], []));
  let landed = 0;
  for (const w of writes) void w.then(() => landed++, () => undefined);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(landed, 0, 'the writes are blocked');
  const t0 = performance.now();
  const s = await within(store.summary(), 1000, 'summary');
  const hubs = await within(store.hubs(), 1000, 'hubs');
  const ms = performance.now() - t0;
  assert.equal(s.alerts, 10);
  assert.equal(s.rawAlerts, 10);
  assert.equal(hubs[0].alerts, 10);
  assert.deepEqual(s.hubs, { total: 1, online: 0, offline: 0, unknown: 1 });
  assert.ok(ms < 1000, `reads took ${ms.toFixed(0)} ms`);
  await unblock();
  await Promise.all(writes);
  assert.equal((await store.summary()).alerts, 10 + n);
}

describe('reads while every write is blocked', () => {
  it('postgres: summary and hubs answer on their own connections', { timeout: 30_000 }, async (t) => {
    if (!(await postgresReachable())) return t.skip(`PostgreSQL not reachable at ${PG_URL}: skipped`);
    const schema = `t_summary_${process.pid}_${Date.now().toString(36)}`;
    const store = new PostgresStore({ connectionString: PG_URL, schema });
    await store.open();
    const locker = new pg.Client({ connectionString: PG_URL });
    await locker.connect();
    try {
      await blockedWrites(store, async () => {
        await locker.query('BEGIN');
        // EXCLUSIVE: blocks INSERT (ROW EXCLUSIVE), lets SELECT through.
        await locker.query(`LOCK TABLE ${schema}.alerts IN EXCLUSIVE MODE`);
      }, async () => void (await locker.query('ROLLBACK')));
    } finally {
      await locker.end();
      await store.dropSchema();
      await store.close();
    }
  });

  it('sqlite (writer thread): summary and hubs answer from the main thread while the writer waits for the lock', { timeout: 30_000 }, async () => {
    const tmp = tempDir();
    const file = join(tmp.dir, 'blocked.db');
    const store = new SqliteWorkerStore(file);
    await store.open();
    const other = new Database(file);
    other.pragma('busy_timeout = 10000');
    try {
      await blockedWrites(store, async () => void other.prepare('BEGIN IMMEDIATE').run(), async () => void other.prepare('ROLLBACK').run());
    } finally {
      other.close();
      await store.close();
      tmp.cleanup();
    }
  });
});

describe('a write lets the event loop turn before it resolves', () => {
  // A drain chains commit → acks → the next messages → the next commit; a store whose write resolves without a
  // turn of the event loop (inline SQLite is synchronous) kept timers and the HTTP API waiting for seconds.
  for (const [name, make] of storeMakers('turn')) {
    it(name, async (t) => {
      const made = await make();
      if (typeof made === 'string') return t.skip(made);
      try {
        for (let k = 0; k < 3; k++) {
          let turned = false;
          setImmediate(() => (turned = true));
          await made.store.writeBatch([row('s1', 'h1', k, T0)], []);
          assert.ok(turned, `write ${k} resolved before the event loop could run anything else`);
        }
      } finally {
        await made.done();
      }
    });
  }
});
