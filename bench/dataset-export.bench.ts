/**
 * `dataset export` throughput (aggregator/dataset-export.ts): a database of alerts with the shipped model's 57
 * features (70 % of them marked) and sampled Normal flows is exported to flows.csv; rows/s wall and CPU, medians
 * of 3. References in the same run: reading the same keyset pages without decoding or writing (the database's
 * share), and the trainer's loader reading the written file back. SQLite always; PostgreSQL when reachable
 * (EXPORT_BENCH_PG, default the test URL). `EXPORT_BENCH_ROWS` (default 100,000 alerts + half as many samples),
 * `EXPORT_BENCH_ONLY=sqlite|postgres`.
 * `npm run bench -- dataset-export`.
 */
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { emit, median } from './report.ts';
import { encodeFeatures } from '../shared/feature-vector.ts';
import { Rng } from '../shared/random.ts';
import type { AlertRow, Store } from '../aggregator/store/store.ts';
import type { SampleRow } from '../aggregator/store/fleet-data.ts';
import { SqliteStore } from '../aggregator/store/sqlite.ts';
import { PostgresStore } from '../aggregator/store/postgres.ts';
import { exportDataset, PAGE_ROWS } from '../aggregator/dataset-export.ts';
import { loadDataset } from '../trainer/data/dataset.ts';

const ALERTS = Number(process.env.EXPORT_BENCH_ROWS ?? 100_000);
const SAMPLES = Math.floor(ALERTS / 2);
const RUNS = 3;
const PG_URL = process.env.EXPORT_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const NAMES = (JSON.parse(readFileSync(new URL('../models/iot-ids-lab-v1/manifest.json', import.meta.url), 'utf8')) as
  { preprocessing: { features: string[] } }).preprocessing.features;

const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/** Flow-like values: counts and ports as integers, rates and times as fractions over many magnitudes. */
function vector(rng: Rng): string {
  return encodeFeatures(NAMES.map((_, j) => (j % 2 ? Math.floor(rng.next() * 1500) : rng.next() * 10 ** Math.floor(rng.next() * 8))));
}

async function fill(store: Store, mark: (rows: unknown[][]) => Promise<void>): Promise<void> {
  const rng = new Rng(1);
  const T0 = Date.UTC(2026, 11, 1);
  await store.writeBatch([], [], { models: [{ version: 'm', release: 1, features: JSON.stringify(NAMES), firstSeen: T0 }] });
  const classes = ['Scan', 'Mirai', 'DoS'];
  for (let i = 0; i < ALERTS; i += 1000) {
    const alerts: AlertRow[] = [];
    const samples: SampleRow[] = [];
    const marks: unknown[][] = [];
    for (let k = i; k < Math.min(ALERTS, i + 1000); k++) {
      const hub = `h${k % 20}`;
      alerts.push({
        site: 's', hub, seq: k, ts: T0 + k, class: classes[k % 3], confidence: 0.9, count: 1, source: 'model', model: 'm',
        src: '10.0.0.2', dst: '10.0.0.9', sport: 40000, dport: 23, proto: 6, evidence: null, receivedAt: T0 + k, features: vector(rng),
      });
      if (k % 10 < 7) marks.push(['s', hub, k, k % 2 ? 'false-positive' : 'confirmed', k % 2 ? 'Normal' : classes[k % 3], 'bench', T0 + k]);
      if (k % 2 === 0) {
        samples.push({
          site: 's', hub, id: k.toString(16).padStart(16, '0'), ts: T0 + k, model: 'm', class: 'Normal', confidence: 0.99,
          src: null, dst: null, sport: null, dport: null, proto: null, features: vector(rng), receivedAt: T0 + k,
        });
      }
    }
    await store.writeBatch(alerts, [], { samples });
    await mark(marks);
  }
}

async function measure(kind: string, store: Store): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-export-bench-'));
  try {
    await exportDataset(store, { out: dir }); // warm-up
    const wall: number[] = [];
    const cpu: number[] = [];
    const read: number[] = [];
    const load: number[] = [];
    let rows = 0;
    for (let r = 0; r < RUNS; r++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const m = await exportDataset(store, { out: dir });
      rows = m.rows.total;
      cpu.push(rows / cpuSeconds(process.cpuUsage(c0)));
      wall.push(rows / ((performance.now() - t0) / 1000));

      // Reference 1: the same pages, read only.
      const t1 = performance.now();
      let n = 0;
      for (let after: { site: string; hub: string; seq: number } | undefined; ;) {
        const p = await store.fleet.featurePage({}, false, ['m'], after, PAGE_ROWS);
        n += p.length;
        if (p.length < PAGE_ROWS) break;
        after = p[p.length - 1];
      }
      for (let after: { site: string; hub: string; id: string } | undefined; ;) {
        const p = await store.fleet.samplePage({}, ['m'], after, PAGE_ROWS);
        n += p.length;
        if (p.length < PAGE_ROWS) break;
        after = p[p.length - 1];
      }
      read.push(n / ((performance.now() - t1) / 1000));

      // Reference 2: the trainer's loader on the file written.
      const t2 = performance.now();
      const ds = await loadDataset({ files: [join(dir, 'flows.csv')], labelColumn: 'Cat', keepConstant: true });
      load.push(ds.rows / ((performance.now() - t2) / 1000));
    }
    const reference = {
      'pages read only rows/s (same run)': Math.round(median(read)), 'trainer loadDataset rows/s on the file (same run)': Math.round(median(load)),
      rows, features: NAMES.length, runs: RUNS, loadavg1: loadavg()[0],
    };
    emit({ bench: 'dataset-export', metric: `${kind} export rows/s (wall)`, value: Math.round(median(wall)), unit: 'rows/s', reference });
    emit({ bench: 'dataset-export', metric: `${kind} export rows/s (CPU time)`, value: Math.round(median(cpu)), unit: 'rows/s', reference });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  const only = process.env.EXPORT_BENCH_ONLY;
  if (only !== 'postgres') await runSqlite();
  if (only !== 'sqlite') await runPostgres();
}

async function runSqlite(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-export-db-'));
  try {
    const file = join(dir, 'fleet.db');
    const store = new SqliteStore(file);
    await store.open();
    const db = new Database(file);
    const ins = db.prepare('INSERT INTO marks (site, hub, seq, verdict, class, "by", at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    await fill(store, async (rows) => void db.transaction(() => rows.forEach((r) => ins.run(...r)))());
    db.close();
    await measure('sqlite', store);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runPostgres(): Promise<void> {
  const schema = `bench_export_${process.pid}`;
  const pgStore = new PostgresStore({ connectionString: PG_URL, schema });
  try {
    await pgStore.open();
  } catch (e) {
    process.stderr.write(`dataset-export bench: PostgreSQL not reachable at ${PG_URL}, skipped (${(e as Error).message})\n`);
    return;
  }
  const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
  try {
    await c.connect();
    await fill(pgStore, async (rows) => {
      if (!rows.length) return;
      const cols = Array.from({ length: 7 }, (_, k) => rows.map((r) => r[k]));
      await c.query(`INSERT INTO marks (site, hub, seq, verdict, class, "by", at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[])`, cols);
    });
    await measure('postgres', pgStore);
  } finally {
    await c.end().catch(() => {});
    await pgStore.dropSchema();
    await pgStore.close();
  }
}
