/** Fixtures for the fleet data tests: marks written straight into a store's database (as the feedback API would). */
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Store } from '../../aggregator/store/store.ts';
import type { PostgresStore } from '../../aggregator/store/postgres.ts';
import { PG_URL } from './fixtures.ts';

export interface MarkInput {
  site: string;
  hub: string;
  seq: number;
  verdict: 'false-positive' | 'confirmed';
  class: string;
  at: number;
  by?: string;
  undoneAt?: number;
}

/** Runs one statement on the store's own database (a second connection: SQLite file or PostgreSQL schema). */
export async function execOn(store: Store, sql: string, args: unknown[]): Promise<void> {
  if (store.kind === 'sqlite') {
    const db = new Database((store as unknown as { file: string }).file);
    try {
      db.pragma('busy_timeout = 10000');
      db.prepare(sql).run(...args);
    } finally {
      db.close();
    }
    return;
  }
  const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${(store as PostgresStore).schema}` });
  await c.connect();
  try {
    let i = 0;
    await c.query(sql.replace(/\?/g, () => `$${++i}`), args);
  } finally {
    await c.end();
  }
}

export function insertMark(store: Store, m: MarkInput): Promise<void> {
  return execOn(store, 'INSERT INTO marks (site, hub, seq, verdict, class, "by", at, undone_at, undone_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    [m.site, m.hub, m.seq, m.verdict, m.class, m.by ?? 'operator', m.at, m.undoneAt ?? null, m.undoneAt === undefined ? null : (m.by ?? 'operator')]);
}
