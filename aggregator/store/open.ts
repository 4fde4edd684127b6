/** Picks the store from the --db value: a postgres:// URL → PostgreSQL, anything else → a SQLite file. */
import { SqliteStore } from './sqlite.ts';
import { PostgresStore } from './postgres.ts';
import type { Store } from './store.ts';

export const isPostgresUrl = (db: string): boolean => /^postgres(ql)?:\/\//i.test(db);

/**
 * Opens (and creates tables in) the store named by `db`. A PostgreSQL URL may carry `?schema=NAME` to keep the
 * aggregator's tables in their own schema.
 */
export async function openStore(db: string): Promise<Store> {
  let store: Store;
  if (isPostgresUrl(db)) {
    const u = new URL(db);
    const schema = u.searchParams.get('schema') ?? undefined;
    u.searchParams.delete('schema');
    store = new PostgresStore({ connectionString: u.toString(), schema });
  } else {
    store = new SqliteStore(db);
  }
  await store.open();
  return store;
}
