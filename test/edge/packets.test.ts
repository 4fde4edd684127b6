import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hub, type HubOptions } from '../../edge/hub.ts';
import { decodeAlert } from '../../shared/payloads.ts';
import { sharedData } from '../helpers/shared-data.ts';
import { buildFixtureBundle, devKeyPair, type KeyPair } from './fixtures/bundle.ts';
import { startAedes, subscriber, until, type Broker } from './fixtures/brokers.ts';

let root: string;
let keys: KeyPair;
let bundle: string;
let broker: Broker;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'iot-ids-pk-'));
  keys = devKeyPair();
  bundle = await buildFixtureBundle(join(root, 'bundle'), keys);
  broker = await startAedes();
});
after(async () => {
  await broker?.stop();
  rmSync(root, { recursive: true, force: true });
});

const opts = (hub: string): HubOptions => ({
  bundleDir: bundle,
  publicKeyPem: keys.publicKeyPem,
  broker: broker.url,
  site: 'pk',
  hub,
  stateDir: mkdtempSync(join(root, 'state-')),
  statsIntervalMs: 0,
  overflow: 'block',
  log: () => undefined,
});

test('packets → wasm flow meter → classifier: every metered flow gets a verdict', async (t) => {
  const f = sharedData(t, 'pcaps', 'benign', 'tcpreplay-mixed.pcap');
  if (!f) return;
  const hub = await Hub.start(opts('h1'));
  try {
    const r = await hub.runPackets(f);
    assert.equal(r.error, undefined);
    assert.equal(r.packets, 179);
    assert.ok(r.flows > 0, 'flows metered');
    await hub.finish(5000);
    assert.equal(hub.stats.flows, r.flows);
    t.diagnostic(`${r.flows} flows from ${r.packets} packets, classes ${JSON.stringify(hub.stats.classCounts)}`);
  } finally {
    await hub.close();
  }
});

test('ARP-watcher evidence becomes rule alerts on the alert topic', async (t) => {
  const f = sharedData(t, 'pcaps', 'attack', 'pcaphunt_na-arpSpoofing.pcap');
  if (!f) return;
  const sub = await subscriber(broker.url, 'ids/v1/pk/h2/alert');
  const hub = await Hub.start(opts('h2'));
  try {
    const r = await hub.runPackets(f);
    assert.ok(r.evidence > 0);
    assert.ok(await hub.finish(5000));
    await until(() => sub.messages.length >= r.evidence, 3000, 'rule alerts');
    const a = decodeAlert(JSON.stringify(sub.messages[0].json));
    assert.ok(a.ok);
    assert.equal(a.value.source, 'rule');
    assert.equal(a.value.class, 'MITM ARP Spoofing');
    assert.equal(a.value.evidence?.kind, 'arp-unsolicited-reply');
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('a corrupt capture is counted and reported; flows before the damage are still classified', async (t) => {
  const f = sharedData(t, 'pcaps', 'benign', 'tcpreplay-mixed.pcap');
  if (!f) return;
  const buf = readFileSync(f);
  // Keep the header and the first ~half, then garbage where the next record header should be.
  const cut = Buffer.concat([buf.subarray(0, buf.length >> 1), Buffer.alloc(64, 0xff)]);
  const bad = join(root, 'corrupt.pcap');
  writeFileSync(bad, cut);
  const hub = await Hub.start(opts('h3'));
  try {
    const r = await hub.runPackets(bad);
    assert.ok(r.error, 'the capture error is returned, not thrown');
    assert.equal(hub.stats.inputErrors, 1);
    assert.match(hub.stats.lastError ?? '', /input: /);
    assert.ok(r.packets > 0);
    await hub.finish(5000);
    assert.equal(hub.stats.flows, r.flows);
    // Not a capture at all: also an input error, not a crash.
    writeFileSync(join(root, 'text.pcap'), 'hello, not a pcap\n'.repeat(10));
    const r2 = await hub.runPackets(join(root, 'text.pcap'));
    assert.ok(r2.error);
    assert.equal(hub.stats.inputErrors, 2);
  } finally {
    await hub.close();
  }
});
