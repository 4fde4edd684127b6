/**
 * Ingest: batching, ack-after-commit, dedup, and the fuzz test: >= 10,000 malformed payloads fed to the handler
 * directly, then a smaller set over the wire through the embedded aedes broker. The aggregator stays up, counts
 * every one by reason, stores none, and still stores the valid alert sent after them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Ingest } from '../../aggregator/ingest.ts';
import { SqliteStore } from '../../aggregator/store/sqlite.ts';
import { startAggregator } from '../../aggregator/aggregator.ts';
import { StoreWriteError, type Store } from '../../aggregator/store/store.ts';
import { encodeAlert, encodeStatus } from '../../shared/payloads.ts';
import { badMessages } from './fuzz.ts';
import { alertPayload, tempDir, waitFor } from './fixtures.ts';
import { Rng } from '../../shared/random.ts';
import { startAedes } from './broker.ts';
import { publisher } from './publisher.ts';

const quiet = () => {};
const alertMsg = (site: string, hub: string, seq: number) =>
  [`ids/v1/${site}/${hub}/alert`, Buffer.from(encodeAlert(alertPayload(site, hub, seq)))] as const;

async function withStore<T>(fn: (s: SqliteStore) => Promise<T>): Promise<T> {
  const tmp = tempDir();
  const s = new SqliteStore(join(tmp.dir, 'a.db'));
  await s.open();
  try {
    return await fn(s);
  } finally {
    await s.close();
    tmp.cleanup();
  }
}

describe('ingest', () => {
  it('acks only after the batch is committed, in arrival order, and removes duplicates', async () => {
    await withStore(async (store) => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const slow: Store = Object.create(store);
      slow.writeBatch = async (a, h) => (await gate, store.writeBatch(a, h));
      const acked: number[] = [];
      const ingest = new Ingest({ store: slow, log: quiet });
      for (const seq of [1, 2, 2, 3]) ingest.handle(...alertMsg('s', 'h', seq), () => acked.push(seq));
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(acked, [], 'nothing acked before the commit');
      release();
      await ingest.flush();
      assert.deepEqual(acked, [1, 2, 2, 3]);
      assert.equal(ingest.counters.stored, 3);
      assert.equal(ingest.counters.duplicates, 1);
    });
  });

  it('keeps a failed batch unacked and retries it until the store is back', async () => {
    await withStore(async (store) => {
      let fail = 2;
      const flaky: Store = Object.create(store);
      flaky.writeBatch = async (a, h) => {
        if (fail-- > 0) throw new Error('database is down');
        return store.writeBatch(a, h);
      };
      const acked: number[] = [];
      const ingest = new Ingest({ store: flaky, log: quiet, retryMs: 5 });
      ingest.handle(...alertMsg('s', 'h', 1), () => acked.push(1));
      await ingest.flush();
      assert.deepEqual(acked, [1]);
      assert.equal(ingest.counters.storeErrors, 2);
      assert.equal((await store.summary()).alerts, 1);
    });
  });

  it('batches a burst into few transactions (group commit) with at most maxBatch rows each', async () => {
    await withStore(async (store) => {
      const sizes: number[] = [];
      const spy: Store = Object.create(store);
      spy.writeBatch = async (a, h) => (sizes.push(a.length), store.writeBatch(a, h));
      const ingest = new Ingest({ store: spy, log: quiet, maxBatch: 500 });
      for (let i = 0; i < 2000; i++) ingest.handle(...alertMsg('s', 'h', i));
      await ingest.flush();
      assert.equal((await store.summary()).alerts, 2000);
      assert.ok(sizes.length <= 8, `${sizes.length} transactions for 2000 alerts`);
      assert.ok(Math.max(...sizes) <= 500);
    });
  });

  it('a permanent store error in the middle of a batch bisects to the one bad message: dead-lettered, the rest stored, all acked', async () => {
    await withStore(async (store) => {
      const writes: number[] = [];
      const picky: Store = Object.create(store);
      picky.writeBatch = async (a, h) => {
        writes.push(a.length);
        if (a.some((r) => r.seq === 13)) throw new StoreWriteError('value out of range for seq 13', true);
        return store.writeBatch(a, h);
      };
      const acked: number[] = [];
      const ingest = new Ingest({ store: picky, log: quiet });
      for (let seq = 0; seq < 40; seq++) ingest.handle(...alertMsg('s', 'h', seq), () => acked.push(seq));
      await ingest.flush();
      assert.deepEqual(acked, Array.from({ length: 40 }, (_, i) => i), 'every message acked, in arrival order');
      const s = await store.summary();
      assert.equal(s.alerts, 39);
      assert.equal(s.deadLetters, 1);
      assert.equal(ingest.counters.deadLettered, 1);
      assert.equal(ingest.counters.stored, 39);
      const [d] = await store.deadLetters();
      assert.equal(d.topic, 'ids/v1/s/h/alert');
      assert.equal(JSON.parse(Buffer.from(d.payload).toString('utf8')).seq, 13);
      assert.match(d.error, /seq 13/);
      // Bisection: about 2 log2(40) writes, not one per message.
      assert.ok(writes.length <= 14, `${writes.length} writes`);
    });
  });

  it('a transient error during bisection retries only what is not yet committed', async () => {
    await withStore(async (store) => {
      let hiccup = true;
      const flaky: Store = Object.create(store);
      flaky.writeBatch = async (a, h) => {
        if (a.some((r) => r.seq === 5)) throw new StoreWriteError('bad row', true);
        if (hiccup && a.length <= 8 && a.some((r) => r.seq === 10)) {
          hiccup = false;
          throw new StoreWriteError('connection lost', false);
        }
        return store.writeBatch(a, h);
      };
      const ingest = new Ingest({ store: flaky, log: quiet, retryMs: 1 });
      for (let seq = 0; seq < 32; seq++) ingest.handle(...alertMsg('s', 'h', seq));
      await ingest.flush();
      assert.equal(hiccup, false, 'the transient error happened mid-bisection');
      assert.equal(ingest.counters.stored, 31);
      assert.equal(ingest.counters.duplicates, 0, 'nothing committed twice');
      assert.equal((await store.summary()).alerts, 31);
      assert.equal((await store.summary()).deadLetters, 1);
    });
  });

  it('shutdown during a retry loop ends within seconds and acks nothing that was not stored', async () => {
    const broker = await startAedes();
    const tmp = tempDir();
    const store = new SqliteStore(join(tmp.dir, 'a.db'));
    await store.open();
    const down: Store = Object.create(store);
    let attempts = 0;
    down.writeBatch = async () => {
      attempts++;
      throw new StoreWriteError('connection refused', false);
    };
    const agg = await startAggregator({ broker: broker.url, db: down, protocolVersion: 4, clientId: 'retry-agg', log: quiet });
    const pub = await publisher(broker.url);
    try {
      await pub.alerts([['s1', 'h1']], 0, 3);
      await waitFor(() => attempts >= 3, 15_000, 'three failed attempts');
      const t0 = Date.now();
      await agg.close();
      const ms = Date.now() - t0;
      assert.ok(ms < 5_000, `close took ${ms} ms`);
      assert.equal(agg.ingest.counters.batches, 0, 'nothing released');
    } finally {
      await pub.close();
      await broker.stop();
      tmp.cleanup();
    }
  });

  it('several writes at once: acks and commits in arrival order, the last status wins', async () => {
    await withStore(async (store) => {
      const rng = new Rng(3);
      let running = 0;
      let most = 0;
      const slow = Object.create(store) as Store & { maxWritesInFlight: number };
      Object.defineProperty(slow, 'maxWritesInFlight', { value: 4 });
      slow.writeBatch = async (a, h) => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, rng.int(0, 8)));
        running--;
        return store.writeBatch(a, h);
      };
      const acked: number[] = [];
      const states: string[] = [];
      const ingest = new Ingest({
        store: slow, log: quiet, maxBatch: 50, minConcurrentBatch: 1,
        onCommit: (c) => states.push(...c.statuses.map((s) => s.state)),
      });
      const sent: string[] = [];
      let n = 0;
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 120; i++) {
          const k = n++;
          ingest.handle(...alertMsg('s', 'h', k), () => acked.push(k));
        }
        if (round % 3 === 0) {
          const state = round % 2 ? 'offline' : 'online';
          sent.push(state);
          const k = n++;
          ingest.handle('ids/v1/s/h/status', Buffer.from(encodeStatus({ v: 1, site: 's', hub: 'h', ts: round, state })), () => acked.push(k));
        }
        await new Promise((r) => setImmediate(r));
      }
      await ingest.flush();
      assert.ok(most > 1, `writes at once: ${most}`);
      assert.deepEqual(acked, Array.from({ length: n }, (_, i) => i));
      assert.deepEqual(states, sent);
      assert.equal((await store.hubs())[0].state, sent.at(-1));
      assert.equal((await store.summary()).alerts, 2400);
    });
  });

  it('fuzz: 12,000 malformed payloads are counted by reason, acked, never stored, and the handler stays up', async () => {
    await withStore(async (store) => {
      const logs: string[] = [];
      const ingest = new Ingest({ store, log: (l) => logs.push(l) });
      const bad = badMessages(12_000);
      const expected = new Map<string, number>();
      let acks = 0;
      for (const m of bad) {
        if (m.reason) expected.set(m.reason, (expected.get(m.reason) ?? 0) + 1);
        ingest.handle(m.topic, m.payload, () => acks++);
      }
      ingest.handle(...alertMsg('s1', 'h1', 1), () => acks++);
      await ingest.flush();
      const c = ingest.counters;
      assert.equal(c.received, 12_001);
      assert.equal(c.invalid, 12_000);
      assert.equal(acks, 12_001, 'invalid messages are acked too, or the broker would resend them forever');
      for (const [reason, n] of expected) {
        // Random bytes are not in `expected`; they may land in not-json or schema (or too-large never: < 2 KiB).
        const got = c.invalidByReason[reason as keyof typeof c.invalidByReason];
        if (reason === 'not-json' || reason === 'schema') assert.ok(got >= n, `${reason}: ${got} >= ${n}`);
        else assert.equal(got, n, reason);
      }
      const s = await store.summary();
      assert.equal(s.alerts, 1, 'only the valid alert is stored');
      assert.deepEqual((await store.hubs()).map((h) => `${h.site}/${h.hub}`), ['s1/h1']);
      // The log names topics but is rate-limited: a flood does not flood the log.
      assert.ok(logs.length > 0 && logs.length < 50, `${logs.length} log lines`);
      assert.match(logs[0], /ids\/v1\//);
    });
  });

  it('fuzz over the wire (aedes): 1,500 malformed messages, the aggregator counts them and stores none', async () => {
    const broker = await startAedes();
    const tmp = tempDir();
    const agg = await startAggregator({
      broker: broker.url, db: join(tmp.dir, 'a.db'), protocolVersion: 4, clientId: 'fuzz-agg', http: 0, log: quiet,
    });
    const pub = await publisher(broker.url);
    try {
      const bad = badMessages(1_500, 99);
      for (let i = 0; i < bad.length; i += 100) {
        await Promise.all(bad.slice(i, i + 100).map((m) => pub.raw(m.topic, m.payload)));
      }
      await pub.alerts([['s1', 'h1']], 0, 1);
      const relevant = bad.filter((m) => !/^ids\/v1\/[^/]+\/[^/]+\/(alert|stats|status)$/.test(m.topic) ? false : true).length;
      await waitFor(() => agg.ingest.counters.stored === 1 && agg.ingest.counters.invalid === relevant, 15_000,
        `invalid = ${relevant}`);
      const r = await fetch(`${agg.url}/api/summary`);
      const s = (await r.json()) as { alerts: number; invalid: { total: number } };
      assert.equal(s.alerts, 1);
      assert.equal(s.invalid.total, relevant);
      assert.ok(agg.consumer.connected, 'still connected');
    } finally {
      await pub.close();
      await agg.close();
      await broker.stop();
      tmp.cleanup();
    }
  });
});
