/**
 * The hub's MQTT side: one connection (MQTT 3.1.1 or 5, TCP or TLS, optional username/password) publishing
 * alerts (QoS 1, from the store-and-forward queue), stats (QoS 0, dropped while offline), status (retained,
 * last will = offline), and listening on the bundle downlink.
 *
 * Alerts never go to the client directly: they are put in the Store and a pump sends them in order, at most
 * `window` unacknowledged at a time; a record leaves the store only after its PUBACK. When the connection drops,
 * everything unacknowledged is sent again from the store after reconnecting (consumers dedupe by (hub, seq)).
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { IdsError } from '../shared/errors.ts';
import { encodeStatus, type Status } from '../shared/payloads.ts';
import { MAX_DOWNLINK_BYTES } from './downlink.ts';
import { DEFAULT_PREFIX, assertValidId, hubTopic } from '../shared/topics.ts';
import type { Store } from './offline-queue.ts';

export interface PublisherOptions {
  /** mqtt://host:port, mqtts://host:port (TLS), ws:// or wss://. */
  broker: string;
  site: string;
  hub: string;
  prefix?: string;
  /** 4 = MQTT 3.1.1 (default; works with every broker), 5 = MQTT 5. */
  protocolVersion?: 4 | 5;
  username?: string;
  password?: string;
  /** PEM text of the CA that signed the broker's certificate (TLS). */
  ca?: string;
  /** PEM client certificate and key (mutual TLS). */
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
  /** Unacknowledged alerts in flight at once. Default 256. */
  window?: number;
  /** Wait between reconnect attempts (ms). Default 1000. */
  reconnectMs?: number;
  log?: (line: string) => void;
}

export interface StatusFields {
  bundle?: string;
  health?: 'online' | 'degraded';
  reason?: string;
  keyFingerprint?: Status['keyFingerprint'];
  demoKey?: boolean;
}

export class Publisher {
  readonly topics: { alert: string; stats: string; status: string; bundle: string };
  private readonly client: MqttClient;
  private readonly window: number;
  private gen = 0;
  /** Next store id to send. */
  private sendFrom = 0;
  /** Lowest id sent and not yet acknowledged (acks are applied to the store in order). */
  private ackBase = 0;
  private readonly acked = new Set<number>();
  /** Id ranges [from, to) dropped by the store before they were sent (skipped when acks advance). */
  private gaps: [number, number][] = [];
  private inflight = 0;
  /** What status carries besides ids and state: bundle version, health, key fingerprint. */
  private statusFields: StatusFields = {};
  private downlink: ((payload: Buffer) => void) | undefined;
  private ackWaiters: (() => void)[] = [];
  private readonly log: (line: string) => void;
  published = 0;
  /** Connections lost after being established (broker gone, network cut). */
  disconnects = 0;
  private wasConnected = false;

  constructor(private readonly opts: PublisherOptions, private readonly store: Store) {
    assertValidId('site', opts.site);
    assertValidId('hub', opts.hub);
    const prefix = opts.prefix ?? DEFAULT_PREFIX;
    const t = (c: 'alert' | 'stats' | 'status' | 'bundle') => hubTopic(opts.site, opts.hub, c, prefix);
    this.topics = { alert: t('alert'), stats: t('stats'), status: t('status'), bundle: t('bundle') };
    this.window = opts.window ?? 256;
    this.log = opts.log ?? (() => undefined);
    this.sendFrom = this.ackBase = store.headId();
    let url: URL;
    try {
      url = new URL(opts.broker);
    } catch {
      throw new IdsError('BAD_OPTION', `--broker "${opts.broker}" is not a URL like mqtt://host:1883`);
    }
    if (!['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'tls:'].includes(url.protocol)) {
      throw new IdsError('BAD_OPTION', `--broker "${opts.broker}": protocol must be mqtt, mqtts, ws or wss`);
    }
    const co: IClientOptions = {
      clientId: `iot-ids-hub-${opts.site}-${opts.hub}`,
      protocolVersion: opts.protocolVersion ?? 4,
      clean: true,
      reconnectPeriod: opts.reconnectMs ?? 1000,
      connectTimeout: 10_000,
      keepalive: 30,
      username: opts.username,
      password: opts.password,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
      queueQoSZero: false,
      // mqtt.js logs several lines per packet through `debug`; a no-op saves that work unless DEBUG asks for it.
      ...(process.env.DEBUG?.includes('mqttjs') ? {} : { log: () => undefined }),
      will: { topic: this.topics.status, payload: Buffer.from(this.statusPayload('offline')), qos: 1, retain: true },
      // MQTT 5: the broker drops, rather than sends us, anything past a downlink bundle's cap (edge/downlink.ts) + headers.
      ...((opts.protocolVersion ?? 4) === 5 ? { properties: { maximumPacketSize: MAX_DOWNLINK_BYTES + 65536 } } : {}),
    };
    this.client = mqtt.connect(opts.broker, co);
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => this.onClose());
    this.client.on('error', (e) => this.log(`mqtt: ${e.message}`));
    this.client.on('message', (topic, payload) => {
      if (topic === this.topics.bundle && this.downlink) this.downlink(payload);
    });
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Connected: the hub's health (online or degraded with its reason); the will and a clean close: offline. */
  private statusPayload(state: 'connected' | 'offline'): string {
    const { health, reason, ...rest } = this.statusFields;
    const s = state === 'offline' ? 'offline' : (health ?? 'online');
    return encodeStatus({
      v: 1, hub: this.opts.hub, site: this.opts.site, ts: Date.now(), state: s, ...rest,
      ...(s === 'degraded' && reason ? { reason: reason.slice(0, 256) } : {}),
    });
  }

  private onConnect(): void {
    this.wasConnected = true;
    this.log(`mqtt: connected to ${this.opts.broker}`);
    this.client.publish(this.topics.status, this.statusPayload('connected'), { qos: 1, retain: true });
    if (this.downlink) this.client.subscribe(this.topics.bundle, { qos: 1 });
    this.pump();
  }

  /** Step 1 of a reconnect: forget what was in flight; it stays in the store and goes again from its head. */
  private onClose(): void {
    if (this.wasConnected) this.disconnects++;
    this.wasConnected = false;
    this.gen++;
    this.inflight = 0;
    this.acked.clear();
    this.gaps = [];
    this.sendFrom = this.ackBase = this.store.headId();
  }

  /** Sets the bundle version reported in status (and republishes it when connected). */
  setBundle(version: string): void {
    this.setStatus({ bundle: version });
  }

  /** Changes what status reports (bundle, health, key) and republishes it when connected. */
  setStatus(patch: StatusFields): void {
    this.statusFields = { ...this.statusFields, ...patch };
    // The last will is sent by the broker later: keep its bundle version current for the next connect.
    const will = this.client.options.will;
    if (will) will.payload = Buffer.from(this.statusPayload('offline'));
    if (this.client.connected) this.client.publish(this.topics.status, this.statusPayload('connected'), { qos: 1, retain: true });
  }

  onDownlink(handler: (payload: Buffer) => void): void {
    this.downlink = handler;
    if (this.client.connected) this.client.subscribe(this.topics.bundle, { qos: 1 });
  }

  /** Queues alert payloads (single-line JSON) durably, then sends what the window allows. */
  enqueue(payloads: readonly string[]): void {
    if (payloads.length === 0) return;
    this.store.put(payloads);
    this.pump();
  }

  publishStats(json: string): void {
    if (this.client.connected) this.client.publish(this.topics.stats, json, { qos: 0 });
  }

  private pump(): void {
    if (!this.client.connected) return;
    const room = this.window - this.inflight;
    if (room <= 0) return;
    const from = Math.max(this.sendFrom, this.store.headId());
    if (from > this.sendFrom) {
      // The store dropped records at its bound before they were sent: they will never be acknowledged.
      if (this.inflight === 0) this.ackBase = from;
      else this.gaps.push([this.sendFrom, from]);
      this.sendFrom = from;
    }
    const recs = this.store.peek(from, room);
    if (recs.length === 0) return;
    const gen = this.gen;
    for (const r of recs) {
      this.inflight++;
      this.client.publish(this.topics.alert, r.payload, { qos: 1 }, (err) => this.onAck(gen, r.id, err));
    }
    this.sendFrom = recs[recs.length - 1].id + 1;
  }

  private onAck(gen: number, id: number, err: Error | undefined): void {
    if (gen !== this.gen) return; // from a connection that is gone: its records were re-sent
    this.inflight--;
    if (err) {
      this.log(`mqtt: publish ${id} failed: ${err.message}`);
      return; // stays in the store; sent again after the reconnect
    }
    this.published++;
    this.acked.add(id);
    let moved = false;
    for (;;) {
      if (this.acked.delete(this.ackBase)) this.ackBase++;
      else if (this.gaps.length && this.gaps[0][0] === this.ackBase) this.ackBase = this.gaps.shift()![1];
      else break;
      moved = true;
    }
    if (moved) this.store.ack(this.ackBase);
    this.pump();
    if (this.store.size() === 0 && this.ackWaiters.length) {
      const ws = this.ackWaiters;
      this.ackWaiters = [];
      for (const w of ws) w();
    }
  }

  /** Resolves true once every queued alert is acknowledged by the broker, false after `timeoutMs`. */
  flush(timeoutMs = 30_000): Promise<boolean> {
    if (this.store.size() === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.ackWaiters = this.ackWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.ackWaiters.push(done);
      this.pump();
    });
  }

  /** Publishes status offline (retained) when connected, then disconnects. Pending alerts stay in the store. */
  async close(): Promise<void> {
    if (this.client.connected) {
      await new Promise<void>((r) =>
        this.client.publish(this.topics.status, this.statusPayload('offline'), { qos: 1, retain: true }, () => r()),
      ).catch(() => undefined);
    }
    await new Promise<void>((r) => this.client.end(false, {}, () => r()));
  }
}
