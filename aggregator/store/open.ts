/** Picks the store from the --db value: a postgres:// URL → PostgreSQL, anything else → a SQLite file. */
import { SqliteStore } from './sqlite.ts';
import { SqliteWorkerStore } from './sqlite-worker.ts';
import { PostgresStore } from './postgres.ts';
import type { Store } from './store.ts';

export const isPostgresUrl = (db: string): boolean => /^postgres(ql)?:\/\//i.test(db);

/**
 * Opens (and creates tables in) the store named by `db`. A PostgreSQL URL may carry `?schema=NAME` to keep the
 * aggregator's tables in their own schema. With `sqliteWriterThread`, a SQLite file gets its writes
 * on a worker thread.
 */
export async function openStore(db: string, opts: { sqliteWriterThread?: boolean } = {}): Promise<Store> {
  let store: Store;
  if (isPostgresUrl(db)) {
    const u = new URL(db);
    const schema = u.searchParams.get('schema') ?? undefined;
    u.searchParams.delete('schema');
    store = new PostgresStore({ connectionString: u.toString(), schema });
  } else {
    // Inline by default: on a loaded machine the writer thread's message passing costs more CPU than it saves
    // (bench/aggregator.bench.ts measures both); it keeps the HTTP API responsive during long writes, though.
    store = opts.sqliteWriterThread ? new SqliteWorkerStore(db) : new SqliteStore(db);
  }
  await store.open();
  return store;
}
