/**
 * The hub's health (edge/state.ts) and the state folder under a running hub: degraded/recovered reach the retained
 * status and stats; a state folder deleted while the hub runs is recreated and every alert is still delivered; a
 * queue that lost records says so (degraded, counted) instead of dropping them silently.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hub, type HubOptions } from '../../edge/hub.ts';
import { Health } from '../../edge/state.ts';
import { FileStore } from '../../edge/offline-queue.ts';
import { decodeStatus } from '../../shared/payloads.ts';
import { buildFixtureBundle, devKeyPair, fixtureCsvRow, FIXTURE_CSV_HEADER, type KeyPair } from './fixtures/bundle.ts';
import { Mosquitto, freePort, hasMosquitto, startAedes, subscriber, until, type Broker } from './fixtures/brokers.ts';

let root: string;
let keys: KeyPair;
let bundle: string;
let aedes: Broker;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'iot-ids-state-'));
  keys = devKeyPair();
  bundle = await buildFixtureBundle(join(root, 'bundle'), keys);
  aedes = await startAedes();
});
after(async () => {
  await aedes?.stop();
  rmSync(root, { recursive: true, force: true });
});

const opts = (broker: string, over: Partial<HubOptions> = {}): HubOptions => ({
  bundleDir: bundle, publicKeyPem: keys.publicKeyPem, broker, site: 'st', hub: 'h', statsIntervalMs: 0,
  overflow: 'block', log: () => undefined, ...over,
});

/** n attack rows (DoS or Mirai) from row `from`: one alert each. */
const attacks = (from: number, n: number) =>
  Readable.from([FIXTURE_CSV_HEADER + '\n' + Array.from({ length: n }, (_, i) => fixtureCsvRow(from + i, 1 + ((from + i) % 2))).join('\n') + '\n']);

test('Health: parts degrade and recover on their own; the first problem is remembered for the exit code', () => {
  const h = new Health();
  let changes = 0;
  h.onChange(() => changes++);
  assert.equal(h.state, 'online');
  h.degrade('input', 'capture corrupt at byte 24');
  h.degrade('offline queue', 'disk full');
  assert.equal(h.state, 'degraded');
  assert.equal(h.reason, 'offline queue: disk full');
  h.recover('offline queue');
  assert.equal(h.reason, 'input: capture corrupt at byte 24');
  h.recover('input');
  assert.equal(h.state, 'online');
  assert.equal(h.everDegraded, true);
  assert.equal(h.firstProblem, 'input: capture corrupt at byte 24');
  assert.equal(changes, 4);
});

test('hub.degrade / recover: the retained status says degraded with the reason, stats carry it, then online again', { timeout: 120_000 }, async () => {
  const sub = await subscriber(aedes.url, 'ids/v1/st/deg/#');
  const hub = await Hub.start(opts(aedes.url, { hub: 'deg' }));
  try {
    await until(() => hub.publisher.connected, 5000, 'connect');
    hub.degrade('pcap stream: no record header found in the last 1 MiB');
    await until(() => sub.messages.some((m) => m.topic.endsWith('/status') && m.json.state === 'degraded'), 3000, 'degraded status');
    const st = sub.messages.filter((m) => m.topic.endsWith('/status')).at(-1)!;
    assert.ok(decodeStatus(JSON.stringify(st.json)).ok);
    assert.equal(st.json.reason, 'input: pcap stream: no record header found in the last 1 MiB');
    assert.equal(st.json.keyFingerprint, hub.keyFingerprint);
    await until(() => sub.messages.some((m) => m.topic.endsWith('/stats') && m.json.state === 'degraded'), 3000, 'degraded stats');
    hub.recover();
    await until(() => sub.messages.filter((m) => m.topic.endsWith('/status')).at(-1)!.json.state === 'online', 3000, 'online again');
    assert.equal(sub.messages.filter((m) => m.topic.endsWith('/status')).at(-1)!.json.reason, undefined);
    assert.equal(hub.health.everDegraded, true);
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('the whole state folder removed under a running hub: recreated, and every alert is still delivered once', { timeout: 120_000 }, async (t) => {
  if (!hasMosquitto()) return t.skip('mosquitto not installed (apt-get install mosquitto)');
  const mq = await Mosquitto.create();
  const state = join(mkdtempSync(join(root, 'gone-')), 'state');
  const sub = await subscriber(mq.url, 'ids/v1/st/gone/alert');
  const hub = await Hub.start(opts(mq.url, { hub: 'gone', stateDir: state }));
  try {
    await hub.runFlows(attacks(0, 200));
    assert.ok(await hub.finish(10_000));
    rmSync(state, { recursive: true, force: true });
    await hub.runFlows(attacks(200, 300));
    assert.ok(await hub.finish(10_000), 'every alert acknowledged after the folder was removed');
    await until(() => new Set(sub.messages.map((m) => m.json.seq)).size >= 500, 5000, '500 distinct alerts');
    assert.equal(new Set(sub.messages.map((m) => m.json.seq)).size, 500);
    assert.equal(hub.stats.alerts, 500);
    assert.ok(existsSync(join(state, 'offline-queue')) && existsSync(join(state, 'seq')), 'queue folder and seq file recreated');
    assert.equal(hub.health.state, 'online', 'nothing was lost, so nothing is degraded');
    await hub.close(); // used to crash with ENOENT
  } finally {
    await hub.close().catch(() => undefined);
    sub.client.end(true);
    await mq.stop();
  }
});

test('the state folder removed while alerts wait for the broker: those in memory are written again and delivered', { timeout: 120_000 }, async (t) => {
  if (!hasMosquitto()) return t.skip('mosquitto not installed (apt-get install mosquitto)');
  const nowhere = `mqtt://127.0.0.1:${await freePort()}`;
  const state = join(mkdtempSync(join(root, 'wait-')), 'state');
  // No broker: every alert waits in the queue (and in its memory).
  const a = await Hub.start(opts(nowhere, { hub: 'wait', stateDir: state, reconnectMs: 200 }));
  await a.runFlows(attacks(0, 300));
  await until(() => a.store.size() === 300, 5000, '300 alerts queued');
  rmSync(state, { recursive: true, force: true });
  await a.runFlows(attacks(300, 100));
  await until(() => a.store.size() === 400, 5000, '400 alerts queued');
  assert.equal(a.health.state, 'online', 'nothing was lost');
  await a.close();
  // The same state folder, now with a broker and a subscriber already listening: all 400 arrive.
  const mq = await Mosquitto.create();
  const sub = await subscriber(mq.url, 'ids/v1/st/wait/alert');
  const b = await Hub.start(opts(mq.url, { hub: 'wait', stateDir: state }));
  try {
    assert.equal(b.store.size(), 400, 'the recreated folder holds every queued alert');
    assert.ok(await b.finish(15_000));
    await until(() => new Set(sub.messages.map((m) => m.json.seq)).size >= 400, 5000, '400 distinct alerts');
    assert.equal(new Set(sub.messages.map((m) => m.json.seq)).size, 400);
  } finally {
    await b.close();
    sub.client.end(true);
    await mq.stop();
  }
});

test('records that were only on disk when the folder vanished are counted as dropped and reported', { timeout: 120_000 }, async () => {
  const dir = join(mkdtempSync(join(root, 'lost-')), 'q');
  const first = new FileStore(dir, { segmentRecords: 10 });
  first.put(Array.from({ length: 25 }, (_, i) => `r${i}`));
  await first.close();
  const repairs: [number, string][] = [];
  // Reopened: the records are on disk only (no segment is cached yet).
  const store = new FileStore(dir, { segmentRecords: 10, onRepair: (lost, msg) => repairs.push([lost, msg]) });
  rmSync(dir, { recursive: true, force: true });
  store.put(['r25']);
  assert.equal(repairs.length, 1);
  assert.equal(repairs[0][0], 25);
  assert.match(repairs[0][1], /25 queued alerts that were only on disk are lost/);
  assert.equal(store.dropped(), 25);
  assert.deepEqual(store.peek(0, 10).map((r) => r.payload), ['r25']);
  await store.close();
});

test('the aggregator accepts a degraded status with its reason and key fingerprint', { timeout: 120_000 }, async () => {
  const { classify } = await import('../../aggregator/validate.ts');
  const status = { v: 1, hub: 'h', site: 's', ts: Date.now(), state: 'degraded', reason: 'input: capture corrupt', keyFingerprint: 'ab'.repeat(32) };
  const c = classify('ids/v1/s/h/status', Buffer.from(JSON.stringify(status)), Date.now());
  assert.equal(c.kind, 'status');
  assert.equal(c.kind === 'status' && c.hub.state, 'degraded');
});
