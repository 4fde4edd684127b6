/**
 * The bounded input queue and the micro-batcher between inputs and the classifier. Flows wait in a fixed ring
 * (raw rows in one Float64Array, keys in parallel arrays); a batch runs when `maxBatch` flows are waiting or the
 * oldest has waited `maxDelayMs`. One batch at a time: while it runs, inputs keep filling the ring, and when the
 * ring is full new flows are shed (mode 'drop', counted) or the input waits for room (mode 'block', for files,
 * which can wait). Memory is fixed at construction: nothing grows with the input rate.
 */
import { IdsError } from '../shared/errors.ts';
import type { BatchClassifier, Verdicts } from './classifier.ts';

export interface BatcherOptions {
  /** Flush when this many flows wait (≤ the classifier's maxRows). Default 256. */
  maxBatch?: number;
  /**
   * Flush when the oldest waiting flow is this old (ms). Default 0: a batch runs as soon as the classifier is idle,
   * so a quiet hub answers at once and a busy one still fills batches to maxBatch while the previous batch runs
   * (measured: p99 at 1,000 flows/s 41 ms at 0 vs 72 ms at 20 with the CNN-LSTM).
   */
  maxDelayMs?: number;
  /** Flows the queue holds. Default 8192. */
  capacity?: number;
  /** At capacity: 'drop' sheds new flows (live input), 'block' makes offer() callers wait (files). Default 'drop'. */
  overflow?: 'drop' | 'block';
}

/** One classified batch: keys in batch order plus the verdicts. Valid only during the onBatch callback. */
export interface Batch {
  rows: number;
  verdicts: Verdicts;
  labels: readonly string[];
  model: string;
  src: string[];
  dst: string[];
  sport: Uint16Array;
  dport: Uint16Array;
  proto: Uint8Array;
  /** performance.now() when each flow arrived. */
  arrival: Float64Array;
  /**
   * The batch's raw rows as the classifier read them (its input block, unscaled: the scaler writes elsewhere), row i
   * at i × `inputs`: what features travel with alerts and samples are read from, without a copy.
   */
  raw: Float64Array;
  /** Raw columns per row in `raw`. */
  inputs: number;
  /** The classifier's model features as raw column indices (its manifest order), when it has them. */
  columns: Int32Array | undefined;
}

export type BatchHandler = (b: Batch) => void;

export class Batcher {
  private clf: BatchClassifier;
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  readonly capacity: number;
  readonly overflow: 'drop' | 'block';
  private readonly width: number;
  private readonly raw: Float64Array;
  private readonly src: string[];
  private readonly dst: string[];
  private readonly sport: Uint16Array;
  private readonly dport: Uint16Array;
  private readonly proto: Uint8Array;
  private readonly arrival: Float64Array;
  private head = 0;
  private count = 0;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private droppedCount = 0;
  private readonly batch: Batch;
  private roomWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private pendingSwap: BatchClassifier | undefined;
  private failure: ((e: unknown) => void) | undefined;
  /** Set while drain() waits: batches run back to back instead of waiting for deadlines. */
  private draining = false;

  constructor(clf: BatchClassifier, private readonly onBatch: BatchHandler, opts: BatcherOptions = {}) {
    this.clf = clf;
    this.maxBatch = opts.maxBatch ?? 256;
    this.maxDelayMs = opts.maxDelayMs ?? 0;
    this.capacity = opts.capacity ?? 8192;
    this.overflow = opts.overflow ?? 'drop';
    if (!(this.maxBatch >= 1 && this.maxBatch <= clf.maxRows)) {
      throw new IdsError('BAD_OPTION', `batch size ${this.maxBatch} must be 1..${clf.maxRows}`);
    }
    if (!(this.maxDelayMs >= 0)) throw new IdsError('BAD_OPTION', `batch deadline ${this.maxDelayMs} ms must be ≥ 0`);
    if (!(this.capacity >= this.maxBatch)) {
      throw new IdsError('BAD_OPTION', `queue capacity ${this.capacity} must be ≥ the batch size ${this.maxBatch}`);
    }
    const cap = this.capacity;
    this.width = clf.inputs;
    this.raw = new Float64Array(cap * this.width);
    this.src = new Array<string>(cap).fill('');
    this.dst = new Array<string>(cap).fill('');
    this.sport = new Uint16Array(cap);
    this.dport = new Uint16Array(cap);
    this.proto = new Uint8Array(cap);
    this.arrival = new Float64Array(cap);
    const b = this.maxBatch;
    this.batch = {
      rows: 0,
      verdicts: undefined as unknown as Verdicts,
      labels: clf.labels,
      model: clf.version,
      src: new Array<string>(b).fill(''),
      dst: new Array<string>(b).fill(''),
      sport: new Uint16Array(b),
      dport: new Uint16Array(b),
      proto: new Uint8Array(b),
      arrival: new Float64Array(b),
      raw: new Float64Array(0),
      inputs: this.width,
      columns: clf.columns,
    };
  }

  /** Raw columns per row (the layout inputs write). */
  get inputs(): number {
    return this.width;
  }
  get depth(): number {
    return this.count;
  }
  get dropped(): number {
    return this.droppedCount;
  }
  get full(): boolean {
    return this.count >= this.capacity;
  }
  get model(): string {
    return (this.pendingSwap ?? this.clf).version;
  }

  /** Called with any classifier error (the hub logs and counts it); without one, errors are rethrown async. */
  onError(f: (e: unknown) => void): void {
    this.failure = f;
  }

  /**
   * Queues one flow. `row` holds `inputs` raw values starting at `offset`. Returns false when the flow was shed
   * (queue full in 'drop' mode; in 'block' mode callers must await room() first when `full`).
   */
  offer(row: ArrayLike<number>, offset: number, src: string, dst: string, sport: number, dport: number, proto: number,
    arrival = performance.now()): boolean {
    if (this.count >= this.capacity) {
      this.droppedCount++;
      return false;
    }
    const slot = (this.head + this.count) % this.capacity;
    const w = this.width;
    const base = slot * w;
    for (let k = 0; k < w; k++) this.raw[base + k] = row[offset + k];
    this.src[slot] = src;
    this.dst[slot] = dst;
    this.sport[slot] = sport;
    this.dport[slot] = dport;
    this.proto[slot] = proto;
    this.arrival[slot] = arrival;
    this.count++;
    this.schedule();
    return true;
  }

  /** Resolves when the queue has room for at least one flow. */
  room(): Promise<void> {
    if (this.count < this.capacity) return Promise.resolve();
    return new Promise((r) => this.roomWaiters.push(r));
  }

  /** Runs every queued flow through the classifier and resolves when the queue is empty and idle. */
  drain(): Promise<void> {
    if (this.count === 0 && !this.running) return Promise.resolve();
    const p = new Promise<void>((r) => this.idleWaiters.push(r));
    this.kick(true);
    return p;
  }

  /** Switches to another classifier between batches (a new bundle); the old one is released. */
  swap(next: BatchClassifier): void {
    if (next.inputs !== this.width || next.maxRows < this.maxBatch) {
      throw new IdsError('BAD_BUNDLE', `new classifier takes ${next.inputs} columns × ${next.maxRows} rows, want ${this.width} × ≥${this.maxBatch}`);
    }
    this.pendingSwap = next;
    if (!this.running) this.applySwap();
  }

  private applySwap(): void {
    const next = this.pendingSwap;
    if (!next) return;
    this.pendingSwap = undefined;
    const old = this.clf;
    this.clf = next;
    this.batch.labels = next.labels;
    this.batch.model = next.version;
    this.batch.columns = next.columns;
    void old.release();
  }

  private schedule(): void {
    if (this.running) return;
    if (this.count >= this.maxBatch) return this.kick(false);
    if (this.count > 0 && !this.timer) {
      const wait = Math.max(0, this.maxDelayMs - (performance.now() - this.arrival[this.head]));
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick(true);
      }, wait);
    }
  }

  private kick(force: boolean): void {
    if (force) this.draining = this.draining || this.idleWaiters.length > 0;
    if (this.running) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.count === 0) return this.settleIdle();
    if (!force && this.count < this.maxBatch) return this.schedule();
    this.running = true;
    // Start on a fresh tick so a synchronous burst of offer() calls fills the batch first.
    setImmediate(() => void this.runBatch());
  }

  private async runBatch(): Promise<void> {
    const n = Math.min(this.count, this.maxBatch);
    const clf = this.clf;
    const b = this.batch;
    const w = this.width;
    const input = clf.input();
    for (let i = 0; i < n; i++) {
      const slot = (this.head + i) % this.capacity;
      input.set(this.raw.subarray(slot * w, slot * w + w), i * w);
      b.src[i] = this.src[slot];
      b.dst[i] = this.dst[slot];
      b.sport[i] = this.sport[slot];
      b.dport[i] = this.dport[slot];
      b.proto[i] = this.proto[slot];
      b.arrival[i] = this.arrival[slot];
    }
    this.head = (this.head + n) % this.capacity;
    this.count -= n;
    this.wakeRoom();
    try {
      b.verdicts = await clf.classify(n);
      b.rows = n;
      // Fetched again after classify(): the block may have moved; its first n rows still hold this batch.
      b.raw = clf.input();
      this.onBatch(b);
    } catch (e) {
      if (this.failure) this.failure(e);
      else setImmediate(() => { throw e; });
    }
    this.running = false;
    this.applySwap();
    if (this.count === 0) return this.settleIdle();
    // Draining (or a full batch waiting): go again now; otherwise wait for the deadline of the oldest flow.
    if (this.draining || this.count >= this.maxBatch) this.kick(true);
    else this.schedule();
  }

  private wakeRoom(): void {
    const ws = this.roomWaiters;
    if (ws.length === 0) return;
    this.roomWaiters = [];
    for (const w of ws) w();
  }

  private settleIdle(): void {
    this.draining = false;
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }

  /** Stops the timer; queued flows are discarded (call drain() first to keep them). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
