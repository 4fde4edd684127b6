/**
 * Aggregator ingest: alerts/s from a real broker on this machine into SQLite and PostgreSQL, committed (and only
 * then acked).
 *
 * Each run: hubs publish a burst of M QoS 1 alerts while the consumer's persistent session is away, so the broker
 * holds them; then the consumer connects and we time the drain until all M are stored. The reference, measured in
 * the same run on the same broker with the same burst: a plain mqtt.js subscriber (same protocol, same in-flight
 * window) that only counts messages: the broker's own delivery ceiling on this machine. Also a "live" pass: the
 * aggregator connected while the hubs publish (end-to-end, bounded by the publishers).
 * PostgreSQL (when reachable, AGG_BENCH_PG or the test URL): the same drain into PostgreSQL with several batch
 * writes in flight, the reference being one write in flight in the same run; and the scale-out case: one, then
 * two aggregator instances, each in its own process (bench/aggregator-instance.ts), in one shared-subscription
 * group draining the same queued burst; the one-instance figure is the reference for the two.
 * Broker: our own mosquitto when installed, else the embedded aedes broker. Medians of RUNS runs.
 * AGG_BENCH_ONLY=sqlite|postgres runs one half.
 * The aggregator runs as it ships: each commit also advances and publishes the hubs' ack watermarks (acks.ts).
 */
import mqtt from 'mqtt';
import pg from 'pg';
import { fork, type ChildProcess } from 'node:child_process';
import { limitCpu } from './cpu-quota.ts';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { emit, median } from './report.ts';
import { encodeAlert } from '../shared/payloads.ts';
import { fleetFilter, hubTopic } from '../shared/topics.ts';
import { AckPublisher } from '../aggregator/acks.ts';
import { Consumer } from '../aggregator/consumer.ts';
import { Ingest } from '../aggregator/ingest.ts';
import { SqliteStore } from '../aggregator/store/sqlite.ts';
import { SqliteWorkerStore } from '../aggregator/store/sqlite-worker.ts';
import { PostgresStore } from '../aggregator/store/postgres.ts';
import type { Store } from '../aggregator/store/store.ts';
import { hasMosquitto, startAedes, startMosquitto, type TestBroker } from '../test/aggregator/broker.ts';
import { PG_URL, postgresReachable, tempDir, uniqueSchema } from '../test/aggregator/fixtures.ts';

const M = Number(process.env.AGG_BENCH_ALERTS ?? 40_000);
const RUNS = Number(process.env.AGG_BENCH_RUNS ?? 3);
const ONLY = process.env.AGG_BENCH_ONLY;
const PG = process.env.AGG_BENCH_PG ?? PG_URL;
/** Batch writes in flight for the PostgreSQL cases (the store's default). */
const PG_WRITERS = Number(process.env.AGG_BENCH_PG_WRITERS ?? 4);
/**
 * Cores' worth of CPU each aggregator process of the one- and two-instance case may use (cgroups, bench/cpu-quota.ts),
 * e.g. 0.5: the aggregators are then the bottleneck and the broker and database keep headroom, which is what "a
 * machine with idle cores" means on one with two. Unset: no quota.
 */
const QUOTA = process.env.AGG_BENCH_CPU_QUOTA === undefined ? undefined : Number(process.env.AGG_BENCH_CPU_QUOTA);
const HUBS = 20;
const CLASSES = ['Mirai', 'DoS', 'Scan', 'MITM ARP Spoofing'];
const quiet = () => {};

function burst(run: number): { topic: string; payload: string }[] {
  const out = [];
  for (let i = 0; i < M; i++) {
    const h = i % HUBS;
    const site = `site-${h % 4}`;
    const hub = `hub-${h}`;
    const cls = CLASSES[i % CLASSES.length];
    // Each hub numbers its alerts without gaps, as hubs do; `floor` says where this run's numbers start.
    const perHub = M / HUBS;
    const seq = run * perHub + Math.floor(i / HUBS);
    out.push({
      topic: hubTopic(site, hub, 'alert'),
      payload: encodeAlert({
        v: 1, site, hub, seq, floor: run * perHub, ts: Date.now(), class: cls, confidence: 0.97, model: '2026-11-30.1-bench',
        probabilities: { Normal: 0.01, Mirai: 0.97, DoS: 0.01, Scan: 0.005, 'MITM ARP Spoofing': 0.005 },
        flow: { src: `192.168.${h}.${i % 250}`, dst: '10.0.0.1', sport: 1024 + (i % 60000), dport: 23, proto: 6 },
      }),
    });
  }
  return out;
}

async function publishAll(url: string, msgs: { topic: string; payload: string }[], version: 4 | 5): Promise<number> {
  // Four publishers (hubs) at once, each with a window of QoS 1 messages in flight.
  const clients = await Promise.all([0, 1, 2, 3].map((i) =>
    mqtt.connectAsync(url, { clientId: `bench-pub-${i}-${process.pid}`, protocolVersion: version, reconnectPeriod: 0 })));
  const t0 = performance.now();
  await Promise.all(clients.map(async (c, k) => {
    let pending: Promise<unknown>[] = [];
    for (let i = k; i < msgs.length; i += clients.length) {
      pending.push(c.publishAsync(msgs[i].topic, msgs[i].payload, { qos: 1 }));
      if (pending.length >= 500) (await Promise.all(pending), (pending = []));
    }
    await Promise.all(pending);
  }));
  const dt = (performance.now() - t0) / 1000;
  await Promise.all(clients.map((c) => c.endAsync()));
  return msgs.length / dt;
}

const sessionProps = (v: 4 | 5) => (v === 5 ? { properties: { sessionExpiryInterval: 3600, receiveMaximum: 1000 } } : {});

/** The broker's ceiling: a subscriber that only counts, draining the same queued burst. */
async function reference(url: string, msgs: { topic: string; payload: string }[], v: 4 | 5, run: number) {
  const clientId = `bench-ref-${run}-${process.pid}`;
  const opts = { clientId, clean: false, protocolVersion: v, reconnectPeriod: 0, ...sessionProps(v) };
  const c1 = await mqtt.connectAsync(url, opts);
  await c1.subscribeAsync(fleetFilter('alert'), { qos: 1 });
  await c1.endAsync();
  await publishAll(url, msgs, v);
  let n = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const c2 = mqtt.connect(url, opts);
  c2.on('message', () => {
    if (++n === msgs.length) done();
  });
  await all;
  const rate = msgs.length / ((performance.now() - t0) / 1000);
  const cpu = cpuSeconds(cpu0);
  await c2.endAsync();
  return { rate, perCpu: msgs.length / cpu };
}

/** This process's CPU seconds since `from`: in a drain only the consumer works here (the publishers are done). */
function cpuSeconds(from: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(from);
  return (c.user + c.system) / 1e6;
}

/** An Ingest wired to publish ack watermarks through `consumer()`, as the aggregator wires it. */
function ingestWithAcks(store: Store, consumer: () => Consumer | undefined): { ingest: Ingest; acks: AckPublisher } {
  const acks = new AckPublisher({ store, log: quiet, publish: (t, p) => consumer()?.publishNow(t, p, true) ?? false });
  return { ingest: new Ingest({ store, log: quiet, onAlerts: (a) => acks.onCommitted(a) }), acks };
}

async function aggregatorDrain(url: string, msgs: { topic: string; payload: string }[], v: 4 | 5, run: number, dir: string, thread: boolean) {
  const file = join(dir, `bench-${run}-${thread ? 'thread' : 'inline'}.db`);
  const store = thread ? new SqliteWorkerStore(file) : new SqliteStore(file);
  await store.open();
  try {
    return await drainInto(store, `bench-agg-${run}-${thread}-${process.pid}`, url, msgs, v);
  } finally {
    await store.close();
  }
}

/** Registers a session, queues the burst for it, then times its drain into `store` until all are stored. */
async function drainInto(store: Store, clientId: string, url: string, msgs: { topic: string; payload: string }[], v: 4 | 5) {
  const first = new Consumer({ broker: url, clientId, ingest: new Ingest({ store, log: quiet }), protocolVersion: v, log: quiet });
  await first.start();
  await first.stop();
  await publishAll(url, msgs, v);
  let c: Consumer | undefined;
  const { ingest, acks } = ingestWithAcks(store, () => c);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  c = new Consumer({ broker: url, clientId, ingest, protocolVersion: v, log: quiet });
  await c.start();
  await new Promise<void>((resolve) => {
    const check = () => (ingest.counters.stored >= msgs.length ? resolve() : setTimeout(check, 5));
    check();
  });
  const rate = msgs.length / ((performance.now() - t0) / 1000);
  const perCpu = msgs.length / cpuSeconds(cpu0);
  const batches = ingest.counters.batches;
  await acks.close();
  await c.stop();
  if (acks.counters.published === 0) throw new Error('bench: no ack watermark was published');
  const stored = (await store.summary()).alerts;
  if (stored !== msgs.length) throw new Error(`bench: stored ${stored} of ${msgs.length}`);
  return { rate, batches, perCpu };
}

async function postgresDrain(url: string, msgs: { topic: string; payload: string }[], v: 4 | 5, run: number, writers: number) {
  const store = new PostgresStore({ connectionString: PG, schema: uniqueSchema(`bench${run}w${writers}`), writers });
  await store.open();
  try {
    return await drainInto(store, `bench-pg-${run}-${writers}-${process.pid}`, url, msgs, v);
  } finally {
    await store.dropSchema();
    await store.close();
  }
}

interface InstanceReport {
  stored: number;
  batches: number;
  cpu: number;
}

/** One aggregator process (bench/aggregator-instance.ts) and its latest report. */
class Instance {
  readonly child: ChildProcess;
  last: InstanceReport = { stored: 0, batches: 0, cpu: 0 };
  private waiting: { ok: string; resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(env: Record<string, string>) {
    this.child = fork(fileURLToPath(new URL('./aggregator-instance.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m: Partial<InstanceReport> & { ok?: string; error?: string }) => {
      if (m.stored !== undefined) this.last = m as InstanceReport;
      if (m.error) this.waiting?.reject(new Error(`aggregator instance: ${m.error}`));
      else if (m.ok && m.ok === this.waiting?.ok) this.waiting.resolve();
    });
    this.child.on('exit', (code) => code && this.waiting?.reject(new Error(`aggregator instance exited with ${code}`)));
  }

  do(cmd: 'register' | 'drain' | 'pause' | 'stop'): Promise<void> {
    if (cmd === 'drain') this.last = { stored: 0, batches: 0, cpu: 0 };
    return new Promise<void>((resolve, reject) => {
      this.waiting = { ok: cmd, resolve, reject };
      this.child.send({ cmd });
    });
  }
}

/**
 * `n` aggregator processes in one shared-subscription group drain the same queued burst into one PostgreSQL schema.
 * Each process first drains a warm-up burst (a quarter of the size), so that start-up and JIT compilation, paid
 * once per process, do not count against two processes twice.
 */
/** CPU seconds (user + system) of the processes whose /proc entry matches, at 100 ticks a second; 0 for none. */
function cpuOfProcesses(match: (comm: string, cmdline: string) => boolean): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!match(comm, cmdline)) continue;
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return ticks / 100;
}

/** CPU seconds of each process, at 100 ticks a second (processes gone meanwhile are left out). */
function cpuByPid(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      out.set(pid, (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // gone
    }
  }
  return out;
}

/** The PostgreSQL backends serving connections named `app` (application_name). */
async function backendsOf(app: string): Promise<number[]> {
  const c = new pg.Client({ connectionString: PG });
  await c.connect();
  try {
    return (await c.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [app])).rows.map((r: { pid: number }) => r.pid);
  } finally {
    await c.end();
  }
}

/**
 * CPU of the rest of the pipeline during a drain: our mosquitto (its config lives in the broker's folder) and the
 * PostgreSQL backends of this run's instances (found by application_name; a backend started during the drain
 * counts from zero). PostgreSQL's own background processes (WAL writer, checkpointer) are left out.
 */
async function pipelineCpu(brokerDir: string, app: string) {
  const backends = await backendsOf(app);
  return {
    mosquitto: cpuOfProcesses((comm, cmd) => comm === 'mosquitto' && brokerDir !== '' && cmd.includes(brokerDir)),
    postgres: cpuByPid(backends),
  };
}

function postgresDelta(before: Map<number, number>, after: Map<number, number>): number {
  let s = 0;
  for (const [pid, cpu] of after) s += cpu - (before.get(pid) ?? 0);
  return s;
}

async function instancesDrain(url: string, msgs: { topic: string; payload: string }[], warm: { topic: string; payload: string }[], n: number, run: number, brokerDir = '') {
  const schema = uniqueSchema(`bench${run}i${n}`);
  const group = `bench-${run}-${n}-${process.pid}`;
  const app = `iot-ids-bench-${group}`;
  const instances = Array.from({ length: n }, (_, k) => new Instance({
    AGG_I_BROKER: url, AGG_I_PG: PG, AGG_I_SCHEMA: schema, AGG_I_GROUP: group, AGG_I_ID: `${group}-${k}`,
    AGG_I_WRITERS: String(PG_WRITERS), AGG_I_APP: app,
  }));
  const quotas = QUOTA === undefined ? [] : instances.map((i, k) => {
    const q = limitCpu(i.child.pid!, QUOTA, `${app}-${k}`);
    if (typeof q === 'string') throw new Error(`AGG_BENCH_CPU_QUOTA: ${q}`);
    return q;
  });
  const stored = () => instances.reduce((s, i) => s + i.last.stored, 0);
  const drain = async (burst: { topic: string; payload: string }[], published?: () => Promise<void>) => {
    await publishAll(url, burst, 5);
    await published?.();
    const t0 = performance.now();
    await Promise.all(instances.map((i) => i.do('drain')));
    while (stored() < burst.length) await new Promise((r) => setTimeout(r, 5));
    return performance.now() - t0;
  };
  try {
    await Promise.all(instances.map((i) => i.do('register')));
    await drain(warm);
    await Promise.all(instances.map((i) => i.do('pause')));
    // The CPU counters start once the burst is queued: mosquitto's figure is its delivery, not the hubs' publishing.
    let others0 = await pipelineCpu(brokerDir, app);
    const ms = await drain(msgs, async () => void (others0 = await pipelineCpu(brokerDir, app)));
    const others1 = await pipelineCpu(brokerDir, app);
    const rate = msgs.length / (ms / 1000);
    const cpu = instances.reduce((s, i) => s + i.last.cpu, 0);
    const shares = instances.map((i) => i.last.stored);
    await Promise.all(instances.map((i) => i.do('stop')));
    // Microseconds of CPU per alert, per part of the pipeline (publishing happened before the clock started).
    const us = (sec: number) => Math.round((sec / msgs.length) * 1e6 * 10) / 10;
    const cpuPerAlert = { aggregators: us(cpu), mosquitto: us(others1.mosquitto - others0.mosquitto), postgres: us(postgresDelta(others0.postgres, others1.postgres)) };
    return { rate, perCpu: msgs.length / cpu, shares, cpuPerAlert };
  } finally {
    // A cgroup can only be removed once its process is gone: wait for each exit before releasing the quotas.
    await Promise.all(instances.map((i) => (i.child.exitCode !== null || i.child.signalCode !== null
      ? undefined
      : new Promise((r) => (i.child.once('exit', r), i.child.kill())))));
    for (const q of quotas) q.release();
    const s = new PostgresStore({ connectionString: PG, schema });
    await s.open();
    await s.dropSchema();
    await s.close();
  }
}

async function aggregatorLive(url: string, msgs: { topic: string; payload: string }[], v: 4 | 5, run: number, dir: string) {
  const store = new SqliteStore(join(dir, `live-${run}.db`));
  await store.open();
  let c: Consumer | undefined;
  const { ingest, acks } = ingestWithAcks(store, () => c);
  c = new Consumer({ broker: url, clientId: `bench-live-${run}-${process.pid}`, ingest, protocolVersion: v, log: quiet });
  await c.start();
  const t0 = performance.now();
  const pubRate = await publishAll(url, msgs, v);
  while (ingest.counters.stored < msgs.length) await new Promise((r) => setTimeout(r, 5));
  const rate = msgs.length / ((performance.now() - t0) / 1000);
  await acks.close();
  await c.stop();
  await store.close();
  return { rate, pubRate };
}

export async function run(): Promise<void> {
  let broker: TestBroker;
  let name: string;
  let v: 4 | 5;
  if (hasMosquitto()) {
    broker = await startMosquitto({ inflight: 1000 });
    name = 'mosquitto (own, 127.0.0.1)';
    v = 5;
  } else {
    broker = await startAedes();
    name = 'aedes (embedded; mosquitto not installed)';
    v = 4;
  }
  const tmp = tempDir('iot-ids-bench-');
  try {
    if (ONLY !== 'postgres') await sqliteCases(broker, name, v, tmp.dir);
    if (ONLY !== 'sqlite') {
      if (!(await postgresReachable())) console.error(`aggregator bench: PostgreSQL not reachable at ${PG}: PostgreSQL cases skipped`);
      else if (v !== 5) console.error('aggregator bench: the PostgreSQL cases need mosquitto (MQTT 5 shared subscriptions): skipped');
      else await postgresCases(broker, name);
    }
  } finally {
    await broker.stop();
    tmp.cleanup();
  }
}

async function sqliteCases(broker: TestBroker, name: string, v: 4 | 5, dir: string): Promise<void> {
  const ref: number[] = [];
  const refCpu: number[] = [];
  const drain: number[] = [];
  const drainCpu: number[] = [];
  const inline: number[] = [];
  const inlineCpu: number[] = [];
  const live: number[] = [];
  const pub: number[] = [];
  const batches: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const msgs = burst(r);
    const f = await reference(broker.url, msgs, v, r);
    ref.push(f.rate);
    refCpu.push(f.perCpu);
    const i = await aggregatorDrain(broker.url, msgs, v, r, dir, false);
    inline.push(i.rate);
    inlineCpu.push(i.perCpu);
    batches.push(M / i.batches);
    const d = await aggregatorDrain(broker.url, msgs, v, r, dir, true);
    drain.push(d.rate);
    drainCpu.push(d.perCpu);
    const l = await aggregatorLive(broker.url, burst(r + RUNS), v, r, dir);
    live.push(l.rate);
    pub.push(l.pubRate);
  }
  const reference_ = { metric: 'broker ceiling: plain subscriber draining the same queued burst', value: Math.round(median(ref)), unit: 'msg/s', runs: ref.map(Math.round) };
  emit({
    bench: 'aggregator', metric: 'ingest into SQLite (default: inline writes; queued burst drained, committed before PUBACK)',
    value: Math.round(median(inline)), unit: 'alerts/s', reference: reference_, broker: name, alerts: M, hubs: HUBS,
    runs: inline.map(Math.round), meanBatch: Math.round(median(batches)), mqtt: v === 5 ? '5 (receive maximum 1000)' : '3.1.1',
    loadAverage: loadavg()[0],
  });
  emit({
    bench: 'aggregator', metric: 'ingest into SQLite, writes on a worker thread (--sqlite-thread)', value: Math.round(median(drain)),
    unit: 'alerts/s', reference: reference_, broker: name, alerts: M, runs: drain.map(Math.round),
  });
  // Wall-clock rates swing with the machine's load; CPU cost per alert does much less (all threads counted).
  emit({
    bench: 'aggregator', metric: 'ingest into SQLite per CPU-second of the process (drain, inline writes)', value: Math.round(median(inlineCpu)),
    unit: 'alerts/cpu-s', reference: { metric: 'plain subscriber per CPU-second (drain)', value: Math.round(median(refCpu)), unit: 'msg/cpu-s' },
    writerThread: Math.round(median(drainCpu)), broker: name, alerts: M, runs: inlineCpu.map(Math.round),
  });
  emit({
    bench: 'aggregator', metric: 'ingest into SQLite, live (hubs publishing while connected)', value: Math.round(median(live)),
    unit: 'alerts/s', reference: { metric: 'publish rate of the 4 publishers in the same pass', value: Math.round(median(pub)), unit: 'msg/s' },
    broker: name, alerts: M, runs: live.map(Math.round),
  });
}

async function postgresCases(broker: TestBroker, name: string): Promise<void> {
  const many: number[] = [];
  const manyCpu: number[] = [];
  const one: number[] = [];
  const oneCpu: number[] = [];
  const single: number[] = [];
  const pair: number[] = [];
  const singleCpu: number[] = [];
  const pairCpu: number[] = [];
  const shares: number[][] = [];
  const loads: number[] = [];
  const cpuOne: CpuPerAlert[] = [];
  const cpuPair: CpuPerAlert[] = [];
  for (let r = 0; r < RUNS; r++) {
    const msgs = burst(r);
    const w1 = await postgresDrain(broker.url, msgs, 5, r, 1);
    one.push(w1.rate);
    oneCpu.push(w1.perCpu);
    const wn = await postgresDrain(broker.url, msgs, 5, r, PG_WRITERS);
    many.push(wn.rate);
    manyCpu.push(wn.perCpu);
    const warm = burst(RUNS + 1 + r).slice(0, Math.ceil(M / 4));
    const i1 = await instancesDrain(broker.url, msgs, warm, 1, r, broker.dir);
    single.push(i1.rate);
    singleCpu.push(i1.perCpu);
    const i2 = await instancesDrain(broker.url, msgs, warm, 2, r, broker.dir);
    pair.push(i2.rate);
    pairCpu.push(i2.perCpu);
    shares.push(i2.shares);
    cpuOne.push(i1.cpuPerAlert);
    cpuPair.push(i2.cpuPerAlert);
    loads.push(loadavg()[0]);
  }
  const load = Math.round(median(loads) * 10) / 10;
  emit({
    bench: 'aggregator', metric: `ingest into PostgreSQL, ${PG_WRITERS} batch writes in flight (queued burst drained, committed before PUBACK)`,
    value: Math.round(median(many)), unit: 'alerts/s',
    reference: { metric: 'same drain with one write in flight', value: Math.round(median(one)), unit: 'alerts/s', runs: one.map(Math.round) },
    perCpu: Math.round(median(manyCpu)), perCpuOneWriter: Math.round(median(oneCpu)), broker: name, alerts: M, runs: many.map(Math.round),
    loadAverage: load,
  });
  emit({
    bench: 'aggregator', metric: 'two aggregator processes in one shared-subscription group, into PostgreSQL (queued burst drained)',
    value: Math.round(median(pair)), unit: 'alerts/s',
    reference: { metric: 'one aggregator process, same harness, same run', value: Math.round(median(single)), unit: 'alerts/s', runs: single.map(Math.round) },
    ratio: Math.round((median(pair) / median(single)) * 100) / 100, perCpu: Math.round(median(pairCpu)),
    perCpuOne: Math.round(median(singleCpu)), shares, broker: name, alerts: M, runs: pair.map(Math.round), loadAverage: load,
    cores: (await import('node:os')).cpus().length, cpuQuotaPerInstance: QUOTA ?? null,
    cpuMicrosPerAlert: { one: medianCpu(cpuOne), two: medianCpu(cpuPair) },
    idleCoreCeilings: ceilings(medianCpu(cpuOne), medianCpu(cpuPair)),
  });
}

type CpuPerAlert = { aggregators: number; mosquitto: number; postgres: number };

const medianCpu = (xs: CpuPerAlert[]): CpuPerAlert => ({
  aggregators: median(xs.map((x) => x.aggregators)), mosquitto: median(xs.map((x) => x.mosquitto)), postgres: median(xs.map((x) => x.postgres)),
});

/**
 * What the measured CPU costs allow on a machine with a core for each process (alerts/s): one aggregator is one
 * event loop (one core); mosquitto is one thread; PostgreSQL's work spreads over its backends (one per writer).
 * Two instances: each on its own core, the broker and the database unchanged.
 */
function ceilings(one: CpuPerAlert, two: CpuPerAlert) {
  const per = (us: number) => (us > 0 ? Math.round(1e6 / us) : null);
  return {
    oneAggregatorCore: per(one.aggregators),
    twoAggregatorCores: per(two.aggregators / 2),
    mosquittoThread: per(Math.max(one.mosquitto, two.mosquitto)),
    postgresOneCore: per(Math.max(one.postgres, two.postgres)),
  };
}
