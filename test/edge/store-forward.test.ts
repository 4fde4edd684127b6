/**
 * Store and forward, end to end: the broker dies in the middle of a stream of alerts and comes back; the hub
 * restarts with alerts still queued. The subscriber must end with every alert exactly once after removing
 * QoS 1 duplicates by (hub, seq).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hub, type HubOptions } from '../../edge/hub.ts';
import { buildFixtureBundle, devKeyPair, fixtureCsvRow, FIXTURE_CSV_HEADER, type KeyPair } from './fixtures/bundle.ts';
import { Mosquitto, freePort, hasMosquitto, startAedes, subscriber, until } from './fixtures/brokers.ts';

let root: string;
let keys: KeyPair;
let bundle: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'iot-ids-sf-'));
  keys = devKeyPair();
  bundle = await buildFixtureBundle(join(root, 'bundle'), keys);
});
after(() => rmSync(root, { recursive: true, force: true }));

const opts = (broker: string, stateDir: string, over: Partial<HubOptions> = {}): HubOptions => ({
  bundleDir: bundle,
  publicKeyPem: keys.publicKeyPem,
  broker,
  site: 'sf',
  hub: 'hub1',
  stateDir,
  statsIntervalMs: 0,
  overflow: 'block',
  log: () => undefined,
  ...over,
});

/** Every row is an attack (DoS or Mirai), so N rows → N alerts. */
const attackRows = (from: number, n: number): string =>
  Array.from({ length: n }, (_, i) => fixtureCsvRow(from + i, 1 + ((from + i) % 2))).join('\n') + '\n';

function uniqueSeqs(msgs: { topic: string; json: any }[]): Set<number> {
  return new Set(msgs.filter((m) => m.topic.endsWith('/alert')).map((m) => m.json.seq as number));
}

test('broker killed mid-stream and restarted on the same port: the subscriber gets all N alerts exactly once', async (t) => {
  if (!hasMosquitto()) return t.skip('mosquitto not installed (/usr/sbin/mosquitto): store-and-forward test skipped');
  const N = 1500;
  const mq = await Mosquitto.create();
  const sub = await subscriber(mq.url, 'ids/v1/sf/hub1/alert', { clientId: 'sf-sub', clean: false });
  // The hub reconnects more slowly than the subscriber, so the subscriber's subscription is back first
  // (the broker runs without persistence: a restart forgets sessions).
  const hub = await Hub.start(opts(mq.url, mkdtempSync(join(root, 'state-')), { reconnectMs: 800 }));
  let queuedWhileDown = 0;
  try {
    await until(() => hub.publisher.connected, 3000, 'hub connect');
    const chunks: string[] = [FIXTURE_CSV_HEADER + '\n'];
    for (let i = 0; i < N; i += 100) chunks.push(attackRows(i, 100));
    const paced = Readable.from(
      (async function* () {
        for (let c = 0; c < chunks.length; c++) {
          if (c === 6) await mq.kill();
          if (c > 6 && c < 11) queuedWhileDown = Math.max(queuedWhileDown, hub.store.size());
          if (c === 11) await mq.start();
          yield chunks[c];
          await new Promise((r) => setTimeout(r, 60));
        }
      })(),
    );
    const r = await hub.runFlows(paced);
    assert.equal(r?.accepted, N);
    assert.ok(await hub.finish(20_000), 'every alert acknowledged after the broker came back');
    await until(() => uniqueSeqs(sub.messages).size >= N, 10_000, `${N} unique alerts`);
    const seqs = uniqueSeqs(sub.messages);
    assert.equal(seqs.size, N);
    const sorted = [...seqs].sort((a, b) => a - b);
    assert.equal(sorted[0], 0);
    assert.equal(sorted[N - 1], N - 1, 'no gaps: seq 0..N-1');
    assert.ok(queuedWhileDown > 0, 'alerts were queued while the broker was down');
    assert.equal(hub.store.size(), 0);
    assert.ok(hub.publisher.reconnects >= 1);
    const dups = sub.messages.filter((m) => m.topic.endsWith('/alert')).length - N;
    t.diagnostic(`duplicates removed by (hub, seq): ${dups}; peak offline queue ${queuedWhileDown}`);
  } finally {
    await hub.close();
    sub.client.end(true);
    await mq.stop();
  }
});

test('alerts queued while no broker is reachable survive a hub restart and are sent in order', async () => {
  const state = mkdtempSync(join(root, 'state-'));
  const nowhere = `mqtt://127.0.0.1:${await freePort()}`;
  const a = await Hub.start(opts(nowhere, state, { reconnectMs: 200 }));
  await a.runFlows(Readable.from([FIXTURE_CSV_HEADER + '\n' + attackRows(0, 300)]));
  assert.equal(await a.finish(300), false, 'nothing can be acknowledged without a broker');
  assert.equal(a.store.size(), 300);
  await a.close();

  const broker = await startAedes();
  const sub = await subscriber(broker.url, 'ids/v1/sf/hub1/alert');
  const b = await Hub.start(opts(broker.url, state));
  try {
    assert.equal(b.store.size(), 300, 'queue reloaded from disk');
    await b.runFlows(Readable.from([FIXTURE_CSV_HEADER + '\n' + attackRows(300, 50)]));
    assert.ok(await b.finish(10_000));
    await until(() => uniqueSeqs(sub.messages).size >= 350, 5000, '350 alerts');
    const seqs = sub.messages.map((m) => m.json.seq as number);
    // In order: the 300 from before the restart first, then the new ones with higher numbers.
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seq ${seqs[i]} after ${seqs[i - 1]}`);
    assert.equal(new Set(seqs).size, 350);
    assert.ok(seqs[300] >= 300, 'the restarted hub never reuses a sequence number');
  } finally {
    await b.close();
    sub.client.end(true);
    await broker.stop();
  }
});

test('the offline bound drops the oldest alerts, counted and reported in stats', async () => {
  const state = mkdtempSync(join(root, 'state-'));
  const nowhere = `mqtt://127.0.0.1:${await freePort()}`;
  const hub = await Hub.start(opts(nowhere, state, { offlineMax: 100 }));
  try {
    await hub.runFlows(Readable.from([FIXTURE_CSV_HEADER + '\n' + attackRows(0, 250)]));
    await hub.finish(100);
    assert.equal(hub.store.size(), 100);
    assert.equal(hub.store.dropped(), 150);
    const oldest = JSON.parse(hub.store.peek(0, 1)[0].payload);
    assert.equal(oldest.seq, 150, 'the newest 100 are kept');
  } finally {
    await hub.close();
  }
});
