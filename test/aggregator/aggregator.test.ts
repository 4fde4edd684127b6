/**
 * The assembled aggregator: incidents are stored, published on the fleet incident topic (valid IncidentSchema
 * payloads) and taken back after a restart; retention rolls old alerts up without changing the totals.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startAggregator } from '../../aggregator/aggregator.ts';
import { decodeIncident, encodeAlert, encodeStatus, type Incident } from '../../shared/payloads.ts';
import { hubTopic, incidentTopic } from '../../shared/topics.ts';
import { HOUR_MS } from '../../aggregator/store/store.ts';
import { startAedes } from './broker.ts';
import { publisher } from './publisher.ts';
import { alertPayload, tempDir, waitFor } from './fixtures.ts';

const quiet = () => {};

describe('aggregator', () => {
  it('stores and publishes incidents on ids/v1/fleet/incident, and takes open ones back after a restart', async () => {
    const broker = await startAedes();
    const tmp = tempDir();
    const db = join(tmp.dir, 'a.db');
    const opts = { broker: broker.url, db, protocolVersion: 4 as const, clientId: 'inc-agg', log: quiet };
    let agg = await startAggregator(opts);
    const watcher = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
    const seen: Incident[] = [];
    watcher.on('message', (_t, p) => {
      const d = decodeIncident(p);
      assert.ok(d.ok, `incident payload must decode: ${!d.ok && d.error}`);
      if (d.ok) seen.push(d.value);
    });
    await watcher.subscribeAsync(incidentTopic(), { qos: 1 });
    const pub = await publisher(broker.url);
    try {
      await pub.alerts([['s1', 'h1'], ['s1', 'h2'], ['s2', 'h3']], 0, 3, 'Mirai');
      await pub.raw(hubTopic('s2', 'h3', 'status'), encodeStatus({ v: 1, site: 's2', hub: 'h3', ts: Date.now(), state: 'offline' }));
      await waitFor(() => seen.some((i) => i.kind === 'outbreak') && seen.some((i) => i.kind === 'hub-offline'), 10_000, 'incidents published');
      const outbreak = seen.find((i) => i.kind === 'outbreak')!;
      assert.equal(outbreak.class, 'Mirai');
      assert.equal(outbreak.hubs.length, 3);
      await waitFor(async () => (await agg.store.incidents('open')).length === 2, 5000, 'incidents stored');

      await agg.close();
      agg = await startAggregator(opts);
      assert.deepEqual(agg.correlator.openIncidents().map((i) => i.kind).sort(), ['hub-offline', 'outbreak']);
      // The hub comes back: the restored incident closes, with the same id.
      await pub.raw(hubTopic('s2', 'h3', 'status'), encodeStatus({ v: 1, site: 's2', hub: 'h3', ts: Date.now(), state: 'online', bundle: 'b' }));
      const offlineId = seen.find((i) => i.kind === 'hub-offline')!.id;
      await waitFor(() => seen.some((i) => i.id === offlineId && i.state === 'closed'), 10_000, 'hub-offline closed');
      await waitFor(async () => (await agg.store.incidents('closed')).some((i) => i.id === offlineId), 5000, 'closed incident stored');
    } finally {
      await watcher.endAsync();
      await pub.close();
      await agg.close();
      await broker.stop();
      tmp.cleanup();
    }
  });

  it('close() ends even when the last batch it commits opens an incident (no QoS 1 publish left waiting)', async () => {
    const broker = await startAedes();
    const tmp = tempDir();
    // Nothing commits until close() flushes: the outbreak is opened during shutdown, when the consumer's socket
    // no longer reads PUBACKs.
    const agg = await startAggregator({
      broker: broker.url, db: join(tmp.dir, 'c.db'), protocolVersion: 4, clientId: 'close-agg', log: quiet,
      flushDelayMs: 60_000, maxBatch: 100_000,
    });
    const pub = await publisher(broker.url);
    try {
      await pub.alerts([['s1', 'h1'], ['s1', 'h2'], ['s2', 'h3']], 0, 3, 'Mirai');
      await waitFor(() => agg.ingest.counters.received >= 9, 10_000, 'alerts received');
      assert.equal(agg.ingest.counters.stored, 0, 'nothing committed before close');
      const closed = await Promise.race([
        agg.close().then(() => 'closed'),
        new Promise((r) => setTimeout(() => r('hung'), 15_000).unref()),
      ]);
      assert.equal(closed, 'closed');
      assert.equal(agg.ingest.counters.stored, 9);
    } finally {
      await pub.close();
      await broker.stop();
      tmp.cleanup();
    }
  });

  it('retention: alerts older than --retention-hours roll up at start, totals unchanged', async () => {
    const broker = await startAedes();
    const tmp = tempDir();
    const db = join(tmp.dir, 'a.db');
    const opts = { broker: broker.url, db, protocolVersion: 4 as const, clientId: 'ret-agg', log: quiet };
    let agg = await startAggregator(opts);
    const pub = await publisher(broker.url);
    try {
      const old = Date.now() - 30 * HOUR_MS;
      for (let seq = 0; seq < 20; seq++) {
        await pub.raw(hubTopic('s1', 'h1', 'alert'), encodeAlert(alertPayload('s1', 'h1', seq, seq < 5 ? 'DoS' : 'Mirai', old + seq * 1000)));
      }
      await pub.alerts([['s1', 'h1']], 100, 110, 'Scan');
      await waitFor(() => agg.ingest.counters.stored === 30, 10_000, '30 alerts stored');
      const before = await agg.store.summary();
      await agg.close();
      agg = await startAggregator({ ...opts, retentionHours: 24 });
      await waitFor(async () => (await agg.store.summary()).rawAlerts === 10, 5000, 'old alerts rolled up');
      const after = await agg.store.summary();
      assert.equal(after.alerts, 30);
      assert.deepEqual(after.classes, before.classes);
      // A late redelivery of a rolled-up alert is still a duplicate.
      await pub.raw(hubTopic('s1', 'h1', 'alert'), encodeAlert(alertPayload('s1', 'h1', 3, 'DoS', old)));
      await waitFor(() => agg.ingest.counters.duplicates === 1, 5000, 'duplicate recognised');
      assert.equal((await agg.store.summary()).alerts, 30);
    } finally {
      await pub.close();
      await agg.close();
      await broker.stop();
      tmp.cleanup();
    }
  });
});
