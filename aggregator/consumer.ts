/**
 * The MQTT side of the aggregator: one mqtt.js client with a persistent session (clean: false, a fixed client
 * id) subscribed at QoS 1 to every hub's alert, stats and status channel, optionally through a shared
 * subscription group so that several instances split the load.
 *
 * PUBACK only after commit. mqtt.js v5 sends a QoS 1 PUBACK when `client.handleMessage(packet, cb)` calls back,
 * but it also handles incoming packets strictly one after another: waiting for a database commit there would
 * allow one message per commit. So handleMessage hands the message to the Ingest batcher and calls back WITH AN
 * ERROR, which makes mqtt.js skip its PUBACK and move on to the next packet; when the batch commits, the consumer
 * sends the PUBACKs itself, in the order the messages arrived (what MQTT requires). The broker's in-flight window
 * (mosquitto `max_inflight_messages`, or our MQTT 5 Receive Maximum) should bound how many wait, but mosquitto
 * 2.0.x does not enforce Receive Maximum when PUBACKs come back in batches (draining a 150k backlog, 50,851 messages
 * were read while 342 were committed). So the consumer bounds it itself: when `maxPending` messages are read and
 * not yet committed (or `maxPendingBytes` of their payloads), it holds back mqtt.js's callback for the last one.
 * mqtt.js handles packets one after another, so it stops parsing, its stream stops taking data and TCP pushes back
 * on the broker; the first commit that brings both to half their bound releases it. QoS 0 messages count too,
 * until their batch commits (they need no PUBACK, but a flood of them would otherwise grow the ingest queue). A PUBACK owed on a
 * connection that has since dropped is not sent: the broker redelivers and the store's unique key drops the copy.
 * `customHandleAcks` cannot do this: it runs before handleMessage for each packet in the same serial chain.
 */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { CHANNEL_QOS, DEFAULT_PREFIX, fleetFilter } from '../shared/topics.ts';
import { IdsError } from '../shared/errors.ts';
import { MAX_PAYLOAD_BYTES } from '../shared/payloads.ts';
import type { Ingest } from './ingest.ts';

export interface ConsumerOptions {
  broker: string;
  clientId: string;
  ingest: Ingest;
  prefix?: string;
  /** Shared-subscription group: filters become `$share/GROUP/...`. */
  group?: string;
  username?: string;
  password?: string;
  /** 5 (default) or 4 (MQTT 3.1.1, e.g. for the aedes broker). */
  protocolVersion?: 4 | 5;
  /** MQTT 5 Receive Maximum: how many unacknowledged QoS 1 messages the broker may send us (default 1000). */
  receiveMaximum?: number;
  /** Session expiry for MQTT 5, seconds (default 7 days): how long the broker queues for us while we are away. */
  sessionExpirySec?: number;
  /** Messages read and not yet committed before reading pauses (default DEFAULT_MAX_PENDING). */
  maxPending?: number;
  /**
   * Payload bytes read and not yet committed before reading pauses (default DEFAULT_MAX_PENDING_BYTES): the
   * message bound alone would let 1000 payloads of 64 KiB hold 64 MB.
   */
  maxPendingBytes?: number;
  /** How long one event-loop turn may handle messages before yielding, ms (default DEFAULT_SLICE_MS). */
  sliceMs?: number;
  /** How long after the first connect read-ahead stays at RAMP_PENDING, ms (default DEFAULT_RAMP_MS; 0 = none). */
  rampMs?: number;
  log?: (line: string) => void;
}

/**
 * Messages read and not yet committed before reading pauses. mqtt.js handles the packets of a socket chunk in one
 * go until this bound holds it back, so the bound also caps how much work one event-loop turn does, which is what
 * the HTTP API waits behind. Draining 150k queued alerts (as the faults bench's drain case does, three runs
 * each, 2 cores, load ~1.5): 300 answered /api/summary in at most 26–91 ms (1000: 90–197 ms), drained as fast
 * (PostgreSQL 7.3–9.2 s against 7.4–9.3 s; SQLite 4.6–6.5 s against 6.7–7.6 s) and peaked 129–147 MB RSS against
 * 139–166. Batches stay large enough: up to 3 PostgreSQL writes of 100 in flight, SQLite ~300 per transaction.
 */
export const DEFAULT_MAX_PENDING = 300;

/**
 * Payload bytes read and not yet committed before reading pauses. Typical alerts (~450 bytes) never reach it
 * (1000 of them are ~0.5 MB); it bounds what large payloads (up to MAX_PAYLOAD_BYTES each) can hold: parsed,
 * validated and batched, a payload costs a few times its size in memory.
 */
export const DEFAULT_MAX_PENDING_BYTES = 4 * 1024 * 1024;

/**
 * How long one event-loop turn may handle incoming messages, ms. The pending bound caps a turn's work in messages;
 * this caps it in time, whatever the code's warmth or the machine's speed: draining a backlog, the first second's
 * turns (code not yet optimised) ran 100-150 ms and so did the API's answers.
 */
export const DEFAULT_SLICE_MS = 10;

/**
 * For this long after the first connect, at most RAMP_PENDING messages are read ahead of the commit (then
 * `maxPending`). A backlog's first second meets code not yet optimised, statements not yet planned and every
 * process of the pipeline busy at once on the same cores; a gentler start there kept the API's answers in that
 * second at 26–57 ms instead of 67–92 (PostgreSQL drain of 150k, faults bench) and the drain as fast.
 */
export const DEFAULT_RAMP_MS = 2000;
export const RAMP_PENDING = 50;

/** The sentinel handed to mqtt.js so that it skips its own PUBACK (see above). */
const DEFERRED = new Error('PUBACK deferred until the batch commits');

type PacketSender = { _sendPacket(p: { cmd: 'puback'; messageId: number }, cb?: () => void): void };

export class Consumer {
  private client: MqttClient | undefined;
  /** Bumped on every (re)connect; acks owed to an older connection are dropped. */
  private connection = 0;
  readonly filters: string[];
  private readonly maxPending: number;
  /** Messages handed to ingest whose commit has not called back yet, and their payload bytes. */
  private pending = 0;
  private pendingBytes = 0;
  private readonly maxPendingBytes: number;
  /** mqtt.js's callback for the message that reached the bound, held until commits catch up. */
  private held: (() => void) | undefined;
  private readonly sliceMs: number;
  /** When the current slice of message handling began (performance.now()), or -1 when none is open. */
  private sliceStart = -1;
  /** When the first connection came up (performance.now()); -Infinity before, so that no ramp applies. */
  private connectedAt = Number.NEGATIVE_INFINITY;
  private readonly rampMs: number;
  /** Times reading was paused at the bound; the highest `pending` seen (tests and benches check the bound). */
  pauses = 0;
  /** Times handling yielded to the event loop at the end of a slice. */
  yields = 0;
  maxPendingSeen = 0;
  maxPendingBytesSeen = 0;
  private stopping = false;

  constructor(private readonly opts: ConsumerOptions) {
    const prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.filters = (['alert', 'stats', 'status', 'sample'] as const).map((c) => fleetFilter(c, prefix, opts.group));
    this.maxPending = opts.maxPending ?? DEFAULT_MAX_PENDING;
    if (!(this.maxPending >= 1)) throw new IdsError('BAD_OPTION', `maxPending must be ≥ 1, got ${this.maxPending}`);
    this.sliceMs = opts.sliceMs ?? DEFAULT_SLICE_MS;
    this.rampMs = opts.rampMs ?? DEFAULT_RAMP_MS;
    if (!(this.sliceMs > 0)) throw new IdsError('BAD_OPTION', `sliceMs must be > 0, got ${this.sliceMs}`);
    this.maxPendingBytes = opts.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    if (!(this.maxPendingBytes >= 1)) throw new IdsError('BAD_OPTION', `maxPendingBytes must be ≥ 1, got ${this.maxPendingBytes}`);
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Connects and subscribes; resolves once the subscription is granted. */
  async start(): Promise<void> {
    const o = this.opts;
    const v = o.protocolVersion ?? 5;
    const options: IClientOptions = {
      clientId: o.clientId,
      clean: false,
      protocolVersion: v,
      username: o.username,
      password: o.password,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      resubscribe: true,
      // mqtt.js logs several lines per packet through `debug`; a no-op saves formatting work on the hot path
      // unless DEBUG asks for it.
      ...(process.env.DEBUG?.includes('mqttjs') ? {} : { log: () => {} }),
      ...(v === 5
        ? { properties: { sessionExpiryInterval: o.sessionExpirySec ?? 7 * 24 * 3600, receiveMaximum: o.receiveMaximum ?? 1000,
          // The broker drops, rather than sends us, a packet past the payload cap + topic/property headroom.
          maximumPacketSize: MAX_PAYLOAD_BYTES + 4096 } }
        : {}),
    };
    const client = mqtt.connect(o.broker, options);
    this.client = client;
    const log = o.log ?? ((l: string) => console.warn(l));
    client.on('connect', () => {
      // The ramp is for a cold process: a reconnect finds the code optimised and the statements planned.
      if (this.connection++ === 0) this.connectedAt = performance.now();
    });
    client.on('error', (e) => log(`aggregator: mqtt error: ${e.message}`));
    client.handleMessage = (packet: IPublishPacket, callback: (err?: Error) => void) => {
      const topic = packet.topic.toString();
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      if (this.stopping) {
        // Read while stopping: not taken, not acknowledged; the broker sends it again to whoever comes next.
        callback(DEFERRED);
        return;
      }
      // QoS 1 (alerts, statuses) is acknowledged after its commit; QoS 0 (stats) needs no PUBACK, but counts
      // against the bounds until its batch commits all the same: a hub flooding stats must not grow the queue.
      const qos1 = packet.qos === 1 && packet.messageId !== undefined;
      const conn = this.connection;
      const id = packet.messageId;
      const bytes = payload.byteLength;
      this.pending++;
      this.pendingBytes += bytes;
      if (this.pending > this.maxPendingSeen) this.maxPendingSeen = this.pending;
      if (this.pendingBytes > this.maxPendingBytesSeen) this.maxPendingBytesSeen = this.pendingBytes;
      o.ingest.handle(topic, payload, () => {
        this.pending--;
        this.pendingBytes -= bytes;
        this.release();
        if (!qos1 || conn !== this.connection || !client.connected) return;
        this.cork(client);
        (client as unknown as PacketSender)._sendPacket({ cmd: 'puback', messageId: id! });
      });
      // QoS 2 is not used by hubs: mqtt.js acknowledges it when called back without an error.
      const done = () => callback(qos1 ? DEFERRED : undefined);
      const bound = performance.now() - this.connectedAt < this.rampMs ? Math.min(this.maxPending, RAMP_PENDING) : this.maxPending;
      if (!this.held && (this.pending >= bound || this.pendingBytes >= this.maxPendingBytes)) {
        this.pauses++;
        this.held = done;
      } else if (this.sliceSpent()) {
        this.yields++;
        setImmediate(done);
      } else {
        done();
      }
    };
    await new Promise<void>((resolve, reject) => {
      const fail = (e: Error) => {
        client.end(true);
        reject(new IdsError('BAD_OPTION', `aggregator: cannot connect to broker ${o.broker}: ${e.message}`, { cause: e }));
      };
      client.once('error', fail);
      client.once('connect', () => {
        client.removeListener('error', fail);
        // With a stored session the broker still has our subscriptions; subscribing again is harmless and
        // covers a broker that lost its session store.
        // QoS 1 for everything but the best-effort sample channel (QoS 0: the broker need not queue samples for us).
        const subs = Object.fromEntries(this.filters.map((f) => [f, { qos: f.endsWith('/sample') ? CHANNEL_QOS.sample : 1 }]));
        client.subscribe(subs, (err, granted) => {
          const refused = (granted ?? []).filter((g) => g.qos > 2);
          if (!err && refused.length === 0) return resolve();
          client.end(true);
          reject(new IdsError('BAD_OPTION', err
            ? `aggregator: subscribe failed: ${err.message}`
            : `aggregator: broker refused ${refused.map((g) => g.topic).join(', ')} (ACL?)`));
        });
      });
    });
  }

  /**
   * True once this turn of the event loop has handled messages for `sliceMs`: the next one waits for the next
   * turn, so HTTP requests, timers and commits are served in between (a socket chunk holds hundreds of messages,
   * which mqtt.js would otherwise handle in one go, and cold code takes several times longer per message).
   */
  private sliceSpent(): boolean {
    const t = performance.now();
    if (this.sliceStart < 0) {
      this.sliceStart = t;
      // Runs before a message deferred by this slice (queued first): that message opens the next slice.
      setImmediate(() => (this.sliceStart = -1));
      return false;
    }
    return t - this.sliceStart >= this.sliceMs;
  }

  /** Resumes reading once commits have brought what waits down to half the bounds (or at once when stopping). */
  private release(force = false): void {
    if (!this.held) return;
    if (!force && (this.pending > this.maxPending / 2 || this.pendingBytes > this.maxPendingBytes / 2)) return;
    const h = this.held;
    this.held = undefined;
    h();
  }

  /** A batch's PUBACKs leave in one write instead of one syscall each. */
  private corked = false;
  private cork(client: MqttClient): void {
    if (this.corked) return;
    const s = client.stream as unknown as { cork?: () => void; uncork?: () => void } | undefined;
    if (!s?.cork || !s.uncork) return;
    s.cork();
    this.corked = true;
    process.nextTick(() => {
      this.corked = false;
      s.uncork!();
    });
  }

  /**
   * Publishes at QoS 1 without waiting for the broker (ack watermarks: the next commit publishes a newer one
   * anyway). False when not connected: nothing is queued in memory for later.
   */
  publishNow(topic: string, payload: string, retain: boolean): boolean {
    const c = this.client;
    if (!c?.connected || this.stopping) return false;
    c.publish(topic, payload, { qos: 1, retain }, () => undefined);
    return true;
  }

  /** Publishes (incidents) at QoS 1; resolves when the broker has it or rejects on error. */
  publish(topic: string, payload: string, retain = false): Promise<void> {
    const c = this.client;
    if (!c) return Promise.reject(new Error('consumer not started'));
    return new Promise((resolve, reject) => c.publish(topic, payload, { qos: 1, retain }, (e) => (e ? reject(e) : resolve())));
  }

  /**
   * Stops. Graceful (default): stop reading, commit and ack what was read, disconnect; the session stays on the
   * broker, which queues for us until we return. `abrupt`: drop the socket at once, as a crash would.
   */
  async stop(abrupt = false): Promise<void> {
    const c = this.client;
    if (!c) return;
    if (abrupt) {
      this.stopping = true;
      await this.opts.ingest.stop(true);
      this.held = undefined;
      await new Promise<void>((r) => c.end(true, {}, () => r()));
      return;
    }
    // Pause the socket so no new messages arrive while the last batch commits and its PUBACKs go out.
    const stream = c.stream as unknown as { pause?: () => void; resume?: () => void; destroy?: () => void } | undefined;
    stream?.pause?.();
    await this.opts.ingest.flush();
    this.stopping = true;
    this.release(true);
    // A graceful end waits for the PUBACKs of our own publishes (ack watermarks): read them again (anything else
    // read now is left unacknowledged), and give up waiting after a while, as a broker gone quiet would need.
    stream?.resume?.();
    const ended = new Promise<void>((r) => c.end(false, {}, () => r()));
    const late = await Promise.race([ended.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 5000).unref())]);
    // (end(true) is a no-op once an end is under way: cut the socket instead.)
    if (late) stream?.destroy?.();
    await this.opts.ingest.stop(true);
  }
}
