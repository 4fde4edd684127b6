/**
 * The rollout's pre-flight check (aggregator/rollout/preflight.ts) on a SQLite aggregator database filled with
 * labelled rows as the feedback API and the hubs leave them: a bundle blind to a confirmed class is refused before
 * anything reaches the broker (in process and by the CLI, exit 3); a sound bundle passes and is sent to its canary;
 * --skip-preflight sends even the blind one, and says so in the row; without labelled rows the check passes, saying
 * there was nothing to compare; and the scorer's verdicts equal the hub's Classifier's on the same rows.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import mqtt from 'mqtt';
import { openStore } from '../../aggregator/store/open.ts';
import { runRollout, type RolloutOptions } from '../../aggregator/rollout/rollout.ts';
import { loadBundle as loadRolloutBundle } from '../../aggregator/rollout/bundle.ts';
import { DEFAULT_PREFLIGHT, preflight } from '../../aggregator/rollout/preflight.ts';
import { RolloutStore } from '../../aggregator/rollout/store.ts';
import { Classifier } from '../../edge/classifier.ts';
import { loadBundle as loadHubBundle, releaseBundle } from '../../edge/bundle-loader.ts';
import { encodeFeatures } from '../../shared/feature-vector.ts';
import { openScorer } from '../../shared/score.ts';
import { modelFileFor } from '../../shared/bundle-verify.ts';
import {
  FIXTURE_FEATURES, buildFixtureBundle, devKeyPair, type KeyPair,
} from '../edge/fixtures/bundle.ts';
import { startAedes, type TestBroker } from './broker.ts';
import { PG_URL, postgresReachable, tempDir, uniqueSchema } from './fixtures.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';

const tmp = tempDir('iot-ids-preflight-');
const quiet = () => undefined;
let keys: KeyPair;
let broker: TestBroker;
const bundles: Record<string, string> = {};

/**
 * The fixture model reading Protocol where Tot_Bwd_Pkts drives Mirai (the two features swapped in the manifest):
 * it never reports Mirai (those rows fall to Normal) and is as good as before on everything else.
 */
const blindBundle = (dir: string, k: KeyPair, version: string): Promise<string> =>
  buildFixtureBundle(dir, k, version, '2026-12-03T00:00:00Z', [2, 7]);

/** A fixture flow whose class-k feature carries `strength` (the model's class k), the rest low. */
const flow = (k: number, strength = 100): number[] => {
  const f = [5, 5, 5, 5, 5, 5, 80, 6];
  f[k] = strength;
  return f;
};

/** Runs statements on an aggregator database: a SQLite file or a PostgreSQL schema (`?` placeholders). */
interface Exec {
  run(sql: string, args: unknown[]): Promise<void>;
  close(): Promise<void>;
}

async function execFor(db: string): Promise<Exec> {
  if (!db.startsWith('postgres')) {
    const d = new Database(db);
    return { async run(sql, args) { d.prepare(sql).run(...args); }, async close() { d.close(); } };
  }
  const u = new URL(db);
  const schema = u.searchParams.get('schema')!;
  u.searchParams.delete('schema');
  const c = new pg.Client({ connectionString: u.toString(), options: `-c search_path=${schema}` });
  await c.connect();
  return {
    async run(sql, args) {
      let k = 0;
      await c.query(sql.replace(/\?/g, () => `$${++k}`), args);
    },
    async close() { await c.end(); },
  };
}

/** An aggregator database (the store's own tables) with one online hub running fixture-1. */
async function aggregatorDb(name: string, url?: string): Promise<string> {
  const db = url ?? join(tmp.dir, name);
  const store = await openStore(db);
  await store.close();
  const x = await execFor(db);
  await x.run('INSERT INTO hubs (site, hub, state, bundle, last_seen, last_stats_at, stats) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ['s1', 'h1', 'online', 'fixture-1', Date.now(), Date.now(), '{}']);
  await x.run('INSERT INTO models (version, release, features, first_seen) VALUES (?, ?, ?, ?)',
    ['fixture-1', 1, JSON.stringify(FIXTURE_FEATURES), Date.now()]);
  await x.close();
  return db;
}

/** Labelled rows: 20 confirmed Mirai, 15 confirmed DoS, 12 marked false positive, 30 samples; plus rows to skip. */
async function fillLabelled(db: string): Promise<void> {
  const x = await execFor(db);
  let seq = 0;
  const t = Date.now();
  const mark = (verdict: string, cls: string, at: number, undone: number | null) => x.run(
    'INSERT INTO marks (site, hub, seq, verdict, class, "by", at, undone_at, undone_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ['s1', 'h1', seq, verdict, cls, 'op', at, undone, undone === null ? null : 'op']);
  const add = async (values: number[], verdict: string, cls: string, model = 'fixture-1') => {
    seq++;
    await x.run('INSERT INTO alert_features (site, hub, seq, ts, model, features) VALUES (?, ?, ?, ?, ?, ?)',
      ['s1', 'h1', seq, t + seq, model, encodeFeatures(values)]);
    await mark(verdict, cls, t + seq, null);
  };
  for (let i = 0; i < 20; i++) await add(flow(2, 60 + i), 'confirmed', 'Mirai');
  for (let i = 0; i < 15; i++) await add(flow(1, 70 + i), 'confirmed', 'DoS');
  for (let i = 0; i < 12; i++) await add(flow(0, 50 + i), 'false-positive', 'Normal');
  // Undone marks do not count: this alert's effective mark is the earlier one (confirmed DoS), so DoS has 16 rows.
  await add(flow(1), 'confirmed', 'DoS');
  await mark('false-positive', 'Normal', t + seq + 1, t + seq + 2);
  await add(flow(2), 'confirmed', 'Mirai', 'unknown-model');
  await x.run('INSERT INTO models (version, release, features, first_seen) VALUES (?, ?, ?, ?)', ['other', 2, '["A","B"]', t]);
  await add([1, 2], 'confirmed', 'Mirai', 'other');
  for (let i = 0; i < 30; i++) {
    await x.run(`INSERT INTO samples (site, hub, id, ts, model, class, confidence, features, received_at)
      VALUES (?, ?, ?, ?, ?, 'Normal', 0.9, ?, ?)`, ['s1', 'h1', `${i}`.padStart(16, '0'), t, 'fixture-1', encodeFeatures(flow(0, 30 + i)), t]);
  }
  await x.close();
}

/** Everything published on the broker while `fn` runs. */
async function published<T>(fn: () => Promise<T>): Promise<{ result: T; topics: string[] }> {
  const c = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
  const topics: string[] = [];
  c.on('message', (topic) => topics.push(topic));
  await c.subscribeAsync('#', { qos: 1 });
  try {
    const result = await fn();
    await new Promise((r) => setTimeout(r, 200));
    return { result, topics };
  } finally {
    await c.endAsync();
  }
}

const options = (db: string, bundle: string, extra: Partial<RolloutOptions> = {}): RolloutOptions => ({
  bundleDir: bundle, previousDir: bundles.v1, canaries: [{ site: 's1', hub: 'h1' }], db,
  mqtt: { broker: broker.url, protocolVersion: 4 }, publicKeyPem: keys.publicKeyPem, privateKeyPem: keys.privateKeyPem,
  // No real hub: a sound bundle is sent, nobody confirms it within 300 ms, and the rollout ends there.
  watchMs: 1000, baselineMs: 1000, installTimeoutMs: 300, promoteTimeoutMs: 300, pollMs: 50,
  limits: { maxRateRatio: 2, maxFpShare: 0.1, minAlerts: 5 }, log: quiet, ...extra,
});

before(async () => {
  keys = devKeyPair();
  const b = (name: string) => join(tmp.dir, 'bundles', name);
  mkdirSync(join(tmp.dir, 'bundles'), { recursive: true });
  bundles.v1 = await buildFixtureBundle(b('v1'), keys, 'fixture-1', '2026-11-30T00:00:00Z');
  bundles.v2 = await buildFixtureBundle(b('v2'), keys, 'fixture-2', '2026-12-01T00:00:00Z');
  bundles.blind = await blindBundle(b('blind'), keys, 'fixture-no-mirai');
  broker = await startAedes();
});

after(async () => {
  await broker?.stop();
  tmp.cleanup();
});

async function figures(db: string): Promise<void> {
  await fillLabelled(db);
  const store = await RolloutStore.open(db);
  try {
    const prev = await loadRolloutBundle(bundles.v1, keys.publicKeyPem, 'previous');
    const p = await preflight(store.labelled(), prev, await loadRolloutBundle(bundles.blind, keys.publicKeyPem, 'next'), DEFAULT_PREFLIGHT);
    assert.equal(p.action, 'refuse');
    assert.deepEqual(p.rows, { confirmed: 36, falsePositive: 12, samples: 30 });
    assert.deepEqual(p.skipped, { unknownModel: 1, otherFeatures: 1, badVector: 0 });
    const byClass = Object.fromEntries(p.classes.map((c) => [c.class, c]));
    assert.deepEqual([byClass.Mirai.support, byClass.Mirai.recallOld, byClass.Mirai.recallNew], [20, 1, 0]);
    assert.deepEqual([byClass.DoS.support, byClass.DoS.recallOld, byClass.DoS.recallNew], [16, 1, 1]);
    assert.equal(p.normal.rows, 42);
    assert.equal(p.normal.alertedOld, p.normal.alertedNew);
    assert.match(p.reasons.join('; '), /^Mirai: recall 0 on 20 confirmed rows, 1 with fixture-1/);
    // The same bundle against itself: nothing to refuse. A higher margin than the drop lets it through too.
    const same = await preflight(store.labelled(), prev, await loadRolloutBundle(bundles.v2, keys.publicKeyPem, 'next'), DEFAULT_PREFLIGHT);
    assert.equal(same.action, 'pass');
    const lax = await preflight(store.labelled(), prev, await loadRolloutBundle(bundles.blind, keys.publicKeyPem, 'next'),
      { ...DEFAULT_PREFLIGHT, minSupport: 21 });
    assert.equal(lax.action, 'pass', 'Mirai (20 rows) below the support needed');
    // Bounded: at most maxRows marked alerts (the newest) and `samples` samples.
    const few = await preflight(store.labelled(), prev, prev, { ...DEFAULT_PREFLIGHT, maxRows: 10, samples: 5 });
    assert.equal(few.rows.confirmed + few.rows.falsePositive + few.skipped.unknownModel + few.skipped.otherFeatures, 10);
    assert.equal(few.rows.samples, 5);
  } finally {
    await store.close();
  }
}

test('pre-flight figures (sqlite): a bundle blind to Mirai loses its recall; skipped rows are counted', async () => {
  await figures(await aggregatorDb('figures.db'));
});

test('pre-flight figures (postgres): the same reads on PostgreSQL', async (t) => {
  if (!(await postgresReachable())) return t.skip(`no PostgreSQL at ${PG_URL}`);
  const schema = uniqueSchema('preflight');
  const url = `${PG_URL}?schema=${schema}`;
  try {
    await figures(await aggregatorDb('', url));
  } finally {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  }
});

test('a bundle that misses a confirmed class is refused before any hub sees it; a sound one passes and is sent', async () => {
  const db = await aggregatorDb('rollout.db');
  await fillLabelled(db);
  const lines: string[] = [];
  const refused = await published(() => runRollout(options(db, bundles.blind, { log: (l) => lines.push(l) })));
  assert.equal(refused.result.state, 'refused');
  assert.deepEqual(refused.topics, [], 'nothing published');
  assert.match(lines.join('\n'), /pre-flight: REFUSED/);
  assert.match(lines.join('\n'), /Mirai: 20 rows, recall 1 \(fixture-1\) → 0 \(fixture-no-mirai\)/);
  const store = await RolloutStore.open(db);
  try {
    const row = await store.get(refused.result.id);
    assert.equal(row?.state, 'refused');
    assert.ok(row?.finishedAt);
    assert.equal((row?.decision?.preflight as { action: string }).action, 'refuse');
    assert.match(String(row?.decision?.reasons), /Mirai: recall 0/);
    assert.equal((await store.active()).length, 0, 'a refused rollout does not block the next one');
  } finally {
    await store.close();
  }

  const sound = await published(() => runRollout(options(db, bundles.v2)));
  assert.ok(sound.topics.some((t) => t.startsWith('ids/v1/s1/h1/')), `sent to the canary (${sound.topics})`);
  assert.notEqual(sound.result.state, 'refused');
  const pf = sound.result.decision?.preflight as { action: string; classes: { class: string; recallNew: number }[] };
  assert.equal(pf.action, 'pass');
  assert.deepEqual(pf.classes.map((c) => [c.class, c.recallNew]), [['Mirai', 1], ['DoS', 1]]);
});

test('--skip-preflight sends even a blind bundle, and the row says the check was skipped', async () => {
  const db = await aggregatorDb('skip.db');
  await fillLabelled(db);
  const r = await published(() => runRollout(options(db, bundles.blind, { skipPreflight: true })));
  assert.notEqual(r.result.state, 'refused');
  assert.ok(r.topics.length > 0, 'sent');
  assert.deepEqual(r.result.decision?.preflight, { skipped: true });
});

test('no labelled rows: the check says there is nothing to compare and passes', async () => {
  const db = await aggregatorDb('empty.db');
  const lines: string[] = [];
  const r = await runRollout(options(db, bundles.blind, { log: (l) => lines.push(l) }));
  assert.notEqual(r.state, 'refused');
  const pf = r.decision?.preflight as { action: string; reasons: string[]; rows: Record<string, number> };
  assert.equal(pf.action, 'pass');
  assert.deepEqual(pf.rows, { confirmed: 0, falsePositive: 0, samples: 0 });
  assert.match(pf.reasons.join(' '), /nothing to compare/);
  assert.match(lines.join('\n'), /pre-flight: passed .*nothing to compare/);
});

test('the CLI: refused exits 3 with the figures on stderr; the flags reach the check', async () => {
  const db = await aggregatorDb('cli.db');
  await fillLabelled(db);
  writeFileSync(join(tmp.dir, 'public.pem'), keys.publicKeyPem);
  const run = (extra: string[]) => new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, ['bin/iot-ids.mjs', 'rollout', '--bundle', bundles.blind, '--previous', bundles.v1,
      '--canary', 's1/h1', '--db', db, '--broker', broker.url, '--mqtt-version', '4', '--key', join(tmp.dir, 'public.pem'),
      '--install-timeout', '300ms', '--poll', '50ms', ...extra], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
  const r = await run([]);
  assert.equal(r.code, 3, r.err);
  assert.equal(JSON.parse(r.out).state, 'refused');
  assert.match(r.err, /pre-flight: REFUSED/);
  const lax = await run(['--max-recall-drop', '1']);
  assert.match(lax.err, /pre-flight: passed/, lax.err);
  assert.notEqual(JSON.parse(lax.out).state, 'refused');
});

test("the scorer's verdicts equal the hub Classifier's on the same rows", async () => {
  // Rows across the whole range, including the Scan threshold's edge (0.99) and values outside [min, max].
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const rows = 256;
  const f = FIXTURE_FEATURES.length;
  const byName = new Float32Array(rows * f);
  for (let i = 0; i < rows; i++) {
    const v = flow(i % 5, i % 3 === 0 ? 30 + rnd() * 30 : rnd() * 130 - 10);
    for (let j = 0; j < f; j++) byName[i * f + j] = j === i % 7 ? v[j] * rnd() * 2 : v[j];
  }
  for (const name of ['v1', 'blind']) {
    const hub = await loadHubBundle(bundles[name], { publicKeyPem: keys.publicKeyPem });
    const cls = new Classifier(hub, 256);
    const b = await loadRolloutBundle(bundles[name], keys.publicKeyPem, 'bundle');
    const scorer = await openScorer(b.manifest, b.files[modelFileFor(b.manifest)]);
    try {
      // The hub reads its raw columns by name; the scorer takes values in the bundle's feature order.
      const order = scorer.features.map((x) => FIXTURE_FEATURES.indexOf(x as (typeof FIXTURE_FEATURES)[number]));
      const raw = new Float32Array(rows * f);
      const input = cls.input();
      input.fill(0);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < f; j++) {
          raw[i * f + j] = byName[i * f + order[j]];
          input[i * cls.inputs + cls.columns[j]] = raw[i * f + j];
        }
      }
      const hubVerdicts = Array.from((await cls.classify(rows)).classIdx.subarray(0, rows));
      const ours = Array.from(await scorer.classify(raw, rows));
      assert.deepEqual(ours, hubVerdicts, name);
      assert.ok(new Set(ours).size >= 3, `${name}: rows of several classes (${[...new Set(ours)]})`);
    } finally {
      await scorer.release();
      await cls.release();
      await releaseBundle(hub);
    }
  }
});
