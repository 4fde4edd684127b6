/** Test fixtures for the aggregator: alert rows and payloads, temp dirs, the local PostgreSQL. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import pg from 'pg';
import type { AlertInput } from '../../shared/payloads.ts';
import type { AlertRow, Store } from '../../aggregator/store/store.ts';
import { SqliteStore } from '../../aggregator/store/sqlite.ts';
import { SqliteWorkerStore } from '../../aggregator/store/sqlite-worker.ts';
import { PostgresStore } from '../../aggregator/store/postgres.ts';

export const PG_URL = process.env.IOT_IDS_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

export function row(site: string, hub: string, seq: number, ts: number, cls = 'Mirai', count = 1): AlertRow {
  return {
    site, hub, seq, ts, class: cls, confidence: 0.9, count, source: 'model', model: 'm-1',
    src: '10.0.0.2', dst: '10.0.0.9', sport: 40000, dport: 23, proto: 6, evidence: null, receivedAt: ts,
  };
}

export function alertPayload(site: string, hub: string, seq: number, cls = 'Mirai', ts = Date.now()): AlertInput {
  return {
    v: 1, site, hub, seq, ts, class: cls, confidence: 0.93, model: 'test-model',
    flow: { src: '10.0.0.2', dst: '10.0.0.9', sport: 40000 + (seq % 1000), dport: 23, proto: 6 },
  };
}

export function tempDir(prefix = 'iot-ids-agg-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** True when the local PostgreSQL answers within a second. */
export async function postgresReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 1000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

export const uniqueSchema = (tag: string): string =>
  `t_${tag}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An opened store and how to dispose of it, or the reason its suite skips. */
export type StoreMaker = () => Promise<{ store: Store; done: () => Promise<void> } | string>;

/**
 * Every store implementation, opened fresh, for suites that must hold on each of them (SQLite inline, SQLite on its
 * writer thread, PostgreSQL in a schema of its own named after `tag`, skipped when PostgreSQL is not reachable).
 */
export function storeMakers(tag: string): [name: string, make: StoreMaker][] {
  const sqlite = (open: (file: string) => Store): StoreMaker => async () => {
    const tmp = tempDir();
    const store = open(join(tmp.dir, `${tag}.db`));
    await store.open();
    return { store, done: async () => (await store.close(), tmp.cleanup()) };
  };
  return [
    ['sqlite', sqlite((f) => new SqliteStore(f))],
    ['sqlite (writer thread)', sqlite((f) => new SqliteWorkerStore(f))],
    ['postgres', async () => {
      if (!(await postgresReachable())) return `PostgreSQL not reachable at ${PG_URL}: skipped`;
      const store = new PostgresStore({ connectionString: PG_URL, schema: uniqueSchema(tag) });
      await store.open();
      return { store, done: async () => (await store.dropSchema(), await store.close()) };
    }],
  ];
}

/**
 * Opens `make`'s store before the enclosing describe's tests and disposes of it after them. `store` is set once
 * the suite runs; `skip` says why there is none (a test then calls t.skip(s.skip)).
 */
export function openStore(make: StoreMaker): { store: Store; skip?: string } {
  const s = {} as { store: Store; skip?: string };
  let done: (() => Promise<void>) | undefined;
  before(async () => {
    const r = await make();
    if (typeof r === 'string') s.skip = r;
    else ({ store: s.store, done } = r);
  });
  after(async () => {
    await done?.();
  });
  return s;
}
