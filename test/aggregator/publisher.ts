/** A test hub fleet: publishes QoS 1 alerts for several hubs as fast as the broker takes them. */
import mqtt, { type MqttClient } from 'mqtt';
import { encodeAlert } from '../../shared/payloads.ts';
import { hubTopic } from '../../shared/topics.ts';
import { alertPayload } from './fixtures.ts';

export interface Publisher {
  client: MqttClient;
  /** Publishes alerts seq [from, to) for each hub, `window` in flight at a time. */
  alerts(hubs: readonly [string, string][], from: number, to: number, cls?: string, window?: number): Promise<number>;
  raw(topic: string, payload: string | Buffer, qos?: 0 | 1): Promise<void>;
  close(): Promise<void>;
}

export async function publisher(url: string, opts: { clientId?: string; username?: string; password?: string; protocolVersion?: 4 | 5 } = {}): Promise<Publisher> {
  const client = await mqtt.connectAsync(url, {
    clientId: opts.clientId ?? `pub-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    clean: true,
    username: opts.username,
    password: opts.password,
    protocolVersion: opts.protocolVersion ?? 4,
    reconnectPeriod: 0,
  });
  return {
    client,
    async alerts(hubs, from, to, cls = 'Mirai', window = 200) {
      let sent = 0;
      let pending: Promise<unknown>[] = [];
      for (let seq = from; seq < to; seq++) {
        for (const [site, hub] of hubs) {
          pending.push(client.publishAsync(hubTopic(site, hub, 'alert'), encodeAlert(alertPayload(site, hub, seq, cls)), { qos: 1 }));
          sent++;
          if (pending.length >= window) {
            await Promise.all(pending);
            pending = [];
          }
        }
      }
      await Promise.all(pending);
      return sent;
    },
    async raw(topic, payload, qos = 1) {
      await client.publishAsync(topic, payload, { qos });
    },
    close: () => client.endAsync(),
  };
}
