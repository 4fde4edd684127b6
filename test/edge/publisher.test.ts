/**
 * The MQTT side against our own mosquitto: MQTT 5 over TLS with username/password, a wrong password (alerts stay
 * queued, nothing lost), and the last will (status offline, retained) when the hub's connection dies.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hub, type HubOptions } from '../../edge/hub.ts';
import { decodeAlert } from '../../shared/payloads.ts';
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
