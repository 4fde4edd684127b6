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
  const hub = await Hub.start(opts(mq.url, mkdtempSync(join(root, 'state-')), { reconnectMs: 1500 }));
  let queuedWhileDown = 0;
  let killedAt = '';
  let restartedAt = '';
  try {
    await until(() => hub.publisher.connected, 3000, 'hub connect');
    const chunks: string[] = [FIXTURE_CSV_HEADER + '\n'];
    for (let i = 0; i < N; i += 100) chunks.push(attackRows(i, 100));
    const paced = Readable.from(
      (async function* () {
        for (let c = 0; c < chunks.length; c++) {
          if (c === 6) {
            // A broker without persistence loses what it acknowledged but had not yet delivered when it dies
            // (and a SIGKILL's RST makes the subscriber's kernel discard unread data): that is the broker's
            // durability, not the hub's. So the kill comes once the subscriber has everything the broker
            // acknowledged so far, while the hub keeps producing alerts.
            await until(() => uniqueSeqs(sub.messages).size >= hub.publisher.published, 5000, 'subscriber caught up');
            killedAt = `${hub.store.headId()}+${hub.store.size()}`;
            await mq.kill();
          }
          if (c > 6 && c < 11) queuedWhileDown = Math.max(queuedWhileDown, hub.store.size());
          if (c === 11) {
            restartedAt = `${hub.store.headId()}+${hub.store.size()}`;
            await mq.start();
          }
          yield chunks[c];
          await new Promise((r) => setTimeout(r, 60));
        }
      })(),
    );
    const r = await hub.runFlows(paced);
    assert.equal(r?.accepted, N);
    assert.ok(await hub.finish(20_000), 'every alert acknowledged after the broker came back');
    await until(() => uniqueSeqs(sub.messages).size >= N, 10_000, `${N} unique alerts`).catch((e) => {
      const got = uniqueSeqs(sub.messages);
      const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !got.has(i));
      throw new Error(`${(e as Error).message}: ${missing.length} missing, first ${missing.slice(0, 20).join(',')}; ` +
        `killed at ${killedAt}, restarted at ${restartedAt}, ${sub.messages.length} messages`);
    });
    const seqs = uniqueSeqs(sub.messages);
    assert.equal(seqs.size, N);
    const sorted = [...seqs].sort((a, b) => a - b);
    assert.equal(sorted[0], 0);
    assert.equal(sorted[N - 1], N - 1, 'no gaps: seq 0..N-1');
    assert.ok(queuedWhileDown > 0, 'alerts were queued while the broker was down');
    assert.equal(hub.store.size(), 0);
    assert.ok(hub.publisher.disconnects >= 1, 'the hub saw the broker go');
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

/** A TCP proxy between hub and broker whose "cable" can be held (bytes stop flowing) and cut. */
async function cable(targetPort: number) {
  const { createServer, connect } = await import('node:net');
  const pairs: import('node:net').Socket[][] = [];
  let hold = false;
  const held: Buffer[] = [];
  const server = createServer((down) => {
    const up = connect(targetPort, '127.0.0.1');
    pairs.push([down, up]);
    down.on('data', (d) => (hold ? held.push(d) : up.write(d)));
    up.on('data', (d) => down.write(d));
    const end = () => (down.destroy(), up.destroy());
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`,
    hold: () => void (hold = true),
    /** Cuts every connection; what was held never reaches the broker. */
    cut: () => {
      hold = false;
      held.length = 0;
      for (const p of pairs.splice(0)) for (const s of p) s.destroy();
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('the link to the broker is cut with alerts in flight: they are sent again, the subscriber gets all N once after dedupe', async (t) => {
  if (!hasMosquitto()) return t.skip('mosquitto not installed: skipped');
  const N = 1000;
  const mq = await Mosquitto.create();
  const link = await cable(mq.port);
  const sub = await subscriber(mq.url, 'ids/v1/sf/hub2/alert');
  const hub = await Hub.start(opts(link.url, mkdtempSync(join(root, 'state-')), { hub: 'hub2', reconnectMs: 200 }));
  let inflightAtCut = 0;
  try {
    await until(() => hub.publisher.connected, 3000, 'hub connect');
    const chunks: string[] = [FIXTURE_CSV_HEADER + '\n'];
    for (let i = 0; i < N; i += 100) chunks.push(attackRows(i, 100));
    const paced = Readable.from(
      (async function* () {
        for (let c = 0; c < chunks.length; c++) {
          if (c === 4) link.hold();
          yield chunks[c];
          await new Promise((r) => setTimeout(r, 50));
          if (c === 5) {
            inflightAtCut = hub.store.size();
            link.cut();
          }
        }
      })(),
    );
    await hub.runFlows(paced);
    assert.ok(await hub.finish(20_000));
    await until(() => uniqueSeqs(sub.messages).size >= N, 10_000, `${N} unique alerts`);
    const seqs = [...uniqueSeqs(sub.messages)].sort((a, b) => a - b);
    assert.equal(seqs.length, N);
    assert.equal(seqs[N - 1], N - 1);
    assert.ok(inflightAtCut > 0, 'alerts were unacknowledged when the link was cut');
    assert.ok(hub.publisher.disconnects >= 1);
    t.diagnostic(`unacknowledged at the cut: ${inflightAtCut}; duplicates removed: ${sub.messages.length - N}`);
  } finally {
    await hub.close();
    sub.client.end(true);
    await link.close();
    await mq.stop();
  }
});
