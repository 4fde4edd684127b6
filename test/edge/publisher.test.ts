/**
 * The MQTT side against our own mosquitto: MQTT 5 over TLS with username/password, a wrong password (alerts stay
 * queued, nothing lost), the last will (status offline, retained) when the hub's connection dies, and end-to-end
 * delivery: a broker that loses its state loses nothing when alerts wait for the aggregator's watermark.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hub, type HubOptions } from '../../edge/hub.ts';
import { MemoryStore } from '../../edge/offline-queue.ts';
import { Publisher, seqOf, withFloor, type Delivery } from '../../edge/publisher.ts';
import { startAggregator } from '../../aggregator/aggregator.ts';
import { decodeAlert, encodeAlert } from '../../shared/payloads.ts';
import { buildFixtureBundle, devKeyPair, fixtureCsvRow, FIXTURE_CSV_HEADER, type KeyPair } from './fixtures/bundle.ts';
import { Mosquitto, hasMosquitto, subscriber, until } from './fixtures/brokers.ts';

let root: string;
let keys: KeyPair;
let bundle: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'iot-ids-pub-'));
  keys = devKeyPair();
  bundle = await buildFixtureBundle(join(root, 'bundle'), keys);
});
after(() => rmSync(root, { recursive: true, force: true }));

const opts = (broker: string, over: Partial<HubOptions>): HubOptions => ({
  bundleDir: bundle,
  publicKeyPem: keys.publicKeyPem,
  broker,
  site: 'pub',
  hub: 'h',
  stateDir: mkdtempSync(join(root, 'state-')),
  statsIntervalMs: 0,
  overflow: 'block',
  reconnectMs: 200,
  log: () => undefined,
  ...over,
});

const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
};

/** A throwaway CA and a server certificate for 127.0.0.1. */
function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  const p = (f: string) => join(dir, f);
  sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=iot-ids test CA', '-keyout', p('ca.key'), '-out', p('ca.pem')]);
  sh('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1',
    '-keyout', p('server.key'), '-out', p('server.csr')]);
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  sh('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-days', '1', '-extfile', p('ext.cnf'), '-out', p('server.pem')]);
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}
test('MQTT 5 over TLS with username/password delivers alerts; a wrong password keeps them queued', async (t) => {
  if (!hasMosquitto()) return t.skip('mosquitto not installed: TLS/auth test skipped');
  const certDir = mkdtempSync(join(root, 'certs-'));
  const c = makeCerts(certDir);
  const pw = join(certDir, 'passwd');
  sh('mosquitto_passwd', ['-b', '-c', pw, 'gw1', 's3cret']);
  sh('mosquitto_passwd', ['-b', pw, 'reader', 'r3ad']);
  // mosquitto started as root drops to its own user: it must be able to read these.
  chmodSync(root, 0o755);
  chmodSync(certDir, 0o755);
  for (const f of readdirSync(certDir)) chmodSync(join(certDir, f), 0o644);
  const mq = await Mosquitto.create(
    [`cafile ${c.ca}`, `certfile ${c.cert}`, `keyfile ${c.key}`, 'allow_anonymous false', `password_file ${pw}`],
    'mqtts',
  );
  const ca = readFileSync(c.ca, 'utf8');
  const sub = await subscriber(mq.url, 'ids/v1/pub/+/alert', { extra: { ca, username: 'reader', password: 'r3ad', protocolVersion: 5 } });
  const good = await Hub.start(opts(mq.url, { hub: 'tls5', ca, username: 'gw1', password: 's3cret', protocolVersion: 5 }));
  const bad = await Hub.start(opts(mq.url, { hub: 'badpw', ca, username: 'gw1', password: 'wrong', protocolVersion: 5 }));
  try {
    const rows = FIXTURE_CSV_HEADER + '\n' + [1, 2, 4].map((k, i) => fixtureCsvRow(i, k)).join('\n') + '\n';
    await good.runFlows(Readable.from([rows]));
    assert.ok(await good.finish(5000));
    await until(() => sub.messages.length >= 3, 5000, 'three alerts over TLS');
    assert.deepEqual(sub.messages.map((m) => decodeAlert(JSON.stringify(m.json)).ok), [true, true, true]);
    assert.deepEqual(sub.messages.map((m) => m.json.class), ['DoS', 'Mirai', 'MITM ARP Spoofing']);

    await bad.runFlows(Readable.from([rows]));
    assert.equal(await bad.finish(500), false);
    assert.equal(bad.publisher.connected, false);
    assert.equal(bad.store.size(), 3, 'refused by the broker: the alerts wait in the offline queue');
    assert.equal(sub.messages.length, 3);
  } finally {
    await good.close();
    await bad.close();
    sub.client.end(true);
    await mq.stop();
  }
});

test('when the hub connection dies the broker publishes the retained last will: status offline', async (t) => {
  if (!hasMosquitto()) return t.skip('mosquitto not installed: last-will test skipped');
  const mq = await Mosquitto.create();
  const hub = await Hub.start(opts(mq.url, { hub: 'will' }));
  const sub = await subscriber(mq.url, 'ids/v1/pub/will/status');
  try {
    await until(() => sub.messages.some((m) => m.json.state === 'online'), 3000, 'online status');
    assert.equal(sub.messages[0].json.bundle, 'fixture-1');
    // Cut the TCP connection without a DISCONNECT packet, as a crash or power loss would.
    (hub.publisher as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy();
    await until(() => sub.messages.some((m) => m.json.state === 'offline'), 5000, 'last will');
    // The hub reconnects by itself and says so.
    await until(() => sub.messages.filter((m) => m.json.state === 'online').length >= 2, 5000, 'online again');
    // A late subscriber sees the retained state.
    const late = await subscriber(mq.url, 'ids/v1/pub/will/status');
    await until(() => late.messages.length >= 1, 3000, 'retained status');
    assert.equal(late.messages[0].retain, true);
    assert.equal(late.messages[0].json.state, 'online');
    late.client.end(true);
  } finally {
    await hub.close();
    sub.client.end(true);
    await mq.stop();
  }
});

test('seqOf reads the seq of an encoded alert; withFloor adds the floor as a valid last field', () => {
  const p = encodeAlert({ v: 1, hub: 'h', site: 's', seq: 90071, ts: 1, class: 'DoS', confidence: 1, model: 'm',
    flow: { src: '', dst: '', sport: 0, dport: 0, proto: 0 } });
  assert.equal(seqOf(p), 90071);
  assert.equal(seqOf('{"v":1}'), undefined);
  const d = decodeAlert(withFloor(p, 17));
  assert.ok(d.ok);
  assert.equal(d.ok && d.value.floor, 17);
  assert.equal(withFloor(p, undefined), p);
});

/** N alert payloads of one hub, seq 0..N-1. */
const alerts = (hub: string, n: number): string[] =>
  Array.from({ length: n }, (_, seq) => encodeAlert({ v: 1, hub, site: 'e2e', seq, ts: Date.now(), class: 'DoS', confidence: 0.9,
    model: 'm', flow: { src: '10.0.0.1', dst: '10.0.0.2', sport: seq % 65536, dport: 80, proto: 6 } }));

test('end-to-end delivery: a broker restart that loses its state loses no alert (PUBACK alone loses them all)', async (t) => {
  if (!hasMosquitto()) return t.skip('mosquitto not installed: broker state-loss test skipped');
  const N = 2000;
  const mq = await Mosquitto.create();
  const db = join(mkdtempSync(join(root, 'agg-')), 'a.db');
  const aggOpts = { broker: mq.url, db, clientId: 'e2e-agg', log: () => undefined };
  let agg = await startAggregator(aggOpts);
  const hub = (name: string, delivery: Delivery) => new Publisher(
    { broker: mq.url, site: 'e2e', hub: name, delivery, resendMs: 300, reconnectMs: 100 }, new MemoryStore());
  const e2e = hub('e2e', 'end-to-end');
  const plain = hub('plain', 'puback');
  try {
    // The aggregator is away (its session queues at the broker) while both hubs deliver every alert to the broker.
    await agg.close();
    e2e.enqueue(alerts('e2e', N));
    plain.enqueue(alerts('plain', N));
    await until(() => e2e.published >= N && plain.published >= N, 20_000, 'PUBACKs for every alert');
    assert.equal((e2e as unknown as { store: MemoryStore }).store.size(), N, 'end-to-end keeps them');
    // The broker dies and comes back empty (persistence false), then the aggregator returns.
    await mq.kill();
    await mq.start();
    agg = await startAggregator(aggOpts);
    assert.equal(await e2e.flush(30_000), true, 'every alert confirmed by the watermark');
    assert.equal(e2e.watermark, N - 1);
    // They went again after the reconnect, or (when the aggregator subscribed after that) once the watermark
    // stood still: which one depends on timing, and either must deliver.
    const hubs = await agg.store.hubs();
    assert.equal(hubs.find((h) => h.hub === 'e2e')?.alerts, N, 'all stored, once each');
    assert.equal(hubs.find((h) => h.hub === 'plain')?.alerts ?? 0, 0, 'PUBACK alone: every alert lost, the hub none the wiser');
    assert.equal((plain as unknown as { store: MemoryStore }).store.size(), 0);
  } finally {
    await e2e.close();
    await plain.close();
    await agg.close();
    await mq.stop();
  }
});

test('auto delivery turns end-to-end on the first watermark; the hub remembers it and resumes seq without a gap', async (t) => {
  if (!hasMosquitto()) return t.skip('mosquitto not installed: ack watermark test skipped');
  const mq = await Mosquitto.create();
  const db = join(mkdtempSync(join(root, 'agg-')), 'a.db');
  const agg = await startAggregator({ broker: mq.url, db, clientId: 'auto-agg', log: () => undefined });
  const o = opts(mq.url, { hub: 'auto' });
  const rows = FIXTURE_CSV_HEADER + '\n' + [1, 2, 4, 1, 2].map((k, i) => fixtureCsvRow(i, k)).join('\n') + '\n';
  let hub = await Hub.start(o);
  try {
    assert.equal(hub.publisher.delivery, 'puback');
    await hub.runFlows(Readable.from([rows]));
    assert.equal(await hub.finish(10_000), true);
    await until(() => hub.publisher.delivery === 'end-to-end', 5000, 'the first watermark');
    await hub.close();
    hub = await Hub.start(o);
    assert.equal(hub.publisher.delivery, 'end-to-end', 'remembered in the state folder');
    await hub.runFlows(Readable.from([rows]));
    assert.equal(await hub.finish(10_000), true, 'the watermark passes every alert of both runs');
    const stored = await agg.store.queryAlerts({ hub: 'auto', limit: 100 });
    const seqs = stored.map((a) => a.seq).sort((a, b) => a - b);
    assert.ok(seqs.length >= 2);
    assert.deepEqual(seqs, seqs.map((_, i) => i), 'seq 0..n-1 across the restart, no gap');
    assert.equal(hub.publisher.watermark, seqs.length - 1);
    assert.equal(hub.store.size(), 0);
  } finally {
    await hub.close();
    await agg.close();
    await mq.stop();
  }
});
