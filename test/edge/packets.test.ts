import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hub, type HubOptions } from '../../edge/hub.ts';
import { decodeAlert } from '../../shared/payloads.ts';
import { Readable } from 'node:stream';
import { readPackets } from '../../edge/inputs/packets.ts';
import type { FlowSink } from '../../edge/inputs/sink.ts';
import { RAW_COLUMNS } from '../../edge/raw-columns.ts';
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
    const alerts = sub.messages.map((m) => decodeAlert(JSON.stringify(m.json)));
    for (const a of alerts) {
      assert.ok(a.ok);
      assert.equal(a.value.source, 'rule');
      assert.equal(a.value.class, 'MITM ARP Spoofing');
    }
    assert.ok(alerts.some((a) => a.ok && a.value.evidence?.kind === 'arp-unsolicited-reply'));
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

/** A sink that takes every row: the reader is what is under test. */
const countingSink = (): FlowSink & { rows: number } => ({
  inputs: RAW_COLUMNS.length, full: false, overflow: 'drop', rows: 0,
  offer() {
    this.rows++;
    return true;
  },
  room: async () => undefined,
});

/** The SYN-scan capture with record 1351 claiming 16 MiB (`p`: its offset), streamed in two chunks as stdin would be. */
function corruptSynScan(file: string): { p: number; stream: () => Readable } {
  const buf = Buffer.from(readFileSync(file));
  let p = 24;
  for (let k = 0; k < 1351; k++) p += 16 + buf.readUInt32LE(p + 8);
  buf.writeUInt32LE(0xffffff, p + 8);
  const stream = () => Readable.from([buf.subarray(0, 100_000), buf.subarray(100_000)].map((b) => Buffer.from(b)));
  return { p, stream };
}

test('live stream with a corrupt record mid-stream: later packets still analysed, degraded then resynced reported', async (t) => {
  const f = sharedData(t, 'pcaps', 'attack', 'pcaphunt_ps-tcp_syn.pcap');
  if (!f) return;
  const { p, stream } = corruptSynScan(f);
  const events: string[] = [];
  const sink = countingSink();
  const live = await readPackets(stream(), sink, {
    live: true,
    meterMode: 'corrected',
    onDegraded: (reason, at) => events.push(`degraded ${at}: ${reason}`),
    onResynced: (at, skipped) => events.push(`resynced ${at} after ${skipped} bytes`),
  });
  assert.equal(live.error, undefined, String(live.error));
  assert.equal(live.packets, 4992, 'every packet but the corrupt one');
  assert.equal(live.flows, 4992, 'a SYN scan: one flow per probe (corrected mode)');
  assert.equal(sink.rows, 4992);
  assert.deepEqual(live.resyncs, 1);
  assert.equal(events.length, 2);
  assert.match(events[0], new RegExp(`^degraded ${p}: .*16777215 captured bytes`));
  assert.match(events[1], new RegExp(`^resynced ${p + 16 + 58} after 74 bytes`));
  // A file is read to the damage and no further (its flows kept, the error returned): nothing live to wait for.
  const file = await readPackets(stream(), countingSink(), { meterMode: 'corrected' });
  assert.equal(file.packets, 1351);
  assert.equal(file.flows, 1351);
  assert.ok(file.error);
});

test('a live hub on a stream with a corrupt record: degraded with the reason while blind, online again after the resync', async (t) => {
  const f = sharedData(t, 'pcaps', 'attack', 'pcaphunt_ps-tcp_syn.pcap');
  if (!f) return;
  const { p, stream } = corruptSynScan(f);
  const hub = await Hub.start(opts('live-corrupt'));
  try {
    const r = await hub.runPackets(stream(), true);
    assert.equal(r.error, undefined, String(r.error));
    assert.equal(r.packets, 4992);
    assert.equal(hub.health.everDegraded, true, 'the blind stretch is remembered (exit code at the end)');
    assert.match(hub.health.firstProblem ?? '', new RegExp(`^capture: capture corrupt at byte ${p}: `));
    assert.equal(hub.health.state, 'online', 'resynchronised: analysing again');
  } finally {
    await hub.close();
  }
});
