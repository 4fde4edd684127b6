/**
 * The fleet's training data in the store (store/fleet-data.ts), on every store: alert features written with new
 * alerts only, samples deduplicated by (site, hub, id), model feature orders (first announcement wins), retention
 * (marked alerts' features kept, samples by age and per-hub cap). Then the ingest path over a broker: samples
 * subscribed at QoS 0, refused ones counted by reason, topic and payload hub must agree.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { encodeFeatures } from '../../shared/feature-vector.ts';
import { encodeAlert, encodeSample, encodeStatus } from '../../shared/payloads.ts';
import { hubTopic } from '../../shared/topics.ts';
import { startAggregator } from '../../aggregator/aggregator.ts';
import { SqliteStore } from '../../aggregator/store/sqlite.ts';
import type { SampleRow } from '../../aggregator/store/fleet-data.ts';
import { startAedes } from './broker.ts';
import { publisher } from './publisher.ts';
import { alertPayload, openStore, row, storeMakers, tempDir, waitFor, type StoreMaker } from './fixtures.ts';
import { insertMark } from './fleet-fixtures.ts';

const T0 = Date.UTC(2026, 10, 30, 8, 0, 0);
const DAY = 24 * 3_600_000;
const vec = (k: number) => encodeFeatures([k, k + 0.5, -k, 1e9 + k]);

export function sampleRow(site: string, hub: string, id: string, receivedAt: number, features = vec(1)): SampleRow {
  return {
    site, hub, id, ts: receivedAt, model: 'm-1', class: 'Normal', confidence: 0.97, src: 'h:0123456789abcdef', dst: null,
    sport: 5353, dport: 5353, proto: 17, features, receivedAt,
  };
}

const hexId = (n: number) => n.toString(16).padStart(16, '0');

function suite(name: string, make: StoreMaker) {
  describe(`${name}: fleet data`, () => {
    const opened = openStore(make);

    it('stores features with new alerts only, in the alert\'s transaction', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      const a1 = { ...row('s1', 'h1', 1, T0), features: vec(1) };
      const a2 = { ...row('s1', 'h1', 2, T0 + 1), features: vec(2) };
      const plain = row('s1', 'h1', 3, T0 + 2);
      assert.deepEqual(await opened.store.writeBatch([a1, a2, plain], []), [true, true, true]);
      // A redelivery with other features is a duplicate: the stored vector stays.
      assert.deepEqual(await opened.store.writeBatch([{ ...a1, features: vec(9) }], []), [false]);
      const rows = await opened.store.fleet.featurePage({}, true, ['m-1'], undefined, 10);
      assert.deepEqual(rows.map((r) => [r.seq, r.features, r.alertClass, r.verdict]), [[1, vec(1), 'Mirai', null], [2, vec(2), 'Mirai', null]]);
      assert.equal((await opened.store.fleet.featurePage({}, false, ['m-1'], undefined, 10)).length, 0, 'none marked yet');
    });

    it('deduplicates samples by (site, hub, id) within a batch and against stored rows', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      const s = [sampleRow('s1', 'h1', hexId(1), T0), sampleRow('s1', 'h1', hexId(2), T0), sampleRow('s1', 'h1', hexId(1), T0), sampleRow('s1', 'h2', hexId(1), T0)];
      assert.deepEqual(await opened.store.writeBatch([], [{ site: 's1', hub: 'h1', seenAt: T0 }], { samples: s }), [true, true, false, true]);
      const r = await opened.store.writeBatch([row('s1', 'h1', 4, T0 + 3)], [], { samples: [sampleRow('s1', 'h1', hexId(2), T0), sampleRow('s1', 'h1', hexId(3), T0)] });
      assert.deepEqual(r, [true, false, true], 'the alert flag first, then one per sample');
      const page = await opened.store.fleet.samplePage({}, ['m-1'], undefined, 100);
      assert.deepEqual(page.map((x) => `${x.hub}/${x.id.slice(-1)}`), ['h1/1', 'h1/2', 'h1/3', 'h2/1']);
      // Keyset pages: after the second row, the rest.
      const next = await opened.store.fleet.samplePage({}, ['m-1'], page[1], 100);
      assert.deepEqual(next.map((x) => `${x.hub}/${x.id.slice(-1)}`), ['h1/3', 'h2/1']);
      assert.deepEqual((await opened.store.fleet.samplePage({ hub: 'h2' }, ['m-1'], undefined, 100)).length, 1);
      assert.deepEqual((await opened.store.fleet.samplePage({}, ['other'], undefined, 100)).length, 0);
    });

    it('keeps the first feature order announced per model version; a later status may add the release', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      const m = { version: 'm-1', release: null, features: JSON.stringify(['Dst_Port', 'Flow_Duration', 'Tot_Fwd_Pkts', 'Flow_Byts/s']), firstSeen: T0 };
      await opened.store.writeBatch([], [], { models: [m] });
      await opened.store.writeBatch([], [], { models: [{ ...m, release: 7, features: JSON.stringify(['a']), firstSeen: T0 + 5 }] });
      const models = await opened.store.fleet.models();
      assert.deepEqual(models, [{ version: 'm-1', release: 7, features: ['Dst_Port', 'Flow_Duration', 'Tot_Fwd_Pkts', 'Flow_Byts/s'], firstSeen: T0 }]);
      const counts = await opened.store.fleet.countByModel({}, true);
      assert.deepEqual(counts, [{ model: 'm-1', alerts: 2, samples: 4 }]);
    });

    it('retention deletes old features except marked alerts\', old samples, and samples over the per-hub cap', async (t) => {
      if (opened.skip) return t.skip(opened.skip);
      // Alert 1 marked (kept), alert 2 marked then undone (goes), the rest too new.
      await insertMark(opened.store, { site: 's1', hub: 'h1', seq: 1, verdict: 'false-positive', class: 'Normal', at: T0 });
      await insertMark(opened.store, { site: 's1', hub: 'h1', seq: 2, verdict: 'confirmed', class: 'Mirai', at: T0, undoneAt: T0 + 1 });
      const many = Array.from({ length: 30 }, (_, i) => sampleRow('s9', 'flood', hexId(100 + i), T0 + DAY + i));
      await opened.store.writeBatch([{ ...row('s1', 'h1', 10, T0 + 2 * DAY), features: vec(10) }], [], { samples: many });
      const r = await opened.store.pruneFleetData({ featuresBefore: T0 + DAY, samplesBefore: T0 + DAY, samplesPerHub: 10 });
      assert.deepEqual(r, { features: 1, samples: 4, samplesOverCap: 20 });
      const kept = await opened.store.fleet.featurePage({}, true, ['m-1'], undefined, 100);
      assert.deepEqual(kept.map((x) => [x.seq, x.verdict]), [[1, 'false-positive'], [10, null]]);
      const flood = await opened.store.fleet.samplePage({ hub: 'flood' }, ['m-1'], undefined, 100);
      assert.deepEqual(flood.map((x) => x.id), many.slice(20).map((x) => x.id), 'the newest 10 of the hub are kept');
      assert.deepEqual(await opened.store.pruneFleetData({ featuresBefore: T0 + DAY, samplesBefore: T0 + DAY, samplesPerHub: 10 }), { features: 0, samples: 0, samplesOverCap: 0 });
    });
  });
}

for (const [name, make] of storeMakers('fleetdata')) suite(name, make);

describe('fleet data retention in the aggregator', () => {
  it('runs at start with the day options and the per-hub cap; marked features stay', async () => {
    const broker = await startAedes();
    const tmp = tempDir();
    const db = join(tmp.dir, 'r.db');
    const store = new SqliteStore(db);
    await store.open();
    await store.writeBatch([{ ...row('s1', 'h1', 1, T0), features: vec(1) }, { ...row('s1', 'h1', 2, T0), features: vec(2) }], [], {
      samples: [sampleRow('s1', 'h1', hexId(1), T0), ...Array.from({ length: 5 }, (_, i) => sampleRow('s1', 'h2', hexId(10 + i), T0 + 9 * DAY + i))],
    });
    await insertMark(store, { site: 's1', hub: 'h1', seq: 2, verdict: 'confirmed', class: 'Mirai', at: T0 });
    await store.close();
    // Ten days later, 7 days kept, 3 samples a hub.
    const agg = await startAggregator({
      broker: broker.url, db, protocolVersion: 4, clientId: 'retain-agg', log: () => {}, now: () => T0 + 10 * DAY,
      featureRetentionDays: 7, sampleRetentionDays: 7, samplesPerHub: 3,
    });
    try {
      await waitFor(async () => (await agg.store.fleet.samplePage({}, ['m-1'], undefined, 10)).length === 3, 5000, 'samples pruned');
      assert.deepEqual((await agg.store.fleet.samplePage({}, ['m-1'], undefined, 10)).map((x) => x.id), [hexId(12), hexId(13), hexId(14)]);
      assert.deepEqual((await agg.store.fleet.featurePage({}, true, ['m-1'], undefined, 10)).map((x) => x.seq), [2]);
      const g = new (await import('../../aggregator/consumer.ts')).Consumer({ broker: broker.url, clientId: 'x', ingest: agg.ingest, group: 'g1' });
      assert.ok(g.filters.includes('$share/g1/ids/v1/+/+/sample'), 'the sample channel in a shared subscription too');
      // A flood: the cap applies within seconds, not at the next 10-minute run.
      const pub = await publisher(broker.url);
      for (let i = 0; i < 40; i++) {
        await pub.raw(hubTopic('s1', 'h3', 'sample'), encodeSample({ v: 1, site: 's1', hub: 'h3', id: hexId(100 + i), ts: T0 + 10 * DAY, model: 'm-1', class: 'Normal', confidence: 0.9, features: vec(i) }), 0);
      }
      await pub.close();
      await waitFor(() => agg.ingest.counters.samplesStored === 40, 5000, '40 samples stored');
      await waitFor(async () => (await agg.store.fleet.samplePage({ hub: 'h3' }, ['m-1'], undefined, 100)).length === 3, 5000, 'the flood capped');
    } finally {
      await agg.close();
      await broker.stop();
      tmp.cleanup();
    }
  });
});

describe('fleet data over MQTT', () => {
  it('stores alert features, samples (QoS 0) and model feature orders; refuses and counts bad samples', async () => {
    const broker = await startAedes();
    const tmp = tempDir();
    const agg = await startAggregator({ broker: broker.url, db: join(tmp.dir, 'f.db'), protocolVersion: 4, clientId: 'fleet-agg', log: () => {} });
    const pub = await publisher(broker.url);
    const sample = (site: string, hub: string, id: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ ...JSON.parse(encodeSample({ v: 1, site, hub, id: hexId(0), ts: T0, model: 'm-1', class: 'Normal', confidence: 0.9, features: vec(3) })), id, ...extra });
    try {
      assert.ok(agg.consumer.filters.includes('ids/v1/+/+/sample'));
      const names = ['Dst_Port', 'Flow_Duration', 'Tot_Fwd_Pkts', 'Flow_Byts/s'];
      await pub.raw(hubTopic('s1', 'h1', 'status'), encodeStatus({ v: 1, site: 's1', hub: 'h1', ts: T0, state: 'online', bundle: 'm-1', release: 3, features: names }));
      await pub.raw(hubTopic('s1', 'h1', 'alert'), encodeAlert({ ...alertPayload('s1', 'h1', 0), model: 'm-1', features: vec(0) }));
      // An empty vector: the alert is stored, its features are not (counted).
      await pub.raw(hubTopic('s1', 'h1', 'alert'), encodeAlert({ ...alertPayload('s1', 'h1', 1), model: 'm-1', features: '' }));
      await pub.raw(hubTopic('s1', 'h1', 'sample'), sample('s1', 'h1', hexId(1)), 0);
      await pub.raw(hubTopic('s1', 'h1', 'sample'), sample('s1', 'h1', hexId(1)), 0); // duplicate
      await pub.raw(hubTopic('s1', 'h1', 'sample'), sample('s1', 'h2', hexId(2)), 0); // another hub's payload
      await pub.raw(hubTopic('s1', 'h1', 'sample'), sample('s1', 'h1', 'not-hex'), 0);
      await pub.raw(hubTopic('s1', 'h1', 'sample'), sample('s1', 'h1', hexId(3), { features: '' }), 0); // empty vector
      await pub.raw(hubTopic('s1', 'h1', 'sample'), sample('s1', 'h1', hexId(4), { features: 'AAAA' }), 0); // 3 bytes
      await pub.raw(hubTopic('s1', 'h1', 'sample'), '{"v":1', 0);
      await waitFor(() => agg.ingest.counters.received >= 10 && agg.ingest.counters.batches > 0 && agg.ingest.inFlight === 0, 10_000, 'messages handled');
      await agg.ingest.flush();
      const c = agg.ingest.counters;
      assert.equal(c.samplesStored, 1);
      assert.equal(c.samplesDuplicate, 1);
      assert.equal(c.featuresRefused, 1);
      assert.equal(c.invalidByReason['topic-mismatch'], 1);
      assert.equal(c.invalidByReason.schema, 3);
      assert.equal(c.invalidByReason['not-json'], 1);
      assert.deepEqual((await agg.store.fleet.models()).map((m) => [m.version, m.release, m.features]), [['m-1', 3, names]]);
      assert.deepEqual((await agg.store.fleet.featurePage({}, true, ['m-1'], undefined, 10)).map((r) => r.seq), [0]);
      assert.equal((await agg.store.fleet.samplePage({}, ['m-1'], undefined, 10)).length, 1);
    } finally {
      await pub.close();
      await agg.close();
      await broker.stop();
      tmp.cleanup();
    }
  });
});
