/**
 * Fault runs (`npm run bench -- faults`, minutes; not part of `npm test`): real processes, real failures.
 * Every case starts its own mosquitto (persistence false, max_queued_messages 0), aggregators as `iot-ids
 * aggregator` child processes on PostgreSQL (a schema of their own per case), and hubs as `iot-ids hub --flows -`
 * child processes (the hand-made tiny model, every flow an attack, so every flow is an alert) fed at a fixed rate
 * by this process; faults are SIGKILLs. Then the database is checked: per hub, rows must be exactly seq 0..last
 * with `last` the newest seq the hub queued (hubs number without gaps), so "lost" counts holes and "duplicates"
 * counts rows past one per seq.
 *
 *   broker      SIGKILL + restart of the broker mid-stream (it comes back empty)
 *   aggregator  SIGKILL + restart of the aggregator mid-stream
 *   hub         SIGKILL of the hub mid-stream, restarted on its queue folder with the rest of the input
 *   group       two aggregators in one --group, one SIGKILLed mid-stream and not restarted: time until all stored
 *   drain       150k alerts queued at the broker, then the aggregator starts: peak RSS, /api/summary latency, CPU
 *               per alert; PostgreSQL and SQLite (FAULT_DRAIN_DB), the command as it ships (FAULT_DRAIN_HEAP=bounded adds
 *               heap limits in NODE_OPTIONS)
 *
 * FAULTS=broker,hub runs a subset; FAULT_ALERTS scales the streams (default 30,000; group ×70/30; drain 150,000).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { emit, percentile } from './report.ts';
import { tinyBundle } from './hub-fixtures.ts';
import { FIXTURE_CSV_HEADER, fixtureCsvRow } from '../test/edge/fixtures/bundle.ts';
import { Mosquitto, hasMosquitto } from '../test/edge/fixtures/brokers.ts';
import { PG_URL, postgresReachable, uniqueSchema } from '../test/aggregator/fixtures.ts';
import { freePort, waitPort } from '../test/helpers/net.ts';
import { PROJECT_ROOT } from '../test/helpers/shared-data.ts';
import { PostgresStore } from '../aggregator/store/postgres.ts';
import { SqliteStore } from '../aggregator/store/sqlite.ts';
import { FileStore } from '../edge/offline-queue.ts';
import { seqOf } from '../edge/publisher.ts';
import { encodeAlert } from '../shared/payloads.ts';
import { hubTopic } from '../shared/topics.ts';

const BIN = join(PROJECT_ROOT, 'bin', 'iot-ids.mjs');
const N = Number(process.env.FAULT_ALERTS ?? 30_000);
const RATE = Number(process.env.FAULT_RATE ?? 6_000); // rows/s per hub
const TOKEN = 'fault-bench';
const log = (s: string) => process.stderr.write(`faults: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Child {
  proc: ChildProcess;
  exited: Promise<number | null>;
  tail: () => string;
}

/** `nodeOptions`: V8/Node flags for the child (NODE_OPTIONS), e.g. the aggregator's heap bounds. */
function cli(args: string[], nodeOptions?: string): Child {
  const env = { ...process.env };
  if (nodeOptions) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} ${nodeOptions}`.trim();
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'ignore', 'pipe'], cwd: PROJECT_ROOT, env });
  let err = '';
  proc.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  proc.stdin!.on('error', () => undefined); // a killed hub's stdin
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  process.once('exit', () => proc.kill('SIGKILL'));
  return { proc, exited, tail: () => err };
}

async function kill(c: Child): Promise<void> {
  c.proc.kill('SIGKILL');
  await c.exited;
}

interface Agg extends Child {
  port: number;
}

async function aggregator(broker: string, db: string, port: number, group?: string, nodeOptions?: string, args: string[] = []): Promise<Agg> {
  const extra = (process.env.FAULT_AGG_ARGS ?? '').split(' ').filter(Boolean); // e.g. "--max-pending 500"
  const c = cli(['aggregator', '--broker', broker, '--db', db, '--http', String(port), '--token', TOKEN, ...(group ? ['--group', group] : []), ...args, ...extra], nodeOptions);
  await waitPort(port, 60_000, 'aggregator').catch((e) => {
    throw new Error(`${(e as Error).message}: ${c.tail()}`);
  });
  return { ...c, port };
}

/** The dashboard page (no database): how long the process itself takes to answer. */
async function page(port: number): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`http://127.0.0.1:${port}/?token=${TOKEN}`);
  await r.text();
  return performance.now() - t0;
}

async function summary(port: number): Promise<{ ms: number; alerts: number }> {
  const t0 = performance.now();
  const r = await fetch(`http://127.0.0.1:${port}/api/summary`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const body = (await r.json()) as { alerts: number };
  return { ms: performance.now() - t0, alerts: body.alerts };
}

interface Hub extends Child {
  queueDir: string;
}

function hub(broker: string, site: string, id: string, queueDir: string, bundle: string, keyFile: string): Hub {
  const c = cli(['hub', '--bundle', bundle, '--key', keyFile, '--flows', '-', '--shed', 'block', '--broker', broker,
    '--site', site, '--hub', id, '--queue-dir', queueDir, '--exit-at-end', '--timeout-ms', '240000', '--stats-ms', '0']);
  c.proc.stdin!.write(FIXTURE_CSV_HEADER + '\n');
  return { ...c, queueDir };
}

/** Writes rows [from, to) to the hub's stdin at RATE rows/s; `at(i)` runs before row i (the fault). */
async function feed(h: Hub, from: number, to: number, at?: { row: number; fn: () => Promise<void> }): Promise<void> {
  const chunk = 200;
  const t0 = performance.now();
  for (let i = from; i < to; i += chunk) {
    if (at && i <= at.row && at.row < i + chunk) await at.fn();
    if (h.proc.exitCode !== null || h.proc.killed) return;
    const rows: string[] = [];
    // Every row an attack (classes 1..4): every flow is an alert.
    for (let k = i; k < Math.min(to, i + chunk); k++) rows.push(fixtureCsvRow(k, 1 + (k % 4)));
    if (!h.proc.stdin!.write(rows.join('\n') + '\n')) await new Promise((r) => h.proc.stdin!.once('drain', r));
    const due = t0 + ((i + chunk - from) / RATE) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
  }
}

const endInput = (h: Hub) => h.proc.stdin!.end();

interface HubCheck {
  hub: string;
  rows: number;
  lastSeq: number;
  lost: number;
  duplicates: number;
}

/** Per hub: the rows stored against 0..last, where last is the newest seq in the hub's queue folder. */
async function check(store: PostgresStore, site: string, hubs: Hub[], ids: string[]): Promise<HubCheck[]> {
  const out: HubCheck[] = [];
  for (let i = 0; i < hubs.length; i++) {
    const q = new FileStore(join(hubs[i].queueDir, 'offline-queue'));
    const last = q.lastPut();
    await q.close();
    const lastSeq = last === undefined ? -1 : seqOf(last)!;
    const r = await countSeqs(store, site, ids[i], lastSeq);
    out.push({ hub: ids[i], rows: r.rows, lastSeq, lost: lastSeq + 1 - r.distinctInRange, duplicates: r.rows - r.distinct });
  }
  return out;
}

async function countSeqs(store: PostgresStore, site: string, hub: string, last: number) {
  const pool = (store as unknown as { pool: { query: (s: string, a: unknown[]) => Promise<{ rows: Record<string, string>[] }> } }).pool;
  const r = await pool.query(`SELECT COUNT(*) n, COUNT(DISTINCT seq) d, COUNT(DISTINCT seq) FILTER (WHERE seq BETWEEN 0 AND $3) i
    FROM alerts WHERE site = $1 AND hub = $2`, [site, hub, last]);
  return { rows: Number(r.rows[0].n), distinct: Number(r.rows[0].d), distinctInRange: Number(r.rows[0].i) };
}

async function storedCount(store: PostgresStore): Promise<number> {
  return (await store.summary()).rawAlerts;
}

interface Env {
  dir: string;
  bundle: string;
  keyFile: string;
}

async function withCase<T>(env: Env, name: string, fn: (mq: Mosquitto, db: string, store: PostgresStore) => Promise<T>): Promise<T> {
  const mq = await Mosquitto.create();
  const schema = uniqueSchema(`f${name}`);
  const db = `${PG_URL}?schema=${schema}`;
  const store = new PostgresStore({ connectionString: PG_URL, schema });
  await store.open();
  try {
    return await fn(mq, db, store);
  } finally {
    await store.dropSchema().catch(() => undefined);
    await store.close();
    await mq.stop();
  }
}

function report(metric: string, checks: HubCheck[], extra: Record<string, unknown>): void {
  const lost = checks.reduce((s, c) => s + c.lost, 0);
  const duplicates = checks.reduce((s, c) => s + c.duplicates, 0);
  const alerts = checks.reduce((s, c) => s + c.lastSeq + 1, 0);
  emit({ bench: 'faults', metric, value: lost, unit: 'alerts lost', duplicates, alerts, hubs: checks, loadAverage: loadavg()[0], ...extra });
  log(`${metric}: ${alerts} alerts, ${lost} lost, ${duplicates} duplicate rows`);
}

async function brokerCase(env: Env): Promise<void> {
  await withCase(env, 'broker', async (mq, db, store) => {
    const port = await freePort();
    const agg = await aggregator(mq.url, db, port);
    const h = hub(mq.url, 'f', 'b1', join(env.dir, 'q-broker'), env.bundle, env.keyFile);
    await feed(h, 0, N, { row: N / 2, fn: async () => {
      log('broker: SIGKILL mid-stream');
      await mq.kill();
      await sleep(1000);
      await mq.start();
    } });
    endInput(h);
    const code = await h.exited;
    const checks = await check(store, 'f', [h], ['b1']);
    await kill(agg);
    report('broker SIGKILL + restart mid-stream (persistence false)', checks, { hubExit: code, hubLog: h.tail().split('\n').slice(-3) });
  });
}

async function aggregatorCase(env: Env): Promise<void> {
  await withCase(env, 'agg', async (mq, db, store) => {
    const port = await freePort();
    let agg = await aggregator(mq.url, db, port);
    const h = hub(mq.url, 'f', 'a1', join(env.dir, 'q-agg'), env.bundle, env.keyFile);
    await feed(h, 0, N, { row: N / 2, fn: async () => {
      log('aggregator: SIGKILL mid-stream');
      await kill(agg);
      await sleep(1000);
      agg = await aggregator(mq.url, db, port);
    } });
    endInput(h);
    const code = await h.exited;
    const checks = await check(store, 'f', [h], ['a1']);
    await kill(agg);
    report('aggregator SIGKILL + restart mid-stream', checks, { hubExit: code, hubLog: h.tail().split('\n').slice(-3) });
  });
}

async function hubCase(env: Env): Promise<void> {
  await withCase(env, 'hub', async (mq, db, store) => {
    const port = await freePort();
    const agg = await aggregator(mq.url, db, port);
    const qdir = join(env.dir, 'q-hub');
    let h = hub(mq.url, 'f', 'h1', qdir, env.bundle, env.keyFile);
    let killedAt = 0;
    await feed(h, 0, N / 2 + 1000, { row: N / 2, fn: async () => {
      log('hub: SIGKILL mid-stream');
      const q = new FileStore(join(qdir, 'offline-queue'));
      killedAt = q.size();
      await q.close();
      await kill(h);
    } });
    // The rest of the stream (rows the killed hub had not read are input lost with it, not alerts): N more rows,
    // so that at least N alerts go through.
    h = hub(mq.url, 'f', 'h1', qdir, env.bundle, env.keyFile);
    await feed(h, N / 2, N / 2 + N);
    endInput(h);
    const code = await h.exited;
    const checks = await check(store, 'f', [h], ['h1']);
    await kill(agg);
    report('hub SIGKILL mid-stream, restarted on its queue folder', checks, { hubExit: code, unconfirmedAtKill: killedAt, hubLog: h.tail().split('\n').slice(-3) });
  });
}

async function groupCase(env: Env): Promise<void> {
  const perHub = Math.round((N * 70) / 30 / 2);
  await withCase(env, 'group', async (mq, db, store) => {
    const a = await aggregator(mq.url, db, await freePort(), 'g');
    const b = await aggregator(mq.url, db, await freePort(), 'g');
    const ids = ['g1', 'g2'];
    const hubs = ids.map((id) => hub(mq.url, 'f', id, join(env.dir, `q-${id}`), env.bundle, env.keyFile));
    let killedAt = 0;
    await Promise.all(hubs.map((h, i) => feed(h, 0, perHub, i === 0 ? { row: perHub / 2, fn: async () => {
      log('group: SIGKILL one of two members mid-stream (not restarted)');
      killedAt = performance.now();
      await kill(b);
    } } : undefined)));
    hubs.forEach(endInput);
    const streamEnd = performance.now();
    // The hubs' last rows are classified and queued within moments; their queues then say how many there are.
    const deadline = streamEnd + 120_000;
    let allAt: number | undefined;
    const exits = Promise.all(hubs.map((h) => h.exited));
    let exited = false;
    void exits.then(() => (exited = true));
    while (performance.now() < deadline) {
      if (exited) {
        const n = await storedCount(store);
        const checks = await check(store, 'f', hubs, ids);
        if (checks.every((c) => c.lost === 0) && n === checks.reduce((s, c) => s + c.lastSeq + 1, 0)) {
          allAt ??= performance.now();
          break;
        }
      }
      await sleep(250);
    }
    // The hubs exit once every alert is confirmed by the watermark: that moment is when all were stored.
    const checks = await check(store, 'f', hubs, ids);
    await kill(a);
    report('group of two, one member SIGKILLed mid-stream and not restarted', checks, {
      secondsFromStreamEndToAllStored: allAt === undefined ? null : Math.round((allAt - streamEnd) / 100) / 10,
      secondsFromKillToStreamEnd: Math.round((streamEnd - killedAt) / 100) / 10,
      hubExits: await Promise.race([exits, sleep(1).then(() => 'running')]),
      sessionExpirySec: 15,
    });
  });
}

/** Heap limits on top of what the command sets itself (FAULT_DRAIN_HEAP=bounded; aggregator/README.md, "Memory and the API while draining"). */
const BOUNDED_HEAP = process.env.FAULT_DRAIN_NODE_OPTIONS ?? '--max-old-space-size=128 --max-semi-space-size=4';

const procStatus = (pid: number, field: 'VmRSS' | 'VmHWM'): number =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** CPU seconds the process has used (user + system, /proc/PID/stat at 100 ticks a second). */
const procCpu = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

/**
 * Ten hubs' alerts queued at the broker while the aggregator is away, then it starts: its peak RSS and how the API
 * answers meanwhile, per database (FAULT_DRAIN_DB: postgres, sqlite, sqlite-thread) and heap setting
 * (FAULT_DRAIN_HEAP: default = as the command ships, bounded = BOUNDED_HEAP in NODE_OPTIONS as well).
 */
async function drainCase(env: Env): Promise<void> {
  const dbs = (process.env.FAULT_DRAIN_DB ?? 'postgres,sqlite').split(',');
  const heaps = (process.env.FAULT_DRAIN_HEAP ?? 'default').split(',');
  for (const kind of dbs) {
    for (const heap of heaps) {
      if (!['postgres', 'sqlite', 'sqlite-thread'].includes(kind)) throw new Error(`FAULT_DRAIN_DB: unknown "${kind}"`);
      if (!['default', 'bounded'].includes(heap)) throw new Error(`FAULT_DRAIN_HEAP: unknown "${heap}"`);
      await drainOnce(env, kind, heap === 'bounded' ? BOUNDED_HEAP : undefined);
    }
  }
}

async function drainOnce(env: Env, kind: string, nodeOptions: string | undefined): Promise<void> {
  const total = Number(process.env.FAULT_DRAIN ?? 150_000);
  await withCase(env, 'drain', async (mq, pgDb, store) => {
    const file = join(env.dir, `drain-${Date.now()}.db`);
    const db = kind === 'postgres' ? pgDb : file;
    const args = kind === 'sqlite-thread' ? ['--sqlite-thread'] : [];
    const port = await freePort();
    // The aggregator's session exists (a graceful stop leaves it queueing at the broker) ...
    let agg = await aggregator(mq.url, db, port, undefined, nodeOptions, args);
    await sleep(2000);
    // This process's first fetch loads and compiles Node's HTTP client (tens of ms): paid here, not by the first
    // measured answer.
    await summary(port);
    await page(port);
    const idleRss = Math.round(procStatus(agg.proc.pid!, 'VmRSS'));
    agg.proc.kill('SIGTERM');
    await agg.exited;
    // ... while ten hubs' alerts pile up there.
    const pub = await mqtt.connectAsync(mq.url, { protocolVersion: 4, clientId: 'fault-drain-pub' });
    let pending: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      const h = `d${i % 10}`;
      const payload = encodeAlert({ v: 1, site: 'f', hub: h, seq: Math.floor(i / 10), floor: 0, ts: Date.now(), class: 'DoS',
        confidence: 0.9, model: 'fault', probabilities: { Normal: 0.1, DoS: 0.9 },
        flow: { src: `10.0.${i % 250}.1`, dst: '10.0.0.9', sport: i % 65536, dport: 80, proto: 6 } });
      pending.push(pub.publishAsync(hubTopic('f', h, 'alert'), payload, { qos: 1 }));
      if (pending.length >= 1000) (await Promise.all(pending), (pending = []));
    }
    await Promise.all(pending);
    await pub.endAsync();
    log(`drain (${kind}, heap ${nodeOptions ?? 'default'}): ${total} alerts queued at the broker; starting the aggregator`);
    const t0 = performance.now();
    agg = await aggregator(mq.url, db, port, undefined, nodeOptions, args);
    const cpu0 = procCpu(agg.proc.pid!);
    const lat: number[] = [];
    const latAt: number[] = [];
    const pageLat: number[] = [];
    let rssMax = 0;
    let stored = 0;
    while (stored < total && performance.now() - t0 < 300_000) {
      const [s, p] = await Promise.all([summary(port).catch(() => undefined), page(port).catch(() => undefined)]);
      if (s) (lat.push(s.ms), latAt.push((performance.now() - t0) / 1000), (stored = s.alerts));
      if (p !== undefined) pageLat.push(p);
      rssMax = Math.max(rssMax, procStatus(agg.proc.pid!, 'VmRSS'));
      await sleep(100);
    }
    const drainS = (performance.now() - t0) / 1000;
    const hwm = procStatus(agg.proc.pid!, 'VmHWM');
    const cpu = procCpu(agg.proc.pid!) - cpu0;
    await kill(agg);
    const rows = kind === 'postgres' ? await storedCount(store) : await sqliteCount(file);
    emit({
      bench: 'faults', metric: 'drain a backlog queued at the broker: aggregator peak RSS (VmHWM)', value: Math.round(hwm), unit: 'MB',
      db: kind, nodeOptions: nodeOptions ?? '(none: the command as it ships)',
      reference: { metric: '/api/summary latency while draining, max and p99', max: Math.round(Math.max(...lat)), p99: Math.round(percentile(lat, 99)), p90: Math.round(percentile(lat, 90)), p50: Math.round(percentile(lat, 50)), unit: 'ms', samples: lat.length },
      // The three slowest answers, with when they came (seconds since the aggregator was started).
      slowestSummaries: lat.map((ms, i) => [Math.round(latAt[i] * 10) / 10, Math.round(ms)]).sort((a, b) => b[1] - a[1]).slice(0, 3),
      pageWithoutDatabaseMs: { max: Math.round(Math.max(...pageLat)), p90: Math.round(percentile(pageLat, 90)), p50: Math.round(percentile(pageLat, 50)) },
      idleRssMB: idleRss, alerts: total, stored: rows, sampledRssMaxMB: Math.round(rssMax), drainSeconds: Math.round(drainS * 10) / 10,
      alertsPerSecond: Math.round(total / drainS), cpuMicrosPerAlert: Math.round((cpu / total) * 1e6 * 10) / 10, loadAverage: loadavg()[0],
    });
    log(`drain (${kind}): ${rows}/${total} stored in ${drainS.toFixed(1)} s, peak RSS ${hwm.toFixed(0)} MB, summary p50 ${percentile(lat, 50).toFixed(0)} max ${Math.max(...lat).toFixed(0)} ms`);
  });
}

async function sqliteCount(file: string): Promise<number> {
  const s = new SqliteStore(file);
  await s.open();
  try {
    return (await s.summary()).rawAlerts;
  } finally {
    await s.close();
  }
}

const CASES: Record<string, (env: Env) => Promise<void>> = {
  broker: brokerCase, aggregator: aggregatorCase, hub: hubCase, group: groupCase, drain: drainCase,
};

export async function run(): Promise<void> {
  if (!hasMosquitto()) return void log('mosquitto not installed: skipped');
  if (!(await postgresReachable())) return void log(`PostgreSQL not reachable at ${PG_URL}: skipped`);
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-faults-'));
  process.setMaxListeners(100); // one exit hook per child process
  try {
    const b = await tinyBundle();
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, b.keys.publicKeyPem);
    const env: Env = { dir, bundle: b.dir, keyFile };
    const names = (process.env.FAULTS ?? Object.keys(CASES).join(',')).split(',');
    for (const n of names) {
      if (!CASES[n]) throw new Error(`unknown fault case "${n}"; known: ${Object.keys(CASES).join(', ')}`);
      log(`case ${n}`);
      await CASES[n](env);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
