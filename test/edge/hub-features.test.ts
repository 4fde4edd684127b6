/**
 * Features and Normal samples leaving the hub (#15): --attach-features, --sample-normal, status release and
 * feature order; over the embedded broker with the fixture bundle.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hub, type HubOptions } from '../../edge/hub.ts';
import { encodeDownlink } from '../../edge/downlink.ts';
import { withFloor } from '../../edge/publisher.ts';
import { RAW_COLUMNS } from '../../edge/raw-columns.ts';
import { decodeAlert, decodeSample, decodeStats, encodeAlert, MAX_PAYLOAD_BYTES, type Alert } from '../../shared/payloads.ts';
import { decodeFeatures, encodeFeatures } from '../../shared/feature-vector.ts';
import { buildBundle } from '../../trainer/bundle/build.ts';
import { FP32_MODEL_FILE, PREPROCESS_WASM_FILE } from '../../shared/manifest.ts';
import { tinyOnnxModel } from './fixtures/tiny-onnx.ts';
import {
  buildFixtureBundle, devKeyPair, fixtureManifest, FIXTURE_CSV_HEADER, FIXTURE_FEATURES, FIXTURE_LABELS, PREPROCESS_WASM, type KeyPair,
} from './fixtures/bundle.ts';
import { startAedes, subscriber, until, type Broker } from './fixtures/brokers.ts';

let root: string;
let keys: KeyPair;
let bundleV1: string;
let broker: Broker;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'iot-ids-hubfeat-'));
  keys = devKeyPair();
  bundleV1 = await buildFixtureBundle(join(root, 'bundle-v1'), keys, 'fixture-1');
  broker = await startAedes();
});
after(async () => {
  await broker?.stop();
  rmSync(root, { recursive: true, force: true });
});

const hubOpts = (over: Partial<HubOptions> = {}): HubOptions => ({
  bundleDir: bundleV1,
  publicKeyPem: keys.publicKeyPem,
  broker: broker.url,
  site: 'site1',
  hub: 'hubA',
  stateDir: mkdtempSync(join(root, 'state-')),
  statsIntervalMs: 0,
  log: () => undefined,
  overflow: 'block',
  ...over,
});

/**
 * One CSV row with fractional values (so float32 rounding shows): class k (0 = Normal) is driven by feature k.
 * Returns the row and its raw values in the fixture's manifest order.
 */
function row(i: number, k: number, src = `10.0.${(i >> 8) & 255}.${i & 255}`): { line: string; values: number[]; sport: number } {
  const f = Array.from({ length: 6 }, (_, j) => 1 + ((i * 7919 + j * 104_729) % 4000) / 1000);
  if (k < 6) f[k] = 95 + ((i * 31) % 400) / 100;
  const sport = 1024 + (i % 60_000);
  const values = [...f, 80, 6];
  return { line: `id${i},${src},${sport},192.168.1.1,80,6,t,${f.join(',')},x`, values, sport };
}

const text = (rows: { line: string }[]) => FIXTURE_CSV_HEADER + '\n' + rows.map((r) => r.line).join('\n') + '\n';
const alertsOf = (msgs: { topic: string; json: unknown }[]): Alert[] =>
  msgs.filter((m) => m.topic.endsWith('/alert')).map((m) => {
    const d = decodeAlert(JSON.stringify(m.json));
    assert.ok(d.ok, d.ok ? '' : d.error);
    return d.value;
  });
const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));

test('--attach-features: each flow alert decodes to the exact float32 raw vector in manifest order; findings carry none', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubF/#');
  const hub = await Hub.start(hubOpts({ hub: 'hubF', attachFeatures: true }));
  try {
    const rows = Array.from({ length: 300 }, (_, i) => row(i, i % FIXTURE_LABELS.length));
    const bySport = new Map(rows.map((r) => [r.sport, r]));
    await hub.runFlows(Readable.from([text(rows)]));
    // A host-level finding (no flow) and then flows of the flagged host, which are flow alerts again.
    hub.finding({ class: 'Scan', host: '10.9.9.9', role: 'source', tUs: 1,
      evidence: { kind: 'scan-sweep', ip: '10.9.9.9', macs: [], detail: '10.9.9.9: 300 unanswered attempts' } });
    const flagged = Array.from({ length: 5 }, (_, j) => row(1000 + j, 0, '10.9.9.9'));
    for (const r of flagged) bySport.set(r.sport, r);
    await hub.runFlows(Readable.from([text(flagged)]));
    assert.ok(await hub.finish(10_000));
    const want = rows.filter((_, i) => i % FIXTURE_LABELS.length !== 0).length + 1 + 2; // model alerts, finding, flagged first + summary
    await until(() => alertsOf(sub.messages).length >= want, 5000, `${want} alerts`);
    const alerts = alertsOf(sub.messages);
    assert.equal(alerts.length, want);
    let checked = 0;
    for (const a of alerts) {
      if (a.evidence) {
        assert.equal(a.features, undefined, 'a finding about a host carries no vector');
        continue;
      }
      assert.ok(a.features, `alert ${a.seq} (${a.class}, ${a.source}) has features`);
      const got = Array.from(decodeFeatures(a.features));
      assert.equal(got.length, FIXTURE_FEATURES.length);
      assert.deepEqual(got, f32(bySport.get(a.flow.sport)!.values), `alert ${a.seq}: the vector of its own flow`);
      checked++;
    }
    assert.equal(checked, want - 1);
    const summary = alerts.find((a) => a.flow.src === '10.9.9.9' && a.count > 1)!;
    assert.equal(summary.count, 4);
    assert.equal(summary.flow.sport, flagged[4].sport, 'the summary shows the last folded flow, and carries its vector');
    console.log(`alert with ${FIXTURE_FEATURES.length} features: ${JSON.stringify(alerts[0]).length} bytes`);
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('--burst-ms with features: the first alert carries its flow, the summary the last folded flow it shows', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubE/alert');
  const hub = await Hub.start(hubOpts({ hub: 'hubE', attachFeatures: true, burstMs: 60_000 }));
  try {
    const rows = Array.from({ length: 50 }, (_, i) => row(i, 1, '10.1.1.1'));
    await hub.runFlows(Readable.from([text(rows)]));
    assert.ok(await hub.finish(10_000));
    await until(() => alertsOf(sub.messages).length === 2, 5000, 'first alert and summary');
    const [first, summary] = alertsOf(sub.messages);
    assert.equal(first.count, 1);
    assert.deepEqual(Array.from(decodeFeatures(first.features!)), f32(rows[0].values));
    assert.equal(summary.count, 49);
    assert.equal(summary.flow.sport, rows[49].sport);
    assert.deepEqual(Array.from(decodeFeatures(summary.features!)), f32(rows[49].values));
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('--attach-features: missing and infinite cells travel as NaN and Infinity (the scaler reads them as 0 and 1)', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubI/alert');
  const hub = await Hub.start(hubOpts({ hub: 'hubI', attachFeatures: true }));
  try {
    const line = 'id1,10.3.3.3,5000,192.168.1.1,80,6,t,1.5,99,2.5,3.5,,inf,x';
    await hub.runFlows(Readable.from([FIXTURE_CSV_HEADER + '\n' + line + '\n']));
    assert.ok(await hub.finish(5000));
    await until(() => alertsOf(sub.messages).length === 1, 3000, 'alert');
    const a = alertsOf(sub.messages)[0];
    assert.equal(a.class, 'DoS');
    assert.deepEqual(Array.from(decodeFeatures(a.features!)), [1.5, 99, 2.5, 3.5, NaN, Infinity, 80, 6]);
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('status carries release and the feature order, also after a downlinked bundle; alerts follow the new order', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubS/#');
  // v2 reads the same columns with Dst_Port and Protocol swapped (no class weight on either in the tiny model).
  const order = [...FIXTURE_FEATURES.slice(0, 6), 'Protocol', 'Dst_Port'];
  const m = fixtureManifest('fixture-2', '2026-12-01T00:00:00Z');
  const v2 = await buildBundle({
    outDir: join(root, 'bundle-reordered'),
    files: {
      [FP32_MODEL_FILE]: tinyOnnxModel({ features: order.length, classes: FIXTURE_LABELS.length }),
      [PREPROCESS_WASM_FILE]: new Uint8Array(readFileSync(PREPROCESS_WASM)),
    },
    manifest: { ...m, model: { ...m.model, release: 1_796_400_000 }, preprocessing: { ...m.preprocessing, features: order } },
    privateKeyPem: keys.privateKeyPem,
  });
  const hub = await Hub.start(hubOpts({ hub: 'hubS', attachFeatures: true }));
  try {
    await until(() => sub.messages.some((x) => x.topic.endsWith('/status') && x.json.state === 'online'), 3000, 'status');
    const s1 = sub.messages.find((x) => x.topic.endsWith('/status'))!.json;
    assert.deepEqual(s1.features, [...FIXTURE_FEATURES]);
    assert.equal(s1.release, Math.floor(Date.parse('2026-11-30T00:00:00Z') / 1000));
    const files = Object.fromEntries(readdirSync(v2).map((f) => [f, new Uint8Array(readFileSync(join(v2, f)))]));
    assert.equal(await hub.applyDownlink(Buffer.from(encodeDownlink(files))), true);
    await until(() => sub.messages.some((x) => x.topic.endsWith('/status') && x.json.bundle === 'fixture-2'), 3000, 'status after the swap');
    const s2 = sub.messages.filter((x) => x.topic.endsWith('/status') && x.json.bundle === 'fixture-2').at(-1)!.json;
    assert.deepEqual(s2.features, order);
    assert.equal(s2.release, 1_796_400_000);
    const r = row(5, 2);
    await hub.runFlows(Readable.from([text([r])]));
    assert.ok(await hub.finish(5000));
    await until(() => alertsOf(sub.messages).length === 1, 3000, 'alert');
    const a = alertsOf(sub.messages)[0];
    assert.equal(a.model, 'fixture-2');
    assert.deepEqual(Array.from(decodeFeatures(a.features!)), f32([...r.values.slice(0, 6), 6, 80]));
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('--sample-normal over the broker: about flows/N samples, each valid with its features and a hashed flow', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubN/#');
  const n = 50;
  const hub = await Hub.start(hubOpts({ hub: 'hubN', sampleNormal: n, sampleBudget: 50_000_000, statsIntervalMs: 0 }));
  try {
    await until(() => hub.publisher.connected, 3000, 'connect');
    const flows = 20_000;
    const rows = Array.from({ length: flows }, (_, i) => row(i, 0));
    const bySport = new Map(rows.map((r) => [r.sport, r]));
    await hub.runFlows(Readable.from([text(rows)]));
    assert.ok(await hub.finish(10_000));
    const sampler = hub.sampler!;
    await until(() => sub.messages.filter((m) => m.topic.endsWith('/sample')).length >= sampler.samples, 5000, 'samples');
    const samples = sub.messages.filter((m) => m.topic.endsWith('/sample'));
    const mean = flows / n;
    const sd = Math.sqrt(flows * (1 / n) * (1 - 1 / n));
    console.log(`sample-normal ${n}: ${samples.length} samples received for ${flows} Normal flows (expected ${mean} ± ${(5 * sd).toFixed(0)}; ${sampler.dropped} dropped)`);
    assert.equal(samples.length, sampler.samples);
    assert.equal(sampler.dropped, 0);
    assert.ok(Math.abs(samples.length - mean) <= 5 * sd, `${samples.length} samples, want ${mean} ± ${5 * sd}`);
    const ids = new Set<string>();
    for (const m of samples) {
      const d = decodeSample(JSON.stringify(m.json));
      assert.ok(d.ok, d.ok ? '' : d.error);
      const s = d.value;
      assert.equal(s.class, 'Normal');
      assert.equal(s.model, 'fixture-1');
      assert.match(s.flow!.src, /^h:[0-9a-f]{16}$/);
      assert.equal(s.flow!.dport, 80);
      assert.deepEqual(Array.from(decodeFeatures(s.features)), f32(bySport.get(s.flow!.sport)!.values));
      ids.add(s.id);
    }
    assert.equal(ids.size, samples.length, 'sample ids are unique');
    hub.publishStats();
    await until(() => sub.messages.some((m) => m.topic.endsWith('/stats')), 3000, 'stats');
    const st = decodeStats(JSON.stringify(sub.messages.find((m) => m.topic.endsWith('/stats'))!.json));
    assert.ok(st.ok);
    assert.equal(st.value.samples, samples.length);
    assert.equal(st.value.samplesDropped, 0);
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('--sample-budget over the broker: a flood of Normal flows, every one picked, stays within the bytes per minute', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubB/#');
  const budget = 8192;
  const hub = await Hub.start(hubOpts({ hub: 'hubB', sampleNormal: 1, sampleBudget: budget }));
  try {
    await until(() => hub.publisher.connected, 3000, 'connect');
    const t0 = performance.now();
    const flows = 20_000;
    await hub.runFlows(Readable.from([text(Array.from({ length: flows }, (_, i) => row(i, 0)))]));
    assert.ok(await hub.finish(10_000));
    const secs = (performance.now() - t0) / 1000;
    const sampler = hub.sampler!;
    await until(() => sub.messages.filter((m) => m.topic.endsWith('/sample')).length >= sampler.samples, 3000, 'samples');
    const samples = sub.messages.filter((m) => m.topic.endsWith('/sample'));
    // On the wire: payload, topic and the QoS 0 PUBLISH header (5 bytes at most for these sizes).
    const bytes = samples.reduce((s, m) => s + Buffer.byteLength(JSON.stringify(m.json)) + m.topic.length + 5, 0);
    const bound = sampler.capacity + ((budget - sampler.capacity) * secs) / 60;
    console.log(`sample budget ${budget} B/min: ${samples.length} samples, ${bytes} bytes received in ${secs.toFixed(1)} s ` +
      `(bucket ${sampler.capacity} B + refill → at most ${bound.toFixed(0)} B); ${sampler.dropped} of ${flows} dropped`);
    assert.ok(secs < 60, 'the run is shorter than a minute, so everything received is one minute\'s bytes');
    assert.ok(bytes <= budget, `${bytes} bytes > ${budget}`);
    assert.ok(bytes <= bound + 1, `${bytes} bytes > the bucket's bound ${bound}`);
    assert.equal(sampler.samples + sampler.dropped, flows);
    assert.ok(samples.length >= 1 && sampler.dropped > flows / 2);
    assert.equal(bytes, sampler.bytes, 'the hub charges what the broker delivers');
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('--sample-privacy: hash is stable across a restart of one hub and differs on another; drop omits the flow', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/+/sample');
  const src = '10.42.0.7';
  const run = async (hubId: string, stateDir: string, privacy?: 'hash' | 'drop' | 'keep') => {
    const before = sub.messages.length;
    const hub = await Hub.start(hubOpts({ hub: hubId, stateDir, sampleNormal: 1, samplePrivacy: privacy }));
    try {
      await until(() => hub.publisher.connected, 3000, 'connect');
      await hub.runFlows(Readable.from([text([row(1, 0, src)])]));
      assert.ok(await hub.finish(5000));
      await until(() => sub.messages.length > before, 3000, 'a sample');
    } finally {
      await hub.close();
    }
    const d = decodeSample(JSON.stringify(sub.messages[before].json));
    assert.ok(d.ok, d.ok ? '' : d.error);
    assert.ok(!JSON.stringify(sub.messages[before].json).includes(privacy === 'keep' ? 'no such text' : src));
    return d.value;
  };
  try {
    const stateA = mkdtempSync(join(root, 'state-'));
    const a1 = await run('hubP', stateA);
    const a2 = await run('hubP', stateA);
    const b = await run('hubQ', mkdtempSync(join(root, 'state-')));
    assert.match(a1.flow!.src, /^h:[0-9a-f]{16}$/);
    assert.equal(a1.flow!.src, a2.flow!.src, 'one hub: the same address hashes the same after a restart');
    assert.equal(a1.flow!.dst, a2.flow!.dst);
    assert.notEqual(a1.flow!.src, b.flow!.src, 'another hub: not linkable');
    const dropped = await run('hubP', stateA, 'drop');
    assert.equal(dropped.flow, undefined);
    const kept = await run('hubP', stateA, 'keep');
    assert.equal(kept.flow!.src, src);
  } finally {
    sub.client.end(true);
  }
});

test('without the options a hub publishes what it did before: no features on alerts, no samples, no sample counters', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubO/#');
  const hub = await Hub.start(hubOpts({ hub: 'hubO', burstMs: 60_000 }));
  try {
    const rows = Array.from({ length: 400 }, (_, i) => row(i, i % FIXTURE_LABELS.length, i % 2 ? '10.7.7.7' : undefined));
    await hub.runFlows(Readable.from([text(rows)]));
    hub.finding({ class: 'Scan', host: '10.9.9.9', role: 'source', tUs: 1,
      evidence: { kind: 'scan-sweep', ip: '10.9.9.9', macs: [], detail: 'x' } });
    assert.ok(await hub.finish(10_000));
    hub.publishStats();
    await until(() => sub.messages.some((m) => m.topic.endsWith('/stats')), 3000, 'stats');
    await new Promise((r) => setTimeout(r, 200));
    const alerts = sub.messages.filter((m) => m.topic.endsWith('/alert'));
    assert.ok(alerts.length > 100);
    const oldKeys = ['v', 'hub', 'site', 'seq', 'ts', 'class', 'confidence', 'probabilities', 'flow', 'model', 'count', 'source'];
    for (const m of alerts) {
      assert.equal(m.json.features, undefined);
      const keys = Object.keys(m.json).filter((k) => k !== 'floor');
      // A finding is about a host: evidence instead of probabilities, as before.
      assert.deepEqual(keys, m.json.evidence ? [...oldKeys.filter((k) => k !== 'probabilities'), 'evidence'] : oldKeys);
    }
    assert.equal(sub.messages.filter((m) => m.topic.endsWith('/sample')).length, 0);
    const stats = sub.messages.find((m) => m.topic.endsWith('/stats'))!.json;
    assert.equal(stats.samples, undefined);
    assert.equal(stats.samplesDropped, undefined);
    assert.equal(hub.sampler, undefined);
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('the largest realistic alert with features (every flow column, probabilities, evidence, longest ids) is < 2 kB', () => {
  const id64 = 'x'.repeat(64);
  const labels = ['Normal', 'DoS', 'MITM ARP Spoofing', 'Mirai', 'Scan', 'WebAttack'];
  // Values as wide as their float32 gets; the base64 length depends only on the count.
  const features = encodeFeatures(RAW_COLUMNS.map((_, j) => -3.4e38 + j));
  const ipv6 = 'fe80:0000:0000:0000:0211:22ff:fe33:4455'; // 39 characters: the longest address text
  const a = encodeAlert({
    v: 1, hub: id64, site: id64, seq: Number.MAX_SAFE_INTEGER, ts: Date.UTC(2199, 11, 31, 23, 59, 59, 999),
    class: 'MITM ARP Spoofing', confidence: 0.9999,
    probabilities: Object.fromEntries(labels.map((l) => [l, 0.1234])),
    flow: { src: ipv6, dst: ipv6, sport: 65535, dport: 65535, proto: 255 },
    model: `${'2026-12-04.1-d1841e85'}-${'y'.repeat(42)}`, count: 2 ** 31 - 1, source: 'rule',
    // The widest evidence a watcher writes: the scan watcher's 8 "ip:port" targets and its longest detail.
    evidence: {
      kind: 'scan-odd-flags', ip: '255.255.255.255', macs: ['aa:bb:cc:dd:ee:ff', '11:22:33:44:55:66'],
      detail: '255.255.255.255: 4294967295 unanswered or refused attempts (4294967295 hosts, 65535 ports) within 600 s',
      count: 4294967295, windowMs: 600000, hosts: 4294967295, ports: 65535,
      targets: Array.from({ length: 8 }, () => '255.255.255.255:65535'),
    },
    features,
  });
  const sent = withFloor(a, Number.MAX_SAFE_INTEGER);
  const bytes = Buffer.byteLength(sent);
  console.log(`largest realistic alert: ${bytes} bytes (${RAW_COLUMNS.length} features = ${features.length} base64 characters)`);
  assert.ok(decodeAlert(sent).ok);
  assert.ok(bytes < 2048, `${bytes} bytes`);
  assert.ok(bytes < MAX_PAYLOAD_BYTES);
});
