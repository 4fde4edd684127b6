/**
 * The ack watermark: Store.advanceAckMark on every store (contiguity, floors, never lowered), AckPublisher's
 * rounds, and the assembled aggregator publishing `{prefix}/{site}/{hub}/ack` retained after a commit.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { walkContiguous } from '../../aggregator/store/store.ts';
import { AckPublisher } from '../../aggregator/acks.ts';
import { startAggregator } from '../../aggregator/aggregator.ts';
import { decodeAck, encodeAlert, type Alert } from '../../shared/payloads.ts';
import { hubTopic } from '../../shared/topics.ts';
import { startAedes } from './broker.ts';
import { alertPayload, openStore, row, tempDir, waitFor, storeMakers, type StoreMaker } from './fixtures.ts';

const T0 = Date.UTC(2026, 11, 4, 8, 0, 0);
const seqs = (site: string, hub: string, list: number[]) => list.map((s) => row(site, hub, s, T0 + s));

it('walkContiguous stops at the first hole', () => {
  assert.deepEqual(walkContiguous(-1, [0, 1, 2, 4]), { mark: 2, open: false });
  assert.deepEqual(walkContiguous(4, [5, 6]), { mark: 6, open: true });
  assert.deepEqual(walkContiguous(4, [6]), { mark: 4, open: false });
  assert.deepEqual(walkContiguous(4, []), { mark: 4, open: true });
});

function suite(name: string, make: StoreMaker) {
  describe(`advanceAckMark on ${name}`, () => {
    const opened = openStore(make);

    it('is the highest seq with every lower one stored; a floor passes holes; it never goes down', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      assert.equal(await opened.store.advanceAckMark('s', 'h', undefined), undefined, 'nothing stored yet');
      await opened.store.writeBatch(seqs('s', 'h', [0, 1, 2, 4, 5]), []);
      assert.equal(await opened.store.advanceAckMark('s', 'h'), 2, 'stops before the hole at 3');
      await opened.store.writeBatch(seqs('s', 'h', [3]), []);
      assert.equal(await opened.store.advanceAckMark('s', 'h'), 5, 'the hole is filled');
      // The hub skipped 6..9 (given up or never used): its floor 10 says so.
      await opened.store.writeBatch(seqs('s', 'h', [10, 11]), []);
      assert.equal(await opened.store.advanceAckMark('s', 'h'), 5);
      assert.equal(await opened.store.advanceAckMark('s', 'h', 10), 11);
      // An older floor (a late duplicate) does not lower it; other hubs are apart.
      assert.equal(await opened.store.advanceAckMark('s', 'h', 3), 11);
      assert.equal(await opened.store.advanceAckMark('s', 'other'), undefined);
      // A hub that starts numbering high is answered once its floor arrives.
      await opened.store.writeBatch(seqs('s', 'late', [8192, 8193]), []);
      assert.equal(await opened.store.advanceAckMark('s', 'late'), undefined);
      assert.equal(await opened.store.advanceAckMark('s', 'late', 8192), 8193);
    });

    it('walks past one read step (long runs of stored seqs)', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      const list = Array.from({ length: 9000 }, (_, i) => i);
      for (let i = 0; i < list.length; i += 3000) await opened.store.writeBatch(seqs('s', 'long', list.slice(i, i + 3000)), []);
      assert.equal(await opened.store.advanceAckMark('s', 'long'), 8999);
    });
  });
}

for (const [name, make] of storeMakers('acks')) suite(name, make);

describe('AckPublisher', () => {
  const alert = (hub: string, seq: number, floor?: number): Alert => ({ ...alertPayload('s', hub, seq), count: 1, source: 'model', floor });

  it('asks the store once per hub per round with the highest floor, and publishes the mark retained', async () => {
    const calls: [string, number | undefined][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sent: [string, string][] = [];
    const acks = new AckPublisher({
      store: {
        async advanceAckMark(_site, hub, floor) {
          calls.push([hub, floor]);
          await gate;
          return hub === 'none' ? undefined : 41;
        },
      },
      publish: (topic, payload) => (sent.push([topic, payload]), true),
      log: () => undefined,
    });
    acks.onCommitted([alert('a', 1, 0)]);
    // While that round runs, three batches touch two hubs: one more round, one call each.
    acks.onCommitted([alert('a', 2, 1), alert('b', 7, 5)]);
    acks.onCommitted([alert('a', 3, 3), alert('b', 8, 4)]);
    acks.onCommitted([alert('none', 1)]);
    release();
    await acks.close();
    assert.deepEqual(calls, [['a', 0], ['a', 3], ['b', 5], ['none', undefined]]);
    assert.deepEqual(sent.map((s) => s[0]), [hubTopic('s', 'a', 'ack'), hubTopic('s', 'a', 'ack'), hubTopic('s', 'b', 'ack')]);
    assert.deepEqual(decodeAck(sent[2][1]), { ok: true, value: { v: 1, site: 's', hub: 'b', seq: 41 } });
  });
});

it('the aggregator publishes each hub its watermark, retained, also for alerts it already had', async () => {
  const broker = await startAedes();
  const tmp = tempDir();
  const agg = await startAggregator({ broker: broker.url, db: join(tmp.dir, 'w.db'), protocolVersion: 4, clientId: 'ack-agg', log: () => {} });
  const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
  const send = (seq: number, floor?: number) =>
    pub.publishAsync(hubTopic('s1', 'h1', 'alert'), encodeAlert({ ...alertPayload('s1', 'h1', seq), floor }), { qos: 1 });
  const latest = async (): Promise<number | undefined> => {
    // A fresh subscriber reads the retained value, as a reconnecting hub does.
    const c = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
    try {
      const got = new Promise<number>((r) => c.on('message', (_t, p) => {
        const d = decodeAck(p);
        if (d.ok) r(d.value.seq);
      }));
      await c.subscribeAsync(hubTopic('s1', 'h1', 'ack'), { qos: 1 });
      return await Promise.race([got, new Promise<undefined>((r) => setTimeout(() => r(undefined), 300))]);
    } finally {
      await c.endAsync();
    }
  };
  try {
    for (const s of [0, 1, 2, 4]) await send(s, 0);
    await waitFor(async () => (await latest()) === 2, 5000, 'watermark 2 (hole at 3)');
    await send(3, 0);
    await waitFor(async () => (await latest()) === 4, 5000, 'watermark 4');
    // The hub gave up 5..6: its floor moves the mark past them even on a resent (duplicate) alert.
    await send(7, 0);
    await send(7, 7);
    await waitFor(async () => (await latest()) === 7, 5000, 'watermark 7 from the floor of a duplicate');
    assert.equal(agg.ingest.counters.stored, 6);
  } finally {
    await pub.endAsync();
    await agg.close();
    await broker.stop();
    tmp.cleanup();
  }
});
