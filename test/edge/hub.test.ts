import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hub, type HubOptions } from '../../edge/hub.ts';
import { encodeDownlink } from '../../edge/downlink.ts';
import { Classifier } from '../../edge/classifier.ts';
import { decodeAlert, decodeStats, decodeStatus, encodeStats } from '../../shared/payloads.ts';
import { isIdsError } from '../../shared/errors.ts';
import { keyFingerprint } from '../../shared/bundle-verify.ts';
import { buildFixtureBundle, devKeyPair, fixtureCsvRow, FIXTURE_CSV_HEADER, FIXTURE_LABELS, type KeyPair } from './fixtures/bundle.ts';
import { startAedes, subscriber, until, type Broker } from './fixtures/brokers.ts';

let root: string;
let keys: KeyPair;
let bundleV1: string;
let bundleV2: string;
let broker: Broker;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'iot-ids-hub-'));
  keys = devKeyPair();
  bundleV1 = await buildFixtureBundle(join(root, 'bundle-v1'), keys, 'fixture-1');
  bundleV2 = await buildFixtureBundle(join(root, 'bundle-v2'), keys, 'fixture-2', '2026-12-01T00:00:00Z');
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

/** Rows cycle through the classes; every 7th is a weak Scan (below its threshold → Normal); two are malformed. */
function csv(n: number): { text: string; expected: Map<string, number> } {
  const lines = [FIXTURE_CSV_HEADER];
  const expected = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    if (i % 7 === 6) {
      lines.push(fixtureCsvRow(i, 3, 40));
      continue;
    }
    const k = i % FIXTURE_LABELS.length;
    lines.push(fixtureCsvRow(i, k));
    if (k !== 0) expected.set(FIXTURE_LABELS[k], (expected.get(FIXTURE_LABELS[k]) ?? 0) + 1);
  }
  lines.splice(10, 0, 'x,1.2.3.4,1,5.6.7.8,80,6,t,abc,1,1,1,1,1,x'); // text in a numeric cell
  lines.splice(20, 0, 'too,few,cells');
  return { text: lines.join('\r\n') + '\r\n', expected };
}

test('CSV flows → hub → aedes → subscriber receives one alert per non-Normal verdict with the payload fields', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubA/#');
  const hub = await Hub.start(hubOpts());
  try {
    const { text, expected } = csv(500);
    const r = await hub.runFlows(Readable.from([text.slice(0, 777), text.slice(777)]));
    assert.equal(r?.malformed, 2);
    assert.equal(r?.accepted, 500);
    assert.ok(await hub.finish(10_000), 'all alerts acknowledged');
    const want = [...expected.values()].reduce((a, b) => a + b, 0);
    await until(() => sub.messages.filter((m) => m.topic.endsWith('/alert')).length >= want, 5000, `${want} alerts`);
    await new Promise((r) => setTimeout(r, 100));
    const alerts = sub.messages.filter((m) => m.topic.endsWith('/alert')).map((m) => decodeAlert(JSON.stringify(m.json)));
    assert.equal(alerts.length, want);
    const got = new Map<string, number>();
    let lastSeq = -1;
    for (const a of alerts) {
      assert.ok(a.ok, a.ok ? '' : a.error);
      const v = a.value;
      assert.equal(v.hub, 'hubA');
      assert.equal(v.site, 'site1');
      assert.equal(v.model, 'fixture-1');
      assert.ok(v.seq > lastSeq, 'seq increases in publish order');
      lastSeq = v.seq;
      assert.ok(v.confidence >= 0.5 && v.confidence <= 1);
      assert.equal(v.flow.dst, '192.168.1.1');
      assert.equal(v.flow.dport, 80);
      assert.equal(v.flow.proto, 6);
      assert.match(v.flow.src, /^10\.0\.0\.\d+$/);
      assert.ok(Math.abs(Object.values(v.probabilities!).reduce((x, y) => x + y, 0) - 1) < 0.01);
      got.set(v.class, (got.get(v.class) ?? 0) + 1);
    }
    assert.deepEqual([...got.entries()].sort(), [...expected.entries()].sort());
    assert.ok(!got.has('Normal'));
    // Status is retained and names the bundle.
    const status = sub.messages.find((m) => m.topic.endsWith('/status'));
    assert.ok(status && decodeStatus(JSON.stringify(status.json)).ok);
    assert.equal(status!.json.state, 'online');
    assert.equal(status!.json.bundle, 'fixture-1');
    // ...and which signer the hub trusts: sha256 of the raw Ed25519 key; not the demo key, so no demoKey flag.
    assert.equal(status!.json.keyFingerprint, keyFingerprint(keys.publicKeyPem));
    assert.match(status!.json.keyFingerprint, /^[0-9a-f]{64}$/);
    assert.equal(status!.json.demoKey, undefined);
    // finish() published stats: malformed counted, latency measured.
    await until(() => sub.messages.some((m) => m.topic.endsWith('/stats')), 2000, 'stats');
    const stats = decodeStats(JSON.stringify(sub.messages.find((m) => m.topic.endsWith('/stats'))!.json));
    assert.ok(stats.ok);
    assert.equal(stats.value.malformed, 2);
    assert.equal(stats.value.flows, 500);
    assert.equal(stats.value.dropped, 0);
    assert.equal(stats.value.classCounts.Normal, 500 - [...expected.values()].reduce((a, b) => a + b, 0));
    assert.ok(stats.value.latencyMs.p99 > 0);
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('a tampered bundle is refused before anything runs', async () => {
  const bad = join(root, 'tampered');
  cpSync(bundleV1, bad, { recursive: true });
  const model = readdirSync(bad).find((f) => f.endsWith('.onnx'))!;
  const bytes = readFileSync(join(bad, model));
  bytes[bytes.length - 5] ^= 1;
  writeFileSync(join(bad, model), bytes);
  await assert.rejects(Hub.start(hubOpts({ bundleDir: bad })), (e) => isIdsError(e, 'BAD_BUNDLE') && /sha256/.test(e.message));
  const other = devKeyPair();
  await assert.rejects(Hub.start(hubOpts({ publicKeyPem: other.publicKeyPem })), (e) => isIdsError(e, 'BAD_BUNDLE') && /signature/.test(e.message));
});

test('downlink: a tampered bundle is counted and reported, the hub keeps its bundle; a good one is swapped in', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubB/#');
  const hub = await Hub.start(hubOpts({ hub: 'hubB' }));
  try {
    await until(() => hub.publisher.connected, 3000, 'connect');
    const files = (dir: string) => Object.fromEntries(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
    const tampered = files(bundleV2);
    const model = Object.keys(tampered).find((f) => f.endsWith('.onnx'))!;
    tampered[model] = tampered[model].slice();
    tampered[model][100] ^= 0xff;
    const pub = await subscriber(broker.url, 'nothing/here');
    pub.client.publish(hub.publisher.topics.bundle, encodeDownlink(tampered), { qos: 1 });
    pub.client.publish(hub.publisher.topics.bundle, 'not json at all', { qos: 1 });
    await until(() => hub.stats.bundlesRejected === 2, 5000, 'two rejections');
    assert.equal(hub.modelVersion, 'fixture-1');
    assert.match(hub.stats.lastError ?? '', /bundle/);
    await until(() => sub.messages.some((m) => m.topic.endsWith('/stats') && m.json.bundlesRejected === 2), 3000,
      'rejections reported in stats');

    // Still classifying with the old bundle.
    await hub.runFlows(Readable.from([FIXTURE_CSV_HEADER + '\n' + fixtureCsvRow(1, 1) + '\n']));
    await hub.finish(5000);
    await until(() => sub.messages.some((m) => m.topic.endsWith('/alert')), 3000, 'alert');
    assert.equal(sub.messages.find((m) => m.topic.endsWith('/alert'))!.json.model, 'fixture-1');

    pub.client.publish(hub.publisher.topics.bundle, encodeDownlink(files(bundleV2)), { qos: 1 });
    await until(() => hub.modelVersion === 'fixture-2', 5000, 'swap to fixture-2');
    await until(() => sub.messages.some((m) => m.topic.endsWith('/status') && m.json.bundle === 'fixture-2'), 3000, 'status');
    await hub.runFlows(Readable.from([FIXTURE_CSV_HEADER + '\n' + fixtureCsvRow(2, 2) + '\n']));
    await hub.finish(5000);
    await until(() => sub.messages.filter((m) => m.topic.endsWith('/alert')).length === 2, 3000, 'second alert');
    const second = sub.messages.filter((m) => m.topic.endsWith('/alert'))[1].json;
    assert.equal(second.model, 'fixture-2');
    assert.equal(second.class, 'Mirai');
    pub.client.end(true);
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('a CSV whose header lacks a model feature is reported as an input error, not a crash', async () => {
  const hub = await Hub.start(hubOpts({ hub: 'hubC' }));
  try {
    const r = await hub.runFlows(Readable.from(['Src IP,Dst IP,Flow Duration\n1,2,3\n']));
    assert.equal(r, undefined);
    assert.equal(hub.stats.inputErrors, 1);
    assert.match(hub.stats.lastError!, /Tot_Fwd_Pkts/);
  } finally {
    await hub.close();
  }
});

test('backpressure: a live input faster than inference is shed, counted in stats, and the queue stays bounded', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubD/stats');
  // The real classifier, slowed to 15 ms per batch: inference falls far behind a burst of 5,000 flows.
  const hub = await Hub.start(hubOpts({
    hub: 'hubD',
    overflow: 'drop',
    capacity: 300,
    maxBatch: 64,
    maxDelayMs: 1,
    classifierFactory: (b, maxRows) => {
      const real = new Classifier(b, maxRows);
      return Object.assign(Object.create(real), {
        classify: async (rows: number) => {
          await new Promise((r) => setTimeout(r, 15));
          return real.classify(rows);
        },
      }) as Classifier;
    },
  }));
  try {
    let maxDepth = 0;
    const lines = Array.from({ length: 5000 }, (_, i) => fixtureCsvRow(i, i % 5));
    const chunks = [FIXTURE_CSV_HEADER + '\n'];
    for (let i = 0; i < lines.length; i += 500) chunks.push(lines.slice(i, i + 500).join('\n') + '\n');
    const source = Readable.from((async function* () {
      for (const c of chunks) {
        yield c;
        maxDepth = Math.max(maxDepth, hub.queueDepth);
        await new Promise((r) => setImmediate(r));
      }
    })());
    const r = await hub.runFlows(source);
    assert.ok(r!.shed > 0, 'flows were shed');
    assert.equal(r!.accepted + r!.shed, 5000);
    await hub.finish(10_000);
    assert.equal(hub.dropped, r!.shed);
    assert.equal(hub.stats.flows, r!.accepted, 'every accepted flow was classified');
    assert.ok(maxDepth <= 300, `queue depth ${maxDepth} within its bound`);
    await until(() => sub.messages.some((m) => m.json.dropped === r!.shed), 3000, 'dropped in stats');
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('burst summarising: the first alert of a key goes at once, the rest of the window as one alert with count', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubE/alert');
  const hub = await Hub.start(hubOpts({ hub: 'hubE', burstMs: 60_000 }));
  try {
    // 100 DoS verdicts from one source to one service (source ports vary, as in a flood), plus one Mirai.
    const rows = Array.from({ length: 100 }, (_, i) => fixtureCsvRow(i * 250, 1));
    rows.push(fixtureCsvRow(7, 2));
    await hub.runFlows(Readable.from([FIXTURE_CSV_HEADER + '\n' + rows.join('\n') + '\n']));
    assert.ok(await hub.finish(5000));
    await until(() => sub.messages.length >= 3, 3000, 'three alerts');
    await new Promise((r) => setTimeout(r, 100));
    const alerts = sub.messages.map((m) => m.json);
    assert.equal(alerts.length, 3);
    const dos = alerts.filter((a) => a.class === 'DoS');
    assert.deepEqual(dos.map((a) => a.count), [1, 99]);
    assert.equal(alerts.find((a) => a.class === 'Mirai').count, 1);
    const seqs = alerts.map((a) => a.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.equal(new Set(seqs).size, 3);
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('--mitm-needs-arp: model MITM verdicts are withheld and counted until the ARP watcher reports spoofing', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubM/alert');
  const hub = await Hub.start(hubOpts({ hub: 'hubM', mitmNeedsArpMs: 60_000 }));
  const mitm = FIXTURE_LABELS.indexOf('MITM ARP Spoofing');
  const rows = (from: number) => FIXTURE_CSV_HEADER + '\n' + [0, 1, 2, 3].map((i) => fixtureCsvRow(from + i, i % 2 ? mitm : 1)).join('\n') + '\n';
  try {
    // Before any evidence: the 2 DoS verdicts alert, the 2 MITM verdicts do not.
    await hub.runFlows(Readable.from([rows(0)]));
    assert.ok(await hub.finish(5000));
    assert.equal(hub.stats.unconfirmed, 2);
    assert.equal(hub.stats.classCounts['MITM ARP Spoofing'], 2, 'withheld verdicts still count as verdicts');
    // The watcher's evidence (a rule alert of its own) opens the window: now MITM verdicts alert.
    hub.ruleAlert({ kind: 'arp-gateway-claim', ip: '10.0.0.1', macs: ['aa:bb:cc:dd:ee:ff'], detail: 'test' });
    await hub.runFlows(Readable.from([rows(10)]));
    assert.ok(await hub.finish(5000));
    assert.equal(hub.stats.unconfirmed, 2);
    await until(() => sub.messages.length >= 7, 3000, 'seven alerts');
    await new Promise((r) => setTimeout(r, 100));
    const by = (src: string) => sub.messages.map((m) => m.json).filter((a) => a.source === src).map((a) => a.class);
    assert.deepEqual(by('rule'), ['MITM ARP Spoofing']);
    assert.deepEqual(by('model').sort(), ['DoS', 'DoS', 'DoS', 'DoS', 'MITM ARP Spoofing', 'MITM ARP Spoofing']);
    const snap = hub.stats.snapshot({ hub: 'hubM', site: 'site1' }, { queueDepth: 0, dropped: 0, offlineQueued: 0 });
    const decoded = decodeStats(encodeStats(snap));
    assert.ok(decoded.ok && decoded.value.unconfirmed === 2, 'the stats payload carries the count');
  } finally {
    await hub.close();
    sub.client.end(true);
  }
  // Off (the default for flow input): every MITM verdict alerts.
  const plain = await Hub.start(hubOpts({ hub: 'hubN' }));
  try {
    await plain.runFlows(Readable.from([rows(20)]));
    assert.ok(await plain.finish(5000));
    assert.equal(plain.stats.unconfirmed, 0);
    assert.equal(plain.stats.alerts, 4);
  } finally {
    await plain.close();
  }
});

test('stats are published periodically (QoS 0) with the interval, rate and gauges', async () => {
  const sub = await subscriber(broker.url, 'ids/v1/site1/hubF/stats');
  const hub = await Hub.start(hubOpts({ hub: 'hubF', statsIntervalMs: 100 }));
  try {
    await hub.runFlows(Readable.from([FIXTURE_CSV_HEADER + '\n' + Array.from({ length: 50 }, (_, i) => fixtureCsvRow(i, i % 5)).join('\n') + '\n']));
    await hub.finish(5000);
    await until(() => sub.messages.length >= 3, 3000, 'three stats messages');
    const s = sub.messages.map((m) => decodeStats(JSON.stringify(m.json)));
    assert.ok(s.every((x) => x.ok));
    const last = (s[s.length - 1] as { ok: true; value: import('../../shared/payloads.ts').Stats }).value;
    assert.equal(last.flows, 50);
    assert.ok(last.intervalMs > 0);
    assert.equal(last.queueDepth, 0);
    assert.equal(last.offlineQueued, 0);
  } finally {
    await hub.close();
    sub.client.end(true);
  }
});

test('downlink by URL: the hub GETs the bundle document, verifies it and swaps; a 404 is counted', async () => {
  const { createServer } = await import('node:http');
  const files = Object.fromEntries(readdirSync(bundleV2).map((f) => [f, new Uint8Array(readFileSync(join(bundleV2, f)))]));
  const doc = encodeDownlink(files);
  const server = createServer((req, res) => {
    if (req.url === '/v2.json') res.end(doc);
    else (res.statusCode = 404), res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const hub = await Hub.start(hubOpts({ hub: 'hubG' }));
  try {
    assert.equal(await hub.applyDownlink(Buffer.from(JSON.stringify({ url: `${base}/missing.json` }))), false);
    assert.equal(hub.stats.bundlesRejected, 1);
    assert.match(hub.stats.lastError!, /404/);
    assert.equal(await hub.applyDownlink(Buffer.from(JSON.stringify({ url: 'file:///etc/passwd' }))), false);
    assert.equal(hub.stats.bundlesRejected, 2);
    assert.equal(hub.modelVersion, 'fixture-1');
    assert.equal(await hub.applyDownlink(Buffer.from(JSON.stringify({ url: `${base}/v2.json` }))), true);
    assert.equal(hub.modelVersion, 'fixture-2');
    // The same bundle again (a retained downlink after a reconnect) changes nothing.
    assert.equal(await hub.applyDownlink(Buffer.from(doc)), true);
    assert.equal(hub.stats.bundlesLoaded, 1);
  } finally {
    await hub.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
  // After a restart with the same state dir the pushed (newer) bundle is still the one running...
  const again = await Hub.start({ ...hubOpts({ hub: 'hubG' }), stateDir: (hub as unknown as { opts: HubOptions }).opts.stateDir });
  assert.equal(again.modelVersion, 'fixture-2');
  await again.close();
  // ...unless --bundle is newer than it.
  const bundleV3 = await buildFixtureBundle(join(root, 'bundle-v3'), keys, 'fixture-3', '2026-12-02T00:00:00Z');
  const third = await Hub.start({ ...hubOpts({ hub: 'hubG', bundleDir: bundleV3 }), stateDir: (hub as unknown as { opts: HubOptions }).opts.stateDir });
  assert.equal(third.modelVersion, 'fixture-3');
  await third.close();
});
