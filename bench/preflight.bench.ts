/**
 * The rollout's pre-flight check (aggregator/rollout/preflight.ts) at its default bounds: a SQLite aggregator
 * database with 30,000 marked alerts carrying the shipped model's 57 features and 10,000 Normal samples; the check
 * scores the newest 20,000 marked alerts and 2,000 random samples with the shipped int8 model twice (as previous and
 * as new bundle). Wall time and rows/s, medians of 3. Reference in the same run: the same reads (pages and samples)
 * without decoding or scoring, the database's share. `PREFLIGHT_BENCH_ROWS` (default 20,000) sets the bound.
 * `npm run bench -- preflight`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { emit, median } from './report.ts';
import { encodeFeatures } from '../shared/feature-vector.ts';
import { Rng } from '../shared/random.ts';
import { openStore } from '../aggregator/store/open.ts';
import { loadBundle } from '../aggregator/rollout/bundle.ts';
import { DEFAULT_PREFLIGHT, preflight } from '../aggregator/rollout/preflight.ts';
import { RolloutStore } from '../aggregator/rollout/store.ts';

const SHIPPED = new URL('../models/iot-ids-lab-v1', import.meta.url).pathname;
const KEY = readFileSync(new URL('../models/dev-key/public.pem', import.meta.url), 'utf8');
const MAX_ROWS = Number(process.env.PREFLIGHT_BENCH_ROWS ?? DEFAULT_PREFLIGHT.maxRows);
const ALERTS = Math.ceil(MAX_ROWS * 1.5);
const SAMPLES = 10_000;
const RUNS = 3;

async function fill(file: string, names: string[]): Promise<void> {
  const store = await openStore(file);
  await store.close();
  const db = new Database(file);
  const rng = new Rng(1);
  const vector = () => encodeFeatures(names.map((_, j) => (j % 2 ? Math.floor(rng.next() * 1500) : rng.next() * 10 ** Math.floor(rng.next() * 8))));
  const classes = ['Scan', 'Mirai', 'DoS'];
  const T0 = Date.UTC(2026, 11, 1);
  db.prepare('INSERT INTO models (version, release, features, first_seen) VALUES (?, ?, ?, ?)').run('m', 1, JSON.stringify(names), T0);
  const feat = db.prepare('INSERT INTO alert_features (site, hub, seq, ts, model, features) VALUES (?, ?, ?, ?, ?, ?)');
  const mark = db.prepare('INSERT INTO marks (site, hub, seq, verdict, class, "by", at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const sample = db.prepare(`INSERT INTO samples (site, hub, id, ts, model, class, confidence, features, received_at)
    VALUES (?, ?, ?, ?, 'm', 'Normal', 0.99, ?, ?)`);
  db.transaction(() => {
    for (let k = 0; k < ALERTS; k++) {
      const hub = `h${k % 20}`;
      feat.run('s', hub, k, T0 + k, 'm', vector());
      mark.run('s', hub, k, k % 2 ? 'false-positive' : 'confirmed', k % 2 ? 'Normal' : classes[k % 3], 'bench', T0 + k);
    }
    for (let k = 0; k < SAMPLES; k++) sample.run('s', `h${k % 20}`, k.toString(16).padStart(16, '0'), T0 + k, vector(), T0 + k);
  })();
  db.close();
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-preflight-bench-'));
  try {
    const bundle = await loadBundle(SHIPPED, KEY, 'shipped');
    const file = join(dir, 'fleet.db');
    await fill(file, [...bundle.manifest.preprocessing.features]);
    const store = await RolloutStore.open(file);
    const limits = { ...DEFAULT_PREFLIGHT, maxRows: MAX_ROWS };
    const checks: number[] = [];
    const reads: number[] = [];
    let rows = 0;
    for (let r = 0; r < RUNS; r++) {
      let t = performance.now();
      const p = await preflight(store.labelled(), bundle, bundle, limits);
      checks.push(performance.now() - t);
      rows = p.rows.confirmed + p.rows.falsePositive + p.rows.samples;
      t = performance.now();
      const l = store.labelled();
      await l.modelFeatures();
      for (let before = Number.MAX_SAFE_INTEGER, read = 0; read < MAX_ROWS;) {
        const page = await l.markedPage(before, Math.min(1000, MAX_ROWS - read));
        if (!page.length) break;
        read += page.length;
        before = page[page.length - 1].markId;
      }
      await l.randomSamples(limits.samples);
      reads.push(performance.now() - t);
    }
    await store.close();
    const ms = median(checks);
    emit({
      bench: 'preflight', metric: 'check', value: Math.round(ms), unit: 'ms', rows, rowsPerS: Math.round(rows / (ms / 1000)),
      scoredTwice: true, runsMs: checks.map(Math.round), load: loadavg()[0],
      reference: { what: 'the same reads without decoding or scoring', ms: Math.round(median(reads)), ratio: Math.round((ms / median(reads)) * 10) / 10 },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
