/**
 * Broker security with our own mosquitto (password file + the generated ACL): a hub may publish only under its
 * own site/hub. MQTT 5 shows the refusal in the PUBACK reason code (135, not authorized); with MQTT 3.1.1 mosquitto
 * drops it silently, so the check is that the aggregator never receives it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { mosquittoAcl, hubUsername } from '../../aggregator/acl.ts';
import { startAggregator } from '../../aggregator/aggregator.ts';
import { encodeAlert } from '../../shared/payloads.ts';
import { hubTopic } from '../../shared/topics.ts';
import { hasMosquitto, MOSQUITTO, startMosquitto } from './broker.ts';
import { alertPayload, tempDir, waitFor } from './fixtures.ts';

const PASSWD = '/usr/bin/mosquitto_passwd';
const HUB1 = { site: 'site-a', hub: 'hub-1' };
const HUB2 = { site: 'site-a', hub: 'hub-2' };
const quiet = () => {};

describe('mosquitto ACL', () => {
  it('refuses a hub publishing under another hub; the aggregator never sees it', async (t) => {
    if (!hasMosquitto() || !existsSync(PASSWD)) return t.skip(`mosquitto or mosquitto_passwd not found (${MOSQUITTO}, ${PASSWD}): skipped`);
    const tmp = tempDir();
    const passwd = join(tmp.dir, 'passwd');
    const acl = join(tmp.dir, 'acl');
    writeFileSync(passwd, '');
    for (const [u, p] of [['aggregator', 'agg-secret'], [hubUsername(HUB1), 'pw1'], [hubUsername(HUB2), 'pw2']]) {
      execFileSync(PASSWD, ['-b', passwd, u, p]);
    }
    writeFileSync(acl, mosquittoAcl({ hubs: [HUB1, HUB2] }));
    // mosquitto started as root drops to the "mosquitto" user before reading these: let it in (test files only).
    chmodSync(tmp.dir, 0o755);
    for (const f of [passwd, acl]) chmodSync(f, 0o644);
    const broker = await startMosquitto({ anonymous: false, extra: [`password_file ${passwd}`, `acl_file ${acl}`] });
    const agg = await startAggregator({
      broker: broker.url, db: join(tmp.dir, 'a.db'), clientId: 'acl-agg', group: 'g', username: 'aggregator', password: 'agg-secret', log: quiet,
    });
    const clients: mqtt.MqttClient[] = [];
    try {
      // Anonymous and wrong-password connections are refused.
      await assert.rejects(mqtt.connectAsync(broker.url, { reconnectPeriod: 0, protocolVersion: 5 }));
      await assert.rejects(mqtt.connectAsync(broker.url, { reconnectPeriod: 0, username: hubUsername(HUB1), password: 'nope' }));

      const v5 = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0, protocolVersion: 5, username: hubUsername(HUB1), password: 'pw1' });
      const v4 = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0, protocolVersion: 4, username: hubUsername(HUB1), password: 'pw1' });
      clients.push(v5, v4);
      const own = (seq: number) => encodeAlert(alertPayload(HUB1.site, HUB1.hub, seq));
      // A forged alert: topic AND payload both claim hub-2, so only the broker can catch it.
      const forged = (seq: number) => encodeAlert(alertPayload(HUB2.site, HUB2.hub, seq));

      await v5.publishAsync(hubTopic(HUB1.site, HUB1.hub, 'alert'), own(1), { qos: 1 });
      const refused = await v5.publishAsync(hubTopic(HUB2.site, HUB2.hub, 'alert'), forged(1), { qos: 1 }).then(
        () => undefined,
        (e: Error & { code?: number }) => e,
      );
      assert.ok(refused, 'MQTT 5: the forged publish must fail');
      assert.equal(refused.code, 135, `PUBACK reason code: ${refused.message}`);

      // MQTT 3.1.1 has no reason codes: mosquitto 2.0 acks the forged publish, drops it and closes the connection.
      const forger = async (topic: string, payload: string) => {
        const c = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0, protocolVersion: 4, username: hubUsername(HUB1), password: 'pw1' });
        clients.push(c);
        const closed = new Promise<void>((r) => c.once('close', () => r()));
        await c.publishAsync(topic, payload, { qos: 1 }).catch(() => {});
        await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
      };
      await forger(hubTopic(HUB2.site, HUB2.hub, 'alert'), forged(2));
      // Nor as a status (could fake an offline hub), nor as an incident.
      await forger(hubTopic(HUB2.site, HUB2.hub, 'status'), JSON.stringify({ v: 1, site: HUB2.site, hub: HUB2.hub, ts: 1, state: 'offline' }));
      await v4.publishAsync(hubTopic(HUB1.site, HUB1.hub, 'alert'), own(2), { qos: 1 });

      await waitFor(() => agg.ingest.counters.stored >= 2, 10_000, 'own alerts stored');
      await new Promise((r) => setTimeout(r, 300));
      const hubs = await agg.store.hubs();
      assert.deepEqual(hubs.map((h) => `${h.site}/${h.hub}`), ['site-a/hub-1']);
      assert.equal((await agg.store.summary()).alerts, 2);
      assert.equal(agg.ingest.counters.received, 2, 'the aggregator received only the two legitimate alerts');
      assert.equal(agg.correlator.openIncidents().length, 0, 'no fake hub-offline incident');
    } finally {
      for (const c of clients) await c.endAsync(true);
      await agg.close();
      await broker.stop();
      tmp.cleanup();
    }
  });
});
