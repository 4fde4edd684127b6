/**
 * The hub's MQTT side: one connection (MQTT 3.1.1 or 5, TCP or TLS, optional username/password) publishing
 * alerts (QoS 1, from the store-and-forward queue), stats and Normal samples (QoS 0, dropped while offline),
 * status (retained, last will = offline), and listening on the bundle downlink.
 *
 * Alerts never go to the client directly: they are put in the Store and a pump sends them in order, at most
 * `window` without a PUBACK at a time. When the connection drops, everything still in the store is sent again from
 * its head after reconnecting (consumers dedupe by (hub, seq)).
 *
 * When does a record leave the store? PUBACK is hop-by-hop: a broker that loses its state loses what it held
 * while the hub believes it delivered. So in `end-to-end` delivery a record leaves only when the aggregator's
 * watermark (`{prefix}/{site}/{hub}/ack`, retained: every seq ≤ it is in the database) passes it, and when the
 * watermark stops moving for `resendMs` while records wait for it, everything from the store's head is sent again
 * (go-back-N; the wait grows by half up to RESEND_MAX_MS while it stays stuck, back to `resendMs` once it moves). In
 * `puback` delivery a record leaves at its PUBACK, as a hub without an aggregator (tests, demos, capture scoring)
 * needs. `auto` (default) is `puback` until the first watermark for this hub arrives, then `end-to-end` for good
 * (the hub records that in its state folder); until then a PUBACKed record stays `resendMs` longer, so the alerts
 * of a fresh hub's first moments are still there when the first watermark turns delivery end-to-end. Every alert carries `floor`, the seq of the store's oldest record
 * when it was sent, so the aggregator's watermark can pass seqs this hub gave up or never used.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { IdsError } from '../shared/errors.ts';
import { decodeAck, encodeStatus, type Status } from '../shared/payloads.ts';
import { MAX_DOWNLINK_BYTES } from './downlink.ts';
import { DEFAULT_PREFIX, assertValidId, hubTopic } from '../shared/topics.ts';
import type { Store, StoredRecord } from './offline-queue.ts';

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
  /** When a record leaves the offline queue (see above). Default 'auto'. */
  delivery?: Delivery;
  /** With `auto`: a watermark was seen before (persisted by the hub), so start end-to-end. */
  acksSeen?: boolean;
  /** Called once when `auto` turns end-to-end on the first watermark (the hub persists it). */
  onAcksSeen?: () => void;
  /** End-to-end: how long the watermark may stand still before unconfirmed alerts go again (ms). Default 5000. */
  resendMs?: number;
  log?: (line: string) => void;
}

export interface StatusFields {
  bundle?: string;
  /** The running bundle's release (manifest model.release) and feature order (preprocessing.features). */
  release?: number;
  features?: readonly string[];
  health?: 'online' | 'degraded';
  reason?: string;
  keyFingerprint?: Status['keyFingerprint'];
  demoKey?: boolean;
}

export type Delivery = 'auto' | 'puback' | 'end-to-end';
export const DELIVERIES: readonly Delivery[] = ['auto', 'puback', 'end-to-end'];

/**
 * Longest wait between resends while the watermark stays stuck (aggregator down: don't flood the broker). The wait
 * grows by half each time: a lost group member's session expires after 15 s, and a doubling wait would answer it
 * only after 2 + 4 + 8 + 16 + 32 s.
 */
export const RESEND_MAX_MS = 30_000;
const RESEND_GROWTH = 1.5;

/**
 * The seq of a stored alert payload, read without parsing the JSON (our encoders write `"seq":N` near the
 * start); undefined when there is none.
 */
export function seqOf(payload: string): number | undefined {
  const i = payload.indexOf('"seq":');
  if (i < 0) return undefined;
  let v = 0;
  let k = i + 6;
  const start = k;
  for (; k < payload.length; k++) {
    const c = payload.charCodeAt(k) - 48;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
  }
  return k > start ? v : undefined;
}

/** The payload with `"floor":N` added as its last field (payloads are single JSON objects made by our encoders). */
export function withFloor(payload: string, floor: number | undefined): string {
  if (floor === undefined || !payload.endsWith('}')) return payload;
  return payload.slice(0, -1) + ',"floor":' + floor + '}';
}

export class Publisher {
  readonly topics: { alert: string; stats: string; status: string; bundle: string; ack: string; sample: string };
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
  /** End-to-end: records leave the store by the watermark only. */
  private endToEnd: boolean;
  /** Highest watermark received (-1: none). */
  watermark = -1;
  /** Records removed from the store by the watermark. */
  confirmed = 0;
  /** Times unconfirmed records were sent again because the watermark stood still. */
  resends = 0;
  private readonly resendBaseMs: number;
  private resendMs: number;
  /** performance.now() of the last watermark progress (or of the first send after a quiet spell). */
  private lastProgress = 0;
  private resendTimer: NodeJS.Timeout | undefined;
  /** `auto` before the first watermark: store positions PUBACKed at `at`, removed once `resendMs` old. */
  private graceMarks: { upto: number; at: number }[] = [];

  constructor(private readonly opts: PublisherOptions, private readonly store: Store) {
    assertValidId('site', opts.site);
    assertValidId('hub', opts.hub);
    const prefix = opts.prefix ?? DEFAULT_PREFIX;
    const t = (c: 'alert' | 'stats' | 'status' | 'bundle' | 'ack' | 'sample') => hubTopic(opts.site, opts.hub, c, prefix);
    this.topics = { alert: t('alert'), stats: t('stats'), status: t('status'), bundle: t('bundle'), ack: t('ack'), sample: t('sample') };
    this.window = opts.window ?? 256;
    const delivery = opts.delivery ?? 'auto';
    if (!DELIVERIES.includes(delivery)) throw new IdsError('BAD_OPTION', `delivery must be ${DELIVERIES.join(', ')}, got "${delivery}"`);
    this.endToEnd = delivery === 'end-to-end' || (delivery === 'auto' && opts.acksSeen === true);
    this.resendMs = this.resendBaseMs = opts.resendMs ?? 5000;
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
      else if (topic === this.topics.ack) this.onWatermark(payload);
    });
    if (delivery !== 'puback') {
      this.resendTimer = setInterval(() => this.checkStall(), Math.max(50, Math.min(1000, this.resendBaseMs / 4))).unref();
    }
  }

  /** How records leave the store now. */
  get delivery(): 'puback' | 'end-to-end' {
    return this.endToEnd ? 'end-to-end' : 'puback';
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Connected: the hub's health (online or degraded with its reason); the will and a clean close: offline. */
  private statusPayload(state: 'connected' | 'offline'): string {
    const { health, reason, features, ...rest } = this.statusFields;
    const s = state === 'offline' ? 'offline' : (health ?? 'online');
    return encodeStatus({
      v: 1, hub: this.opts.hub, site: this.opts.site, ts: Date.now(), state: s, ...rest,
      ...(features ? { features: [...features] } : {}),
      ...(s === 'degraded' && reason ? { reason: reason.slice(0, 256) } : {}),
    });
  }

  private onConnect(): void {
    this.wasConnected = true;
    this.log(`mqtt: connected to ${this.opts.broker}`);
    this.client.publish(this.topics.status, this.statusPayload('connected'), { qos: 1, retain: true });
    if (this.downlink) this.client.subscribe(this.topics.bundle, { qos: 1 });
    if (this.opts.delivery !== 'puback') this.client.subscribe(this.topics.ack, { qos: 1 });
    this.lastProgress = performance.now();
    this.pump();
  }

  /** The aggregator's watermark: drop every stored record it covers. */
  private onWatermark(payload: Buffer): void {
    const d = decodeAck(payload);
    if (!d.ok || d.value.site !== this.opts.site || d.value.hub !== this.opts.hub) {
      this.log(`mqtt: ignored ack payload: ${d.ok ? 'names another hub' : d.error}`);
      return;
    }
    if (!this.endToEnd) {
      this.endToEnd = true;
      this.graceMarks = [];
      this.log('delivery: aggregator watermark seen; alerts now leave the queue only once stored (end-to-end)');
      this.opts.onAcksSeen?.();
    }
    if (d.value.seq <= this.watermark) return;
    this.watermark = d.value.seq;
    this.lastProgress = performance.now();
    this.resendMs = this.resendBaseMs;
    // Records are in seq order: find the first one past the watermark.
    const head = this.store.headId();
    let upto = head;
    for (;;) {
      const recs = this.store.peek(upto, 1024);
      let i = 0;
      while (i < recs.length && (seqOf(recs[i].payload) ?? Infinity) <= this.watermark) i++;
      if (i > 0) upto = recs[i - 1].id + 1;
      if (i < recs.length || recs.length === 0) break;
    }
    if (upto > head) {
      this.store.ack(upto);
      this.confirmed += upto - head;
      this.wakeWaiters();
    }
    this.pump();
  }

  /** End-to-end: the watermark stood still too long while records wait for it: send them all again. */
  private checkStall(): void {
    if (!this.endToEnd) return this.releaseGrace();
    if (!this.client.connected) return;
    if (this.sendFrom <= this.store.headId()) return; // nothing sent and unconfirmed
    const now = performance.now();
    if (now - this.lastProgress < this.resendMs) return;
    this.resends++;
    this.log(`delivery: watermark ${this.watermark} unchanged for ${Math.round(now - this.lastProgress)} ms; ` +
      `sending ${this.sendFrom - this.store.headId()} unconfirmed alerts again`);
    this.lastProgress = now;
    this.resendMs = Math.min(RESEND_MAX_MS, Math.round(this.resendMs * RESEND_GROWTH));
    this.sendFrom = this.store.headId();
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

  /** Samples are best effort (QoS 0, never queued): false when not connected, and nothing was sent. */
  publishSample(json: string): boolean {
    if (!this.client.connected) return false;
    this.client.publish(this.topics.sample, json, { qos: 0 });
    return true;
  }

  private pump(): void {
    if (!this.client.connected) return;
    const room = this.window - this.inflight;
    if (room <= 0) return;
    const head = this.store.headId();
    if (head > this.sendFrom) {
      // Records left the store before they were sent: dropped at its bound, or confirmed by the watermark.
      if (!this.endToEnd) {
        if (this.inflight === 0) this.ackBase = head;
        else this.gaps.push([this.sendFrom, head]);
      }
      this.sendFrom = head;
    }
    const recs = this.store.peek(this.sendFrom, room);
    if (recs.length === 0) return;
    // The first send after a quiet spell starts the watermark's clock.
    if (this.sendFrom === head) this.lastProgress = performance.now();
    const floor = this.endToEnd ? this.floorAt(head, recs[0]) : undefined;
    const gen = this.gen;
    for (const r of recs) {
      this.inflight++;
      this.client.publish(this.topics.alert, withFloor(r.payload, floor), { qos: 1 }, (err) => this.onAck(gen, r.id, err));
    }
    this.sendFrom = recs[recs.length - 1].id + 1;
  }

  private floorCache: { head: number; seq: number | undefined } = { head: -1, seq: undefined };
  /** Seq of the store's head record (read again only when the head moves). */
  private floorAt(head: number, first: StoredRecord): number | undefined {
    if (this.floorCache.head !== head) {
      const p = head === first.id ? first.payload : this.store.peek(head, 1)[0]?.payload;
      this.floorCache = { head, seq: p === undefined ? undefined : seqOf(p) };
    }
    return this.floorCache.seq;
  }

  private onAck(gen: number, id: number, err: Error | undefined): void {
    if (gen !== this.gen) return; // from a connection that is gone: its records were re-sent
    this.inflight--;
    if (err) {
      this.log(`mqtt: publish ${id} failed: ${err.message}`);
      return; // stays in the store; sent again after the reconnect
    }
    this.published++;
    if (!this.endToEnd) this.removeAcked(id);
    this.pump();
  }

  /** PUBACK delivery: records leave the store in order as their PUBACKs arrive. */
  private removeAcked(id: number): void {
    this.acked.add(id);
    let moved = false;
    for (;;) {
      if (this.acked.delete(this.ackBase)) this.ackBase++;
      else if (this.gaps.length && this.gaps[0][0] === this.ackBase) this.ackBase = this.gaps.shift()![1];
      else break;
      moved = true;
    }
    if (moved && this.ackBase > this.store.headId()) {
      if (this.opts.delivery !== 'auto') this.store.ack(this.ackBase);
      else {
        const now = performance.now();
        const last = this.graceMarks[this.graceMarks.length - 1];
        if (last && now - last.at < 100) last.upto = this.ackBase;
        else this.graceMarks.push({ upto: this.ackBase, at: now });
      }
    }
    this.wakeWaiters();
  }

  /** `auto` before the first watermark: PUBACKed records leave once they have waited `resendMs`. */
  private releaseGrace(): void {
    const old = performance.now() - this.resendBaseMs;
    let upto = -1;
    while (this.graceMarks.length && this.graceMarks[0].at <= old) upto = this.graceMarks.shift()!.upto;
    if (upto > this.store.headId()) this.store.ack(upto);
  }

  /** Every queued alert delivered: stored by the aggregator (end-to-end) or acknowledged by the broker. */
  private delivered(): boolean {
    const size = this.store.size();
    if (this.endToEnd || size === 0) return size === 0;
    return this.inflight === 0 && this.ackBase >= this.store.headId() + size;
  }

  private wakeWaiters(): void {
    if (this.ackWaiters.length && this.delivered()) {
      const ws = this.ackWaiters;
      this.ackWaiters = [];
      for (const w of ws) w();
    }
  }

  /**
   * Resolves true once every queued alert is delivered (PUBACK delivery: acknowledged by the broker; end-to-end:
   * stored by the aggregator), false after `timeoutMs`. In `auto` before any watermark, PUBACKed alerts still in
   * their grace time stay queued (and go again on the next start).
   */
  flush(timeoutMs = 30_000): Promise<boolean> {
    if (this.delivered()) return Promise.resolve(true);
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
    if (this.resendTimer) clearInterval(this.resendTimer);
    if (this.client.connected) {
      await new Promise<void>((r) =>
        this.client.publish(this.topics.status, this.statusPayload('offline'), { qos: 1, retain: true }, () => r()),
      ).catch(() => undefined);
    }
    await new Promise<void>((r) => this.client.end(false, {}, () => r()));
  }
}
