/**
 * The ingest pipeline between the MQTT client and the store: classify each message, gather valid ones into a
 * batch, write the batch in one transaction (group commit: at most one write in flight, the next batch fills
 * meanwhile), and only THEN run each message's ack. The consumer passes the QoS 1 PUBACK as the ack, so a message
 * is acknowledged to the broker only once it is durable; a crash before the commit means a redelivery, which the
 * store's unique key turns into a no-op.
 *
 * Invalid messages are counted by reason, logged with their topic (rate-limited) and dropped, but still acked in
 * order with their batch, so the broker does not redeliver garbage forever.
 */
import type { Alert, Stats, Status } from '../shared/payloads.ts';
import type { AlertRow, HubUpdate, Store } from './store/store.ts';
import { classify, INVALID_REASONS, type InvalidReason } from './validate.ts';

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
  /** Retry delay after a failed write (the batch is kept and nothing is acked). */
  retryMs?: number;
  now?: () => number;
  log?: (line: string) => void;
  onCommit?: (c: Committed) => void;
}

interface Batch {
  rows: AlertRow[];
  alerts: Alert[];
  hubs: HubUpdate[];
  stats: Stats[];
  statuses: Status[];
  acks: (() => void)[];
  size: number;
  at: number;
}

const emptyBatch = (at: number): Batch => ({ rows: [], alerts: [], hubs: [], stats: [], statuses: [], acks: [], size: 0, at });

export class Ingest {
  readonly counters: IngestCounters = {
    received: 0, stored: 0, duplicates: 0, invalid: 0, batches: 0, storeErrors: 0,
    invalidByReason: Object.fromEntries(INVALID_REASONS.map((r) => [r, 0])) as Record<InvalidReason, number>,
  };
  private batch: Batch | undefined;
  /** Batches that reached maxBatch while a write was in flight, oldest first. */
  private readonly full: Batch[] = [];
  private writing: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;
  private stopped = false;
  private readonly maxBatch: number;
  private readonly flushDelayMs: number;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  // Rate-limited invalid log: one line per second at most, naming one example topic.
  private logWindowStart = 0;
  private logWindowCount = 0;
  private logSuppressed = 0;

  constructor(private readonly opts: IngestOptions) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.flushDelayMs = opts.flushDelayMs ?? 0;
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? ((l) => console.warn(l));
  }

  /** Handles one message; `ack` runs once it is committed (or at once-in-order for a dropped one). */
  handle(topic: string, payload: Uint8Array, ack?: () => void): void {
    if (this.stopped) return;
    this.counters.received++;
    const now = this.now();
    const c = classify(topic, payload, now, this.opts.prefix);
    const b = (this.batch ??= emptyBatch(now));
    if (ack) b.acks.push(ack);
    b.size++;
    switch (c.kind) {
      case 'invalid':
        this.invalid(topic, c.reason, c.detail);
        break;
      case 'alert':
        b.rows.push(c.row);
        b.alerts.push(c.alert);
        b.hubs.push(c.hub);
        break;
      case 'stats':
        b.stats.push(c.stats);
        b.hubs.push(c.hub);
        break;
      case 'status':
        b.statuses.push(c.status);
        b.hubs.push(c.hub);
        break;
    }
    if (b.size >= this.maxBatch) {
      this.full.push(b);
      this.batch = undefined;
    }
    this.schedule();
  }

  /** Writes everything received so far; resolves when it is committed and acked. */
  async flush(): Promise<void> {
    this.clearTimer();
    while (this.writing || this.batch || this.full.length) {
      if (this.writing) await this.writing;
      else this.startWrite();
    }
  }

  /** Stops taking messages. With `drop`, pending messages are abandoned unacked (the broker redelivers them). */
  async stop(drop = false): Promise<void> {
    if (drop) {
      this.batch = undefined;
      this.full.length = 0;
      this.clearTimer();
    } else {
      await this.flush();
    }
    this.stopped = true;
    if (this.writing) await this.writing.catch(() => {});
  }

  private invalid(topic: string, reason: InvalidReason, detail: string): void {
    this.counters.invalid++;
    this.counters.invalidByReason[reason]++;
    const now = Date.now();
    if (now - this.logWindowStart >= 1000) {
      if (this.logSuppressed > 0) this.log(`aggregator: ${this.logSuppressed} more invalid payloads not logged`);
      this.logWindowStart = now;
      this.logWindowCount = 0;
      this.logSuppressed = 0;
    }
    if (this.logWindowCount < 5) {
      this.logWindowCount++;
      this.log(`aggregator: dropped invalid payload on ${JSON.stringify(topic.slice(0, 200))}: ${reason}: ${detail.slice(0, 200)}`);
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

  private schedule(): void {
    if (this.writing) return; // the running write picks the batch up when it ends
    if (this.full.length) {
      this.startWrite();
      return;
    }
    if (this.timer !== undefined) return;
    const fire = () => {
      this.timer = undefined;
      if (!this.writing && (this.batch || this.full.length)) this.startWrite();
    };
    this.timer = this.flushDelayMs > 0 ? setTimeout(fire, this.flushDelayMs) : setImmediate(fire);
  }

  private startWrite(): void {
    const b = this.full.shift() ?? this.batch;
    if (!b) return;
    if (b === this.batch) {
      this.batch = undefined;
      this.clearTimer();
    }
    this.writing = this.write(b).finally(() => {
      this.writing = undefined;
      if ((this.batch || this.full.length) && !this.stopped) this.schedule();
    });
  }

  private async write(b: Batch): Promise<void> {
    for (;;) {
      try {
        const isNew = b.rows.length || b.hubs.length ? await this.opts.store.writeBatch(b.rows, b.hubs) : [];
        const fresh: Alert[] = [];
        for (let i = 0; i < isNew.length; i++) if (isNew[i]) fresh.push(b.alerts[i]);
        this.counters.stored += fresh.length;
        this.counters.duplicates += b.rows.length - fresh.length;
        this.counters.batches++;
        for (const ack of b.acks) ack();
        if (this.opts.onCommit && (fresh.length || b.stats.length || b.statuses.length)) {
          try {
            this.opts.onCommit({ alerts: fresh, stats: b.stats, statuses: b.statuses, at: b.at });
          } catch (e) {
            this.log(`aggregator: commit listener failed: ${(e as Error).message}`);
          }
        }
        return;
      } catch (e) {
        // Nothing is acked: the broker keeps the messages. Retry the same batch until the store is back.
        this.counters.storeErrors++;
        this.log(`aggregator: store write failed, retrying in ${this.opts.retryMs ?? 1000} ms: ${(e as Error).message}`);
        if (this.stopped) return;
        await new Promise((r) => setTimeout(r, this.opts.retryMs ?? 1000));
        if (this.stopped) return;
      }
    }
  }
}
