/**
 * Aggregator ingest: alerts/s from a real broker on this machine into SQLite, committed (and only then acked).
 *
 * Each run: hubs publish a burst of M QoS 1 alerts while the consumer's persistent session is away, so the broker
 * holds them; then the consumer connects and we time the drain until all M are stored. The reference, measured in
 * the same run on the same broker with the same burst: a plain mqtt.js subscriber (same protocol, same in-flight
 * window) that only counts messages: the broker's own delivery ceiling on this machine. Also a "live" pass: the
 * aggregator connected while the hubs publish (end-to-end, bounded by the publishers).
 * Broker: our own mosquitto when installed, else the embedded aedes broker. Medians of RUNS runs.
 */
import mqtt from 'mqtt';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { emit, median } from './report.ts';
import { encodeAlert } from '../shared/payloads.ts';
import { fleetFilter, hubTopic } from '../shared/topics.ts';
import { Consumer } from '../aggregator/consumer.ts';
import { Ingest } from '../aggregator/ingest.ts';
import { SqliteStore } from '../aggregator/store/sqlite.ts';
import { SqliteWorkerStore } from '../aggregator/store/sqlite-worker.ts';
import { hasMosquitto, startAedes, startMosquitto, type TestBroker } from '../test/aggregator/broker.ts';
import { tempDir } from '../test/aggregator/fixtures.ts';

const M = Number(process.env.AGG_BENCH_ALERTS ?? 40_000);
const RUNS = Number(process.env.AGG_BENCH_RUNS ?? 3);
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
    out.push({
      topic: hubTopic(site, hub, 'alert'),
      payload: encodeAlert({
        v: 1, site, hub, seq: run * M + i, ts: Date.now(), class: cls, confidence: 0.97, model: '2026-11-30.1-bench',
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

async function aggregatorDrain(url: string, msgs: { topic: string; payload: string }[], v: 4 | 5, run: number, dir: string, thread: boolean) {
  const file = join(dir, `bench-${run}-${thread ? 'thread' : 'inline'}.db`);
  const store = thread ? new SqliteWorkerStore(file) : new SqliteStore(file);
  await store.open();
  const clientId = `bench-agg-${run}-${thread}-${process.pid}`;
  const first = new Consumer({ broker: url, clientId, ingest: new Ingest({ store, log: quiet }), protocolVersion: v, log: quiet });
  await first.start();
  await first.stop();
  await publishAll(url, msgs, v);
  const ingest = new Ingest({ store, log: quiet });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const c = new Consumer({ broker: url, clientId, ingest, protocolVersion: v, log: quiet });
  await c.start();
  await new Promise<void>((resolve) => {
    const check = () => (ingest.counters.stored >= msgs.length ? resolve() : setTimeout(check, 5));
    check();
  });
  const rate = msgs.length / ((performance.now() - t0) / 1000);
  const perCpu = msgs.length / cpuSeconds(cpu0);
  const batches = ingest.counters.batches;
  await c.stop();
  const stored = (await store.summary()).alerts;
  await store.close();
  if (stored !== msgs.length) throw new Error(`bench: stored ${stored} of ${msgs.length}`);
  return { rate, batches, perCpu };
}

async function aggregatorLive(url: string, msgs: { topic: string; payload: string }[], v: 4 | 5, run: number, dir: string) {
  const store = new SqliteStore(join(dir, `live-${run}.db`));
  await store.open();
  const ingest = new Ingest({ store, log: quiet });
  const c = new Consumer({ broker: url, clientId: `bench-live-${run}-${process.pid}`, ingest, protocolVersion: v, log: quiet });
  await c.start();
  const t0 = performance.now();
  const pubRate = await publishAll(url, msgs, v);
  while (ingest.counters.stored < msgs.length) await new Promise((r) => setTimeout(r, 5));
  const rate = msgs.length / ((performance.now() - t0) / 1000);
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
  const ref: number[] = [];
  const refCpu: number[] = [];
  const drain: number[] = [];
  const drainCpu: number[] = [];
  const inline: number[] = [];
  const inlineCpu: number[] = [];
  const live: number[] = [];
  const pub: number[] = [];
  const batches: number[] = [];
  try {
    for (let r = 0; r < RUNS; r++) {
      const msgs = burst(r);
      const f = await reference(broker.url, msgs, v, r);
      ref.push(f.rate);
      refCpu.push(f.perCpu);
      const i = await aggregatorDrain(broker.url, msgs, v, r, tmp.dir, false);
      inline.push(i.rate);
      inlineCpu.push(i.perCpu);
      batches.push(M / i.batches);
      const d = await aggregatorDrain(broker.url, msgs, v, r, tmp.dir, true);
      drain.push(d.rate);
      drainCpu.push(d.perCpu);
      const l = await aggregatorLive(broker.url, burst(r + RUNS), v, r, tmp.dir);
      live.push(l.rate);
      pub.push(l.pubRate);
    }
  } finally {
    await broker.stop();
    tmp.cleanup();
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
