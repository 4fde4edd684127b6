/**
 * The consumer against a real broker (our own mosquitto): no loss and no duplicates across an abrupt restart,
 * and across two instances on a shared subscription writing one database; a backlog drained behind a slow store
 * never has more than `maxPending` messages read and uncommitted, and lets the event loop turn every `sliceMs`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Consumer, RAMP_PENDING } from '../../aggregator/consumer.ts';
import { Ingest } from '../../aggregator/ingest.ts';
import { SqliteStore } from '../../aggregator/store/sqlite.ts';
import { PostgresStore } from '../../aggregator/store/postgres.ts';
import type { Store } from '../../aggregator/store/store.ts';
import { hasMosquitto, MOSQUITTO, startMosquitto } from './broker.ts';
import { publisher } from './publisher.ts';
import { MAX_PAYLOAD_BYTES } from '../../shared/payloads.ts';
import { alertPayload, PG_URL, postgresReachable, tempDir, uniqueSchema, waitFor } from './fixtures.ts';
import { encodeAlert } from '../../shared/payloads.ts';
import { hubTopic } from '../../shared/topics.ts';

const quiet = () => {};
const HUBS: [string, string][] = [['site-a', 'hub-1'], ['site-a', 'hub-2'], ['site-b', 'hub-3']];

async function instance(url: string, db: string | (() => Store), clientId: string, group?: string) {
  const store = typeof db === 'string' ? new SqliteStore(db) : db();
  await store.open();
  const ingest = new Ingest({ store, log: quiet });
  const consumer = new Consumer({ broker: url, clientId, ingest, group, log: quiet });
  await consumer.start();
  return { store, ingest, consumer };
}

/** Our own mosquitto, a publisher and a SQLite store in a temporary folder, for one test; all closed after it. */
async function withBrokerAndStore(
  file: string,
  fn: (env: { broker: { url: string }; pub: Awaited<ReturnType<typeof publisher>>; store: SqliteStore }) => Promise<void>,
): Promise<void> {
  const broker = await startMosquitto();
  const tmp = tempDir();
  const pub = await publisher(broker.url);
  const store = new SqliteStore(join(tmp.dir, file));
  await store.open();
  try {
    await fn({ broker, pub, store });
  } finally {
    await pub.close();
    await store.close();
    await broker.stop();
    tmp.cleanup();
  }
}

/** Every batch write of `store` waits `ms` first: a slow database. */
function slowWrites(store: SqliteStore, ms: number): void {
  const write = store.writeBatch.bind(store);
  store.writeBatch = async (a, h) => (await new Promise((r) => setTimeout(r, ms)), write(a, h));
}

describe('consumer', () => {
  it('announces a Maximum Packet Size (MQTT 5): the broker never hands it a 2 MB payload, the alert after it arrives', async (t) => {
    if (!hasMosquitto()) return t.skip(`mosquitto not found at ${MOSQUITTO}: skipped`);
    const broker = await startMosquitto();
    const tmp = tempDir();
    const pub = await publisher(broker.url);
    let a: Awaited<ReturnType<typeof instance>> | undefined;
    try {
      a = await instance(broker.url, join(tmp.dir, 'agg.db'), 'agg-maxpacket');
      await pub.raw('ids/v1/site-a/hub-1/alert', Buffer.alloc(2 << 20, 0x20));
      await pub.alerts([['site-a', 'hub-1']], 0, 1);
      await waitFor(() => a!.ingest.counters.stored === 1, 10_000, 'the small alert stored');
      // Without the limit it arrives whole and is only then counted invalid (too-large, > MAX_PAYLOAD_BYTES).
      assert.equal(a.ingest.counters.received, 1, 'the 2 MB message never reached the aggregator');
      assert.equal(a.ingest.counters.invalidByReason['too-large'], 0, `nothing over ${MAX_PAYLOAD_BYTES} bytes read`);
    } finally {
      await a?.consumer.stop();
      await a?.store.close();
      await pub.close();
      await broker.stop();
      tmp.cleanup();
    }
  });

  it('holds exactly N alerts after an abrupt stop while hubs keep publishing (persistent session, QoS 1)', async (t) => {
    if (!hasMosquitto()) return t.skip(`mosquitto not found at ${MOSQUITTO}: skipped`);
    const broker = await startMosquitto();
    const tmp = tempDir();
    const file = join(tmp.dir, 'agg.db');
    const pub = await publisher(broker.url);
    try {
      let a = await instance(broker.url, file, 'agg-restart');
      let sent = await pub.alerts(HUBS, 0, 500);
      await waitFor(() => a.ingest.counters.stored > 0, 5000, 'first alerts stored');
      // Crash-like stop: socket dropped, uncommitted batch abandoned, PUBACKs owed never sent.
      await a.consumer.stop(true);
      await a.store.close();
      sent += await pub.alerts(HUBS, 500, 1500); // queued by the broker for the absent session
      // QoS 1 duplicates from a hub that resent after a lost PUBACK.
      await pub.alerts(HUBS, 100, 150);
      a = await instance(broker.url, file, 'agg-restart');
      sent += await pub.alerts(HUBS, 1500, 2000);
      const N = 2000 * HUBS.length;
      assert.equal(sent, N);
      await waitFor(async () => (await a.store.summary()).alerts >= N, 20_000, `${N} alerts stored`);
      await new Promise((r) => setTimeout(r, 300));
      const s = await a.store.summary();
      assert.equal(s.alerts, N);
      assert.equal(s.rawAlerts, N);
      // The second instance got the queued backlog (more than it was sent while up), and saw duplicates.
      assert.ok(a.ingest.counters.stored > 500 * HUBS.length, `restarted instance stored ${a.ingest.counters.stored}`);
      assert.ok(a.ingest.counters.duplicates > 0, 'duplicates were removed');
      assert.equal(a.ingest.counters.invalid, 0);
      await a.consumer.stop();
      await a.store.close();
    } finally {
      await pub.close();
      await broker.stop();
      tmp.cleanup();
    }
  });

  it('two instances on a shared subscription and one database store exactly N', async (t) => {
    if (!hasMosquitto()) return t.skip(`mosquitto not found at ${MOSQUITTO}: skipped`);
    const broker = await startMosquitto();
    const tmp = tempDir();
    const file = join(tmp.dir, 'agg.db');
    const pub = await publisher(broker.url);
    try {
      const a = await instance(broker.url, file, 'agg-share-1', 'g');
      const b = await instance(broker.url, file, 'agg-share-2', 'g');
      const N = (await pub.alerts(HUBS, 0, 1000)) ;
      // Redeliveries and resends land on either instance: the unique key in the shared DB keeps one row.
      await pub.alerts(HUBS, 0, 100);
      await waitFor(async () => (await a.store.summary()).alerts >= N, 20_000, `${N} alerts stored`);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await a.store.summary()).alerts, N);
      assert.equal((await b.store.summary()).rawAlerts, N);
      const got = [a.ingest.counters.received, b.ingest.counters.received];
      assert.equal(got[0] + got[1], N + 100 * HUBS.length, `each message delivered once to the group: ${got}`);
      assert.ok(got[0] > 0 && got[1] > 0, `both instances took a share: ${got}`);
      assert.equal(a.ingest.counters.stored + b.ingest.counters.stored, N);
      for (const x of [a, b]) {
        await x.consumer.stop();
        await x.store.close();
      }
    } finally {
      await pub.close();
      await broker.stop();
      tmp.cleanup();
    }
  });

  it('two instances on a shared subscription and one PostgreSQL database store exactly N', async (t) => {
    if (!hasMosquitto()) return t.skip(`mosquitto not found at ${MOSQUITTO}: skipped`);
    if (!(await postgresReachable())) return t.skip(`PostgreSQL not reachable at ${PG_URL}: skipped`);
    const broker = await startMosquitto();
    const schema = uniqueSchema('share');
    const pg = () => new PostgresStore({ connectionString: PG_URL, schema });
    const pub = await publisher(broker.url);
    const a = await instance(broker.url, pg, 'agg-pg-1', 'g');
    const b = await instance(broker.url, pg, 'agg-pg-2', 'g');
    try {
      const N = await pub.alerts(HUBS, 0, 600);
      await pub.alerts(HUBS, 0, 100); // resends: the unique key in the shared database keeps one row each
      await waitFor(async () => (await a.store.summary()).alerts >= N, 20_000, `${N} alerts stored`);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await b.store.summary()).alerts, N);
      assert.equal((await a.store.summary()).rawAlerts, N);
      assert.ok(a.ingest.counters.received > 0 && b.ingest.counters.received > 0, 'both instances took a share');
      assert.equal(a.ingest.counters.stored + b.ingest.counters.stored, N);
      assert.equal(a.ingest.counters.duplicates + b.ingest.counters.duplicates, 100 * HUBS.length);
    } finally {
      for (const x of [a, b]) await x.consumer.stop();
      await (a.store as PostgresStore).dropSchema();
      for (const x of [a, b]) await x.store.close();
      await pub.close();
      await broker.stop();
    }
  });

  it('stops reading at maxPending uncommitted messages while a slow store drains a backlog', async (t) => {
    if (!hasMosquitto()) return t.skip(`mosquitto not found at ${MOSQUITTO}: skipped`);
    // mosquitto may send 1000 unacknowledged messages: the bound below that is ours alone.
    await withBrokerAndStore('slow.db', async ({ broker, pub, store }) => {
      slowWrites(store, 15);
      const ingest = new Ingest({ store, log: quiet, maxBatch: 50 });
      let consumer = new Consumer({ broker: broker.url, clientId: 'agg-bp', ingest, log: quiet, maxPending: 100, rampMs: 0 });
      await consumer.start();
      await consumer.stop(true);
      const N = await pub.alerts(HUBS, 0, 1000); // queued for the absent session
      const ingest2 = new Ingest({ store, log: quiet, maxBatch: 50 });
      consumer = new Consumer({ broker: broker.url, clientId: 'agg-bp', ingest: ingest2, log: quiet, maxPending: 100, rampMs: 0 });
      await consumer.start();
      await waitFor(async () => (await store.summary()).alerts >= N, 60_000, `${N} alerts stored`);
      assert.ok(consumer.maxPendingSeen <= 100, `read ahead of commits: ${consumer.maxPendingSeen}`);
      assert.ok(consumer.pauses > 0, 'reading paused at the bound');
      await consumer.stop();
    });
  });
  it('handles messages in slices of sliceMs, letting the event loop turn between them, while it drains a backlog', async (t) => {
    if (!hasMosquitto()) return t.skip(`mosquitto not found at ${MOSQUITTO}: skipped`);
    await withBrokerAndStore('slices.db', async ({ broker, pub, store }) => {
      // Each message costs 2 ms of CPU here (cold code and a slow machine look like this): without slices a socket
      // chunk's hundreds of messages would be handled in one turn, and the API would wait for all of them.
      const COST_MS = 2;
      const SLICE_MS = 10;
      let turn = 0;
      let ticking = true;
      const tick = () => {
        turn++;
        if (ticking) setImmediate(tick);
      };
      const perTurn = new Map<number, number>();
      const slowIngest = () => {
        const ingest = new Ingest({ store, log: quiet });
        const handle = ingest.handle.bind(ingest);
        ingest.handle = (topic, payload, ack) => {
          const until = performance.now() + COST_MS;
          while (performance.now() < until);
          perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1);
          handle(topic, payload, ack);
        };
        return ingest;
      };
      // The start's gentler read-ahead (rampMs) lasts the whole drain here, so its bound is what holds.
      const consumerOf = () => new Consumer({ broker: broker.url, clientId: 'agg-slices', ingest: slowIngest(), log: quiet, maxPending: 1000, sliceMs: SLICE_MS, rampMs: 600_000 });
      let consumer = consumerOf();
      try {
        await consumer.start();
        await consumer.stop(true);
        const N = await pub.alerts(HUBS, 0, 100); // 300 queued for the absent session, delivered in a burst
        consumer = consumerOf();
        tick();
        await consumer.start();
        await waitFor(async () => (await store.summary()).alerts >= N, 60_000, `${N} alerts stored`);
        const most = Math.max(...perTurn.values());
        // A slice holds SLICE_MS / COST_MS messages and the one that ends it; a turn of the counter can span the end
        // of one slice (run from setImmediate) and the next (from the socket), hence two.
        assert.ok(most <= 2 * (SLICE_MS / COST_MS + 1), `${most} messages handled in one turn of the event loop`);
        assert.ok(consumer.yields > 0, 'handling yielded to the event loop');
        assert.ok(consumer.maxPendingSeen <= RAMP_PENDING, `read ahead after connecting: ${consumer.maxPendingSeen}`);
        await consumer.stop();
      } finally {
        ticking = false;
      }
    });
  });

  it('holds at most maxPendingBytes of payload read and uncommitted (QoS 1 and QoS 0) under a fast producer and a slow store', async (t) => {
    if (!hasMosquitto()) return t.skip(`mosquitto not found at ${MOSQUITTO}: skipped`);
    await withBrokerAndStore('slow-bytes.db', async ({ broker, pub, store }) => {
      slowWrites(store, 20);
      const BOUND = 1 << 20;
      const SIZE = 32 * 1024;
      const ingest = new Ingest({ store, log: quiet, maxBatch: 50 });
      const consumer = new Consumer({ broker: broker.url, clientId: 'agg-bytes', ingest, log: quiet, maxPendingBytes: BOUND });
      try {
        await consumer.start();
        // Valid alerts padded to 32 KiB (JSON allows the spaces): 1000 messages would be 32 MB, the byte bound is 1 MiB.
        const N = 400;
        const sends: Promise<void>[] = [];
        for (let seq = 0; seq < N; seq++) {
          const body = encodeAlert(alertPayload('site-a', 'hub-big', seq));
          sends.push(pub.raw(hubTopic('site-a', 'hub-big', 'alert'), body + ' '.repeat(SIZE - body.length), seq % 2 ? 0 : 1));
        }
        await Promise.all(sends);
        await waitFor(async () => (await store.summary()).alerts >= N, 60_000, `${N} alerts stored`);
        assert.equal(ingest.counters.invalid, 0, 'padded alerts are valid');
        assert.ok(consumer.maxPendingBytesSeen <= BOUND + SIZE, `payload held uncommitted: ${consumer.maxPendingBytesSeen} bytes`);
        assert.ok(consumer.pauses > 0, 'reading paused at the byte bound');
      } finally {
        await consumer.stop();
      }
    });
  });
});
