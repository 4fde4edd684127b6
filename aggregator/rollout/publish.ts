/**
 * The rollout's MQTT side: one client that publishes bundles on hubs' downlink topics, QoS 1, retained by default
 * (a hub that is offline when its bundle is sent finds it when it reconnects, and a later publish on the same
 * topic, such as a rollback, replaces it). A publish resolves when the broker acknowledged it.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { IdsError } from '../../shared/errors.ts';
import { hubTopic } from '../../shared/topics.ts';
import type { HubRef } from './store.ts';

export interface PublisherOptions {
  broker: string;
  prefix?: string;
  username?: string;
  password?: string;
  protocolVersion?: 4 | 5;
  clientId?: string;
  retain?: boolean;
  connectTimeoutMs?: number;
  /** How long one publish may wait for its PUBACK (default 60 s). */
  publishTimeoutMs?: number;
}

export class BundlePublisher {
  private constructor(private readonly client: MqttClient, private readonly opts: PublisherOptions) {}

  static async connect(o: PublisherOptions): Promise<BundlePublisher> {
    const client = mqtt.connect(o.broker, {
      clientId: o.clientId ?? `iot-ids-rollout-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      clean: true,
      protocolVersion: o.protocolVersion ?? 5,
      username: o.username,
      password: o.password,
      reconnectPeriod: 1000,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no CONNACK in time')), o.connectTimeoutMs ?? 10_000);
        client.once('connect', () => (clearTimeout(t), resolve()));
        client.once('error', (e) => (clearTimeout(t), reject(e)));
      });
    } catch (e) {
      client.end(true);
      throw new IdsError('BAD_OPTION', `--broker ${o.broker}: cannot connect: ${(e as Error).message}`, { cause: e });
    }
    client.on('error', () => undefined);
    return new BundlePublisher(client, o);
  }

  topic(h: HubRef): string {
    return hubTopic(h.site, h.hub, 'bundle', this.opts.prefix);
  }

  /** Publishes `payload` to every hub's bundle topic; resolves once the broker acknowledged each. */
  async send(hubs: readonly HubRef[], payload: string): Promise<void> {
    for (const h of hubs) {
      const topic = this.topic(h);
      try {
        // mqtt.js holds a QoS 1 publish while the broker is away: bounded, so a lost broker stops the rollout (resumable).
        let timer: NodeJS.Timeout | undefined;
        const ms = this.opts.publishTimeoutMs ?? 60_000;
        const pkt = await Promise.race([
          this.client.publishAsync(topic, payload, { qos: 1, retain: this.opts.retain ?? true }),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no PUBACK within ${ms} ms`)), ms))),
        ]).finally(() => clearTimeout(timer));
        const code = (pkt as { reasonCode?: number } | undefined)?.reasonCode;
        if (code !== undefined && code >= 0x80) throw new Error(`refused by the broker (reason code ${code})`);
      } catch (e) {
        throw new IdsError('BAD_OPTION', `publish to ${topic}: ${(e as Error).message}`, { cause: e });
      }
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync().catch(() => undefined);
  }
}
