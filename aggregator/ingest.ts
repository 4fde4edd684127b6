/**
 * The ingest pipeline between the MQTT client and the store: classify each message, gather valid ones into a
 * batch, write the batch in one transaction (group commit: the next batch fills while one is written), and only
 * THEN run each message's ack. The consumer passes the QoS 1 PUBACK as the ack, so a message is acknowledged to
 * the broker only once it is durable; a crash before the commit means a redelivery, which the store's unique key
 * turns into a no-op.
 *
 * Invalid messages are counted by reason, logged with their topic (rate-limited) and dropped, but still acked in
 * order with their batch, so the broker does not redeliver garbage forever.
 *
 * Ordering that the rest relies on, kept whatever runs at once:
 * - acks run in arrival order (MQTT wants PUBACKs in the order the PUBLISHes came), never past a batch that was
 *   not committed;
 * - `onCommit` sees batches in arrival order (the correlator and the live view follow statuses in order);
 * - a hub's stored state and bundle end as its last status received.
 * Several batches may be written at once when the store allows it (`store.maxWritesInFlight`, PostgreSQL): what
 * they write commutes (alert inserts deduplicated by key, added totals, the latest `last_seen`, the newest stats
 * by receive time), completions are released in arrival order, and a batch holding a status message is written
 * alone: after the writes before it end and before any after it start.
 *
 * Failures. A write failing for the database (connection lost, locks, disk) keeps its batch unacked and retries
 * with backoff. A write failing for the data (`StoreWriteError.permanent`: a value out of range, a bad encoding,
 * a constraint) is bisected until the one message that fails alone is found: that one goes to the dead-letter
 * table with its raw topic, payload and error, everything else commits, and all are acked. So no message can
 * block the queue. Once shutdown begins (`giveUpRetries`), a failing write is abandoned unacked (the broker
 * redelivers it) instead of retried, so a store that is down cannot hold the process.
 */
import type { Alert, Stats, Status } from '../shared/payloads.ts';
import { isPermanentStoreError, type AlertRow, type HubUpdate, type Store } from './store/store.ts';
import { classify, INVALID_REASONS, type InvalidReason } from './validate.ts';
import type { FleetBatch, ModelRow, SampleRow } from './store/fleet-data.ts';

export interface Committed {
  /** Alerts stored by this batch (duplicates left out). */
  alerts: Alert[];
  stats: Stats[];
  statuses: Status[];
  /** When the batch was received (the clock's time at its first message). */
  at: number;
}

export interface IngestCounters {
  received: number;
  stored: number;
  duplicates: number;
  invalid: number;
  invalidByReason: Record<InvalidReason, number>;
  batches: number;
  storeErrors: number;
  /** Messages the store refused for good, set aside in the dead-letter table. */
  deadLettered: number;
  /** Sampled Normal flows stored, and those already stored (same site, hub and id). */
  samplesStored: number;
  samplesDuplicate: number;
  /** Alerts stored without their attached features because those did not decode (the alert itself is kept). */
  featuresRefused: number;
}

export interface IngestOptions {
  store: Store;
  prefix?: string;
  /** Flush at once when this many messages wait (default 500). */
  maxBatch?: number;
  /**
   * How long the first message of a batch may wait for company, ms. 0 (default) flushes as soon as the messages
   * already read from the socket are handled: under load batches grow by themselves while a write is in flight.
   */
  flushDelayMs?: number;
  /** First retry delay after a failed write, ms (default 250; the batch is kept and nothing is acked). */
  retryMs?: number;
  /** The retry delay doubles up to this, ms (default 10,000). */
  maxRetryMs?: number;
  /** Batches written at once (default: what the store allows, `store.maxWritesInFlight`). */
  maxInFlight?: number;
  /**
   * While another batch is being written, a new write starts only once the filling batch holds this many
   * messages (default 100): tiny concurrent batches cost more CPU per alert than they save in waiting.
   */
  minConcurrentBatch?: number;
  now?: () => number;
  log?: (line: string) => void;
  onCommit?: (c: Committed) => void;
  /** Every alert of a committed batch, duplicates included (the ack watermark answers resent alerts too). */
  onAlerts?: (alerts: readonly Alert[]) => void;
}

/** One received message in a batch: what it carries for the store, and its ack. */
interface Entry {
  topic: string;
  payload: Uint8Array;
  ack?: () => void;
  row?: AlertRow;
  alert?: Alert;
  hub?: HubUpdate;
  stats?: Stats;
  status?: Status;
  sample?: SampleRow;
  model?: ModelRow;
  /** Committed or dead-lettered: not written again on a retry. */
  settled?: boolean;
}

interface Batch {
  entries: Entry[];
  at: number;
  /** Holds a status message: written alone (see the ordering notes above). */
  exclusive: boolean;
  fresh: Alert[];
  stats: Stats[];
  statuses: Status[];
  /** The write ended: committed, or abandoned at shutdown. */
  done: boolean;
  abandoned: boolean;
}

const newBatch = (at: number): Batch => ({ entries: [], at, exclusive: false, fresh: [], stats: [], statuses: [], done: false, abandoned: false });

export class Ingest {
  readonly counters: IngestCounters = {
    received: 0, stored: 0, duplicates: 0, invalid: 0, batches: 0, storeErrors: 0, deadLettered: 0,
    samplesStored: 0, samplesDuplicate: 0, featuresRefused: 0,
    invalidByReason: Object.fromEntries(INVALID_REASONS.map((r) => [r, 0])) as Record<InvalidReason, number>,
  };
  /** The batch being filled. */
  private open: Batch | undefined;
  /** Closed batches not yet started, oldest first. */
  private readonly queue: Batch[] = [];
  /** Started or queued batches whose completion is not yet released, in arrival order. */
  private readonly order: Batch[] = [];
  private readonly writes = new Set<Promise<void>>();
  private exclusiveRunning = false;
  /** Set once a batch was abandoned: later acks are not sent either (never past a gap). */
  private acksBroken = false;
  private timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;
  private stopped = false;
  private givingUp = false;
  private readonly sleepers = new Set<() => void>();
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly minConcurrentBatch: number;
  private readonly flushDelayMs: number;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  // Rate-limited log: five lines per second at most, then a count of what was left out.
  private logWindowStart = 0;
  private logWindowCount = 0;
  private logSuppressed = 0;

  constructor(private readonly opts: IngestOptions) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? opts.store.maxWritesInFlight ?? 1);
    this.minConcurrentBatch = opts.minConcurrentBatch ?? 100;
    this.flushDelayMs = opts.flushDelayMs ?? 0;
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? ((l) => console.warn(l));
  }

  /** Batches being written now. */
  get inFlight(): number {
    return this.writes.size;
  }

  /** Handles one message; `ack` runs once it is committed (or at once-in-order for a dropped one). */
  handle(topic: string, payload: Uint8Array, ack?: () => void): void {
    if (this.stopped) return;
    this.counters.received++;
    const now = this.now();
    const c = classify(topic, payload, now, this.opts.prefix);
    const b = (this.open ??= newBatch(now));
    const e: Entry = { topic, payload, ack };
    switch (c.kind) {
      case 'invalid':
        this.invalid(topic, c.reason, c.detail);
        break;
      case 'alert':
        e.row = c.row;
        e.alert = c.alert;
        e.hub = c.hub;
        if (c.featuresRefused) {
          this.counters.featuresRefused++;
          this.limitedLog(`aggregator: alert on ${JSON.stringify(topic.slice(0, 200))} stored without its features: ${c.featuresRefused.slice(0, 200)}`);
        }
        break;
      case 'sample':
        e.sample = c.sample;
        e.hub = c.hub;
        break;
      case 'stats':
        e.stats = c.stats;
        e.hub = c.hub;
        break;
      case 'status':
        e.status = c.status;
        e.hub = c.hub;
        e.model = c.model;
        b.exclusive = true;
        break;
    }
    b.entries.push(e);
    if (b.entries.length >= this.maxBatch) this.closeOpen();
    this.pump();
  }

  /** Writes everything received so far; resolves when it is committed and acked (or abandoned, see giveUpRetries). */
  async flush(): Promise<void> {
    this.clearTimer();
    for (;;) {
      this.closeOpen();
      this.pump();
      if (this.writes.size === 0) {
        if (this.queue.length === 0 && this.order.length === 0) return;
        // Nothing running but batches left: only possible if pump could not start (it always can when idle).
        throw new Error('ingest: flush stalled');
      }
      await Promise.race(this.writes);
    }
  }

  /**
   * From now on a write that fails is abandoned unacked instead of retried (the broker redelivers its messages),
   * and retries waiting now end at once: shutdown cannot be held by a store that is down.
   */
  giveUpRetries(): void {
    this.givingUp = true;
    for (const wake of this.sleepers) wake();
    this.sleepers.clear();
  }

  /** Stops taking messages. With `drop`, pending messages are abandoned unacked (the broker redelivers them). */
  async stop(drop = false): Promise<void> {
    this.giveUpRetries();
    if (drop) {
      this.open = undefined;
      for (const b of this.queue.splice(0)) this.order.splice(this.order.indexOf(b), 1);
      this.clearTimer();
    } else {
      await this.flush();
    }
    this.stopped = true;
    while (this.writes.size) await Promise.race(this.writes);
  }

  private invalid(topic: string, reason: InvalidReason, detail: string): void {
    this.counters.invalid++;
    this.counters.invalidByReason[reason]++;
    this.limitedLog(`aggregator: dropped invalid payload on ${JSON.stringify(topic.slice(0, 200))}: ${reason}: ${detail.slice(0, 200)}`);
  }

  private limitedLog(line: string): void {
    const now = Date.now();
    if (now - this.logWindowStart >= 1000) {
      if (this.logSuppressed > 0) this.log(`aggregator: ${this.logSuppressed} more lines not logged`);
      this.logWindowStart = now;
      this.logWindowCount = 0;
      this.logSuppressed = 0;
    }
    if (this.logWindowCount < 5) {
      this.logWindowCount++;
      this.log(line);
    } else {
      this.logSuppressed++;
    }
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer as ReturnType<typeof setTimeout>);
    clearImmediate(this.timer as ReturnType<typeof setImmediate>);
    this.timer = undefined;
  }

  private closeOpen(): void {
    const b = this.open;
    if (!b) return;
    this.open = undefined;
    this.clearTimer();
    this.queue.push(b);
    this.order.push(b);
  }

  /** Starts what may start, and arranges for the filling batch to close when it should. */
  private pump(): void {
    if (this.stopped) return;
    while (this.queue.length && this.canStart(this.queue[0])) this.start(this.queue.shift()!);
    const b = this.open;
    if (!b || this.queue.length || this.timer !== undefined) return;
    if (this.writes.size >= this.maxInFlight || this.exclusiveRunning) return; // a completion pumps again
    // Idle: close once the messages already read from the socket are handled (or after flushDelayMs). Busy: let
    // the batch grow to minConcurrentBatch before a concurrent write starts; a completion pumps again.
    if (this.writes.size > 0 && b.entries.length < this.minConcurrentBatch) return;
    const fire = () => {
      this.timer = undefined;
      if (this.open) {
        this.closeOpen();
        this.pump();
      }
    };
    this.timer = this.flushDelayMs > 0 ? setTimeout(fire, this.flushDelayMs) : setImmediate(fire);
  }

  private canStart(b: Batch): boolean {
    if (this.exclusiveRunning) return false;
    if (b.exclusive) return this.writes.size === 0;
    return this.writes.size < this.maxInFlight;
  }

  private start(b: Batch): void {
    if (b.exclusive) this.exclusiveRunning = true;
    const w: Promise<void> = this.write(b).finally(() => {
      this.writes.delete(w);
      if (b.exclusive) this.exclusiveRunning = false;
      b.done = true;
      this.release();
      this.pump();
    });
    this.writes.add(w);
  }

  /** Runs acks and commit listeners of finished batches, in arrival order. */
  private release(): void {
    while (this.order.length && this.order[0].done) {
      const b = this.order.shift()!;
      if (b.abandoned) this.acksBroken = true;
      if (this.acksBroken) continue;
      this.counters.batches++;
      for (const e of b.entries) e.ack?.();
      if (this.opts.onAlerts) {
        const alerts: Alert[] = [];
        for (const e of b.entries) if (e.alert) alerts.push(e.alert);
        if (alerts.length) this.opts.onAlerts(alerts);
      }
      if (this.opts.onCommit && (b.fresh.length || b.stats.length || b.statuses.length)) {
        try {
          this.opts.onCommit({ alerts: b.fresh, stats: b.stats, statuses: b.statuses, at: b.at });
        } catch (e) {
          this.log(`aggregator: commit listener failed: ${(e as Error).message}`);
        }
      }
    }
  }

  private async write(b: Batch): Promise<void> {
    let pending = b.entries.filter((e) => e.hub);
    let delay = this.opts.retryMs ?? 250;
    for (;;) {
      try {
        await this.commit(b, pending);
        return;
      } catch (e) {
        // Nothing of what failed is acked: the broker keeps it. Retry what is not settled until the store is back.
        this.counters.storeErrors++;
        if (this.givingUp) {
          b.abandoned = true;
          this.log(`aggregator: store write failed while stopping; ${pending.filter((x) => !x.settled).length} messages left unacked for redelivery: ${(e as Error).message}`);
          return;
        }
        this.limitedLog(`aggregator: store write failed, retrying in ${delay} ms: ${(e as Error).message}`);
        await this.sleep(delay);
        if (this.givingUp) {
          b.abandoned = true;
          return;
        }
        delay = Math.min(delay * 2, this.opts.maxRetryMs ?? 10_000);
        pending = pending.filter((x) => !x.settled);
      }
    }
  }

  /**
   * Writes `entries` (a contiguous run of the batch, in order) in one transaction; on a permanent failure, each
   * half on its own, down to the single message that fails alone, which is dead-lettered. What commits is settled
   * at once, so a retry after a transient failure writes only the rest.
   */
  private async commit(b: Batch, entries: Entry[]): Promise<void> {
    if (!entries.length) return;
    const rows: AlertRow[] = [];
    const alerts: Alert[] = [];
    const hubs: HubUpdate[] = [];
    const samples: SampleRow[] = [];
    const models: ModelRow[] = [];
    for (const e of entries) {
      if (e.row) (rows.push(e.row), alerts.push(e.alert!));
      if (e.sample) samples.push(e.sample);
      if (e.model) models.push(e.model);
      hubs.push(e.hub!);
    }
    // Samples and model feature orders ride in the same transaction (store/fleet-data.ts).
    const fleet: FleetBatch | undefined = samples.length || models.length ? { samples, models } : undefined;
    let isNew: boolean[];
    try {
      isNew = fleet ? await this.opts.store.writeBatch(rows, hubs, fleet) : await this.opts.store.writeBatch(rows, hubs);
    } catch (err) {
      if (!isPermanentStoreError(err)) throw err;
      this.counters.storeErrors++;
      if (entries.length === 1) return this.deadLetter(entries[0], err as Error);
      const half = entries.length >> 1;
      await this.commit(b, entries.slice(0, half));
      await this.commit(b, entries.slice(half));
      return;
    }
    let fresh = 0;
    for (let i = 0; i < rows.length; i++) if (isNew[i]) (b.fresh.push(alerts[i]), fresh++);
    for (let i = rows.length; i < rows.length + samples.length; i++) {
      if (isNew[i]) this.counters.samplesStored++;
      else this.counters.samplesDuplicate++;
    }
    this.counters.stored += fresh;
    this.counters.duplicates += rows.length - fresh;
    for (const e of entries) {
      e.settled = true;
      if (e.stats) b.stats.push(e.stats);
      if (e.status) b.statuses.push(e.status);
    }
  }

  private async deadLetter(e: Entry, err: Error): Promise<void> {
    await this.opts.store.deadLetter([{ topic: e.topic, payload: e.payload, error: err.message, at: this.now() }]);
    e.settled = true;
    this.counters.deadLettered++;
    this.limitedLog(`aggregator: dead-lettered a message on ${JSON.stringify(e.topic.slice(0, 200))}: ${err.message.slice(0, 300)}`);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}
