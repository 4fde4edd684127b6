/**
 * The feedback API's cost as the alert table grows (aggregator/marks-routes.ts): the per hub counts over the last
 * 24 h behind `GET /api/feedback` (computed at most once per 5 s, polled every 5 s by an open feedback view), `GET /api/alerts?limit=100` with each
 * alert's effective mark, one `POST .../mark`, and an incident mark of FEEDBACK_BENCH_INCIDENT alerts in one
 * transaction. Reference in the same run: `GET /api/summary`. Alerts from 20 hubs spread over the last 24 h, 10 %
 * of them marked. SQLite always; PostgreSQL when reachable (FEEDBACK_BENCH_PG, default the test URL).
 * `FEEDBACK_BENCH_ROWS` (default 200,000), `FEEDBACK_BENCH_ONLY=sqlite|postgres`. `npm run bench -- feedback`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { emit, median, percentile } from './report.ts';
import type { AlertRow, Store } from '../aggregator/store/store.ts';
import { HOUR_MS } from '../aggregator/store/store.ts';
import { SqliteStore } from '../aggregator/store/sqlite.ts';
import { PostgresStore } from '../aggregator/store/postgres.ts';
import { buildHttp } from '../aggregator/http.ts';
import { LiveBus } from '../aggregator/live.ts';

const ROWS = Number(process.env.FEEDBACK_BENCH_ROWS ?? 200_000);
const INCIDENT = Number(process.env.FEEDBACK_BENCH_INCIDENT ?? 10_000);
const CALLS = 20;
const PG_URL = process.env.FEEDBACK_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const NOW = Date.UTC(2026, 11, 4, 12);

async function fill(store: Store): Promise<void> {
  const classes = ['Scan', 'Mirai', 'DoS'];
  for (let i = 0; i < ROWS; i += 2000) {
    const alerts: AlertRow[] = [];
    for (let k = i; k < Math.min(ROWS, i + 2000); k++) {
      // Oldest first, the last INCIDENT rows of hub h0 within the last minute (the incident's alerts).
      const ts = NOW - 24 * HOUR_MS + Math.floor((k / ROWS) * 24 * HOUR_MS);
      alerts.push({
        site: 's', hub: `h${k % 20}`, seq: k, ts, class: classes[k % 3], confidence: 0.9, count: 1, source: 'model', model: 'm',
        src: '10.0.0.2', dst: '10.0.0.9', sport: 40000, dport: 23, proto: 6, evidence: null, receivedAt: ts,
      });
    }
    await store.writeBatch(alerts, i === 0 ? Array.from({ length: 20 }, (_, h) => ({ site: 's', hub: `h${h}`, seenAt: NOW, state: 'online' as const, bundle: 'b-1' })) : []);
  }
  for (let k = 0; k < ROWS; k += 10) {
    await store.marks.markAlert('s', `h${k % 20}`, k, { verdict: k % 20 ? 'false-positive' : 'confirmed', class: k % 20 ? 'Normal' : undefined, by: 'bench', at: NOW });
  }
}

async function timed(n: number, f: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    ms.push(performance.now() - t0);
  }
  return ms;
}

async function one(kind: 'sqlite' | 'postgres'): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-fb-bench-'));
  const schema = `fb_bench_${process.pid}`;
  const store: Store = kind === 'sqlite' ? new SqliteStore(join(dir, 'fb.db')) : new PostgresStore({ connectionString: PG_URL, schema });
  await store.open();
  try {
    const t0 = performance.now();
    await fill(store);
    const fillS = (performance.now() - t0) / 1000;
    if (store instanceof PostgresStore) await (store as unknown as { pool: pg.Pool }).pool.query('ANALYZE');
    const app = await buildHttp({
      store, live: new LiveBus(), token: 'bench-token', now: () => NOW, openIncidents: () => [], lastTotals: () => undefined,
      summaryExtras: () => ({ incidents: { open: 0 }, invalid: { total: 0, byReason: {} }, ingest: { received: 0, stored: 0, duplicates: 0, batches: 0, storeErrors: 0 }, uptimeSec: 1 }),
    });
    const headers = { authorization: 'Bearer bench-token' };
    const get = (url: string) => app.inject({ method: 'GET', url, headers }).then((r) => {
      if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode} ${r.body}`);
    });
    try {
      const base = { bench: 'feedback', store: kind, rows: ROWS, marks: ROWS / 10, loadAverage: loadavg()[0] };
      const summary = await timed(CALLS, () => get('/api/summary'));
      // The computation (what the route runs at most once per FEEDBACK_CACHE_MS), then the route as served.
      const counts = await timed(CALLS, () => Promise.all([store.marks.counts(NOW - 24 * HOUR_MS, NOW - HOUR_MS), store.hubs(), store.marks.reportedClasses()]));
      const feedback = await timed(CALLS, () => get('/api/feedback'));
      const alerts = await timed(CALLS, () => get('/api/alerts?limit=100'));
      let seq = 1;
      const mark = await timed(200, () => app.inject({
        method: 'POST', url: `/api/alerts/s/h${seq % 20}/${seq++}/mark`, headers: { ...headers, 'content-type': 'application/json' },
        payload: '{"verdict":"false-positive"}',
      }));
      const ref = { summaryMedianMs: median(summary), summaryP95Ms: percentile(summary, 95) };
      emit({ ...base, metric: 'feedback computation (24 h counts) median', value: median(counts), unit: 'ms', p95: percentile(counts, 95), reference: ref });
      emit({ ...base, metric: 'GET /api/feedback median (cached 5 s)', value: median(feedback), unit: 'ms', p95: percentile(feedback, 95), reference: ref });
      emit({ ...base, metric: 'GET /api/alerts?limit=100 (with marks) median', value: median(alerts), unit: 'ms', p95: percentile(alerts, 95), reference: ref });
      emit({ ...base, metric: 'POST mark median', value: median(mark), unit: 'ms', p95: percentile(mark, 95), reference: ref });
      // An incident over the newest INCIDENT alerts of every hub (a minute's worth of a flood, by received_at).
      const from = NOW - Math.ceil((INCIDENT / ROWS) * 24 * HOUR_MS);
      const t1 = performance.now();
      const r = await store.marks.markIncident({ id: 'bench', class: 'Scan', hubs: Array.from({ length: 20 }, (_, h) => ({ site: 's', hub: `h${h}` })), from, to: NOW },
        { verdict: 'confirmed', by: 'bench', at: NOW }, 1_000_000);
      emit({ ...base, metric: 'incident mark', value: performance.now() - t1, unit: 'ms', marked: 'marked' in r ? r.marked : -1, fillSeconds: fillS });
    } finally {
      await app.close();
    }
  } finally {
    if (store instanceof PostgresStore) await store.dropSchema().catch(() => {});
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 1000 });
  c.on('error', () => {});
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

export async function run(): Promise<void> {
  const only = process.env.FEEDBACK_BENCH_ONLY;
  if (only !== 'postgres') await one('sqlite');
  if (only !== 'sqlite') {
    if (await pgReachable()) await one('postgres');
    else process.stderr.write(`feedback bench: PostgreSQL not reachable at ${PG_URL}: skipped\n`);
  }
}
