/**
 * The hub's store-and-forward queue: every alert is put here first and removed only when the broker has
 * acknowledged it (PUBACK, or the aggregator's watermark: edge/publisher.ts), so alerts survive a broker outage
 * and a hub restart, and leave in order.
 *
 * FileStore keeps plain append-only segment files (no native addons on a hub): `seg-<firstId>.log` with one
 * record per line, plus `head` holding the id of the oldest live record. Records have consecutive ids from 0.
 * Memory holds at most three segments: the head's (read when the watermark moves), the one being sent and the
 * one being written. When the bound is reached the oldest
 * records are dropped (counted). A crash can lose at most the last unflushed `head` update, so a few acked
 * records may be sent again: consumers remove QoS 1 duplicates by (hub, seq) anyway.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdsError } from '../shared/errors.ts';

export interface StoredRecord {
  id: number;
  payload: string;
}

export interface Store {
  /** Appends records (each a single-line string); returns the id of the first. May drop the oldest at the bound. */
  put(payloads: readonly string[]): number;
  /** Up to `max` records with id ≥ `fromId` (clamped to the head), oldest first. */
  peek(fromId: number, max: number): StoredRecord[];
  /** Removes every record with id < `uptoId` (acknowledged). */
  ack(uptoId: number): void;
  /** Id of the oldest live record (= the next id when empty). */
  headId(): number;
  /**
   * The newest record ever put, even if already removed, while the store still has it (FileStore keeps its last
   * segment): the hub resumes its seq numbering after it, without a gap. Undefined when unknown.
   */
  lastPut(): string | undefined;
  size(): number;
  /** Records dropped at the bound since this store was opened. */
  dropped(): number;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** Most records kept; past it the oldest are dropped. Default 100,000. */
  maxRecords?: number;
  /** Records per segment file. Default 4096. */
  segmentRecords?: number;
  /** How often (ms) the head position is written after acks. Default 200; 0 = on every ack. */
  headFlushMs?: number;
  /**
   * Told when the queue folder vanished under a running hub and was recreated: `lost` records that were only on
   * disk are gone (counted in dropped); records still in memory were written again.
   */
  onRepair?: (lost: number, message: string) => void;
}

/** In memory only (tests, and hubs told not to persist). Same semantics as FileStore. */
export class MemoryStore implements Store {
  private items: string[] = [];
  private first = 0;
  private drops = 0;
  constructor(private readonly max = 100_000) {}
  put(payloads: readonly string[]): number {
    const id = this.first + this.items.length;
    for (const p of payloads) this.items.push(p);
    const over = this.items.length - this.max;
    if (over > 0) {
      this.items.splice(0, over);
      this.first += over;
      this.drops += over;
    }
    return id;
  }
  peek(fromId: number, max: number): StoredRecord[] {
    const start = Math.max(0, fromId - this.first);
    return this.items.slice(start, start + max).map((payload, i) => ({ id: this.first + start + i, payload }));
  }
  ack(uptoId: number): void {
    const n = Math.min(this.items.length, uptoId - this.first);
    if (n <= 0) return;
    this.items.splice(0, n);
    this.first += n;
  }
  headId(): number {
    return this.first;
  }
  lastPut(): string | undefined {
    return this.items[this.items.length - 1];
  }
  size(): number {
    return this.items.length;
  }
  dropped(): number {
    return this.drops;
  }
  async close(): Promise<void> {}
}

interface Segment {
  first: number;
  count: number;
  /** Loaded lines, when this segment is cached. */
  lines?: string[];
}

const SEG_RE = /^seg-(\d{16})\.log$/;
const segName = (first: number): string => `seg-${String(first).padStart(16, '0')}.log`;

export class FileStore implements Store {
  private readonly dir: string;
  private readonly max: number;
  private readonly segRecords: number;
  private readonly headFlushMs: number;
  private segs: Segment[] = [];
  private head = 0;
  private next = 0;
  private drops = 0;
  private headTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly onRepair: StoreOptions['onRepair'];

  constructor(dir: string, opts: StoreOptions = {}) {
    this.dir = dir;
    this.onRepair = opts.onRepair;
    this.max = opts.maxRecords ?? 100_000;
    this.segRecords = opts.segmentRecords ?? 4096;
    this.headFlushMs = opts.headFlushMs ?? 200;
    if (!(this.max >= 1) || !(this.segRecords >= 1)) {
      throw new IdsError('BAD_OPTION', `offline queue: maxRecords and segmentRecords must be ≥ 1`);
    }
    try {
      mkdirSync(dir, { recursive: true });
      this.recover();
    } catch (e) {
      if (e instanceof IdsError) throw e;
      throw new IdsError('STORE_FAILED', `offline queue ${dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Rebuilds the segment list from disk; a torn last line (crash mid-write) is cut off. */
  private recover(): void {
    const names = readdirSync(this.dir).filter((n) => SEG_RE.test(n)).sort();
    for (const name of names) {
      const first = Number(SEG_RE.exec(name)![1]);
      const text = readFileSync(join(this.dir, name), 'utf8');
      const end = text.lastIndexOf('\n') + 1;
      if (end < text.length) writeFileSync(join(this.dir, name), text.slice(0, end));
      const count = end === 0 ? 0 : text.slice(0, end).split('\n').length - 1;
      // Segments must be contiguous; a gap means files were removed by hand: restart the numbering after it.
      if (this.segs.length && first !== this.next) this.segs = [];
      this.segs.push({ first, count });
      this.next = first + count;
    }
    let head = 0;
    try {
      head = Number(readFileSync(join(this.dir, 'head'), 'utf8').trim()) || 0;
    } catch {
      head = 0;
    }
    const oldest = this.segs.length ? this.segs[0].first : this.next;
    this.head = Math.min(Math.max(head, oldest), this.next);
    this.dropSegmentsBehindHead();
  }

  put(payloads: readonly string[]): number {
    this.assertOpen();
    const id = this.next;
    let i = 0;
    while (i < payloads.length) {
      let last = this.segs[this.segs.length - 1];
      if (!last || last.count >= this.segRecords) {
        last = { first: this.next, count: 0, lines: [] };
        this.segs.push(last);
        this.append(last, '');
      }
      const take = Math.min(payloads.length - i, this.segRecords - last.count);
      const chunk = payloads.slice(i, i + take);
      for (const p of chunk) {
        if (p.includes('\n')) throw new IdsError('STORE_FAILED', 'offline queue: a record must be a single line');
      }
      // false: the folder was recreated and this segment's records were lost with it; go on in a new segment.
      if (!this.append(last, chunk.join('\n') + '\n')) continue;
      if (last.lines) for (const p of chunk) last.lines.push(p);
      last.count += take;
      this.next += take;
      i += take;
    }
    const over = this.next - this.head - this.max;
    if (over > 0) {
      this.drops += over;
      this.setHead(this.head + over, true);
    }
    return id;
  }

  peek(fromId: number, max: number): StoredRecord[] {
    this.assertOpen();
    try {
      return this.peekOnce(fromId, max);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.repair();
      return this.peekOnce(fromId, max);
    }
  }

  private peekOnce(fromId: number, max: number): StoredRecord[] {
    const out: StoredRecord[] = [];
    let id = Math.max(fromId, this.head);
    for (const seg of this.segs) {
      if (out.length >= max) break;
      if (id >= seg.first + seg.count) continue;
      const lines = this.load(seg);
      for (let k = id - seg.first; k < seg.count && out.length < max; k++, id++) out.push({ id, payload: lines[k] });
    }
    return out;
  }

  private load(seg: Segment): string[] {
    if (seg.lines) return seg.lines;
    // Keep at most the head's segment, the one being read and the one being written cached.
    for (const s of this.segs) if (s !== this.segs[0] && s !== this.segs[this.segs.length - 1]) s.lines = undefined;
    const text = readFileSync(join(this.dir, segName(seg.first)), 'utf8');
    seg.lines = text.split('\n').slice(0, seg.count);
    return seg.lines;
  }

  ack(uptoId: number): void {
    this.assertOpen();
    if (uptoId <= this.head) return;
    this.setHead(Math.min(uptoId, this.next), false);
  }

  private setHead(h: number, now: boolean): void {
    this.head = h;
    this.dropSegmentsBehindHead();
    if (now || this.headFlushMs === 0) this.writeHead();
    else this.headTimer ??= setTimeout(() => this.writeHeadQuietly(), this.headFlushMs);
  }

  private writeHead(): void {
    if (this.headTimer) clearTimeout(this.headTimer);
    this.headTimer = undefined;
    try {
      this.writeHeadFile();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new IdsError('STORE_FAILED', `offline queue ${this.dir}: ${(e as Error).message}`, { cause: e });
      this.repair();
    }
  }

  /** From the timer: a failure must not crash the hub; a stale head only means acked records are sent again. */
  private writeHeadQuietly(): void {
    try {
      this.writeHead();
    } catch {
      // retried on the next ack and at close
    }
  }

  private writeHeadFile(): void {
    const tmp = join(this.dir, 'head.tmp');
    writeFileSync(tmp, String(this.head));
    renameSync(tmp, join(this.dir, 'head'));
  }

  /**
   * Appends to a segment file, recreating the queue folder once if it was removed under us; false when that
   * repair dropped the segment (nothing was written).
   */
  private append(seg: Segment, text: string): boolean {
    const file = join(this.dir, segName(seg.first));
    try {
      try {
        appendFileSync(file, text);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        this.repair();
        if (!this.segs.includes(seg)) return false;
        appendFileSync(file, text);
      }
      return true;
    } catch (e) {
      throw new IdsError('STORE_FAILED', `offline queue ${this.dir}: append failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * The folder (or some segment files) vanished under a running hub, e.g. removed by hand or by a cleanup job:
   * recreate it, write again every segment still held in memory, and drop (counted) the records that were only
   * on disk, up to the newest lost segment so the ids stay contiguous.
   */
  private repair(): void {
    mkdirSync(this.dir, { recursive: true });
    let cut = -1;
    for (let i = 0; i < this.segs.length; i++) {
      const seg = this.segs[i];
      const file = join(this.dir, segName(seg.first));
      if (existsSync(file)) continue;
      if (seg.lines && seg.lines.length === seg.count) writeFileSync(file, seg.lines.map((l) => l + '\n').join(''));
      else cut = i;
    }
    let lost = 0;
    if (cut >= 0) {
      const end = this.segs[cut].first + this.segs[cut].count;
      lost = Math.max(0, end - this.head);
      this.segs.splice(0, cut + 1);
      this.drops += lost;
      this.head = Math.max(this.head, end);
    }
    this.writeHeadFile();
    this.onRepair?.(lost, `offline queue ${this.dir} was removed while running: recreated` +
      (lost ? `, ${lost} queued alerts that were only on disk are lost` : ', nothing lost'));
  }

  private dropSegmentsBehindHead(): void {
    while (this.segs.length > 1 && this.segs[0].first + this.segs[0].count <= this.head) {
      rmSync(join(this.dir, segName(this.segs[0].first)), { force: true });
      this.segs.shift();
    }
  }

  headId(): number {
    return this.head;
  }
  lastPut(): string | undefined {
    const last = this.segs[this.segs.length - 1];
    if (!last || last.count === 0) return undefined;
    return this.load(last)[last.count - 1];
  }
  size(): number {
    return this.next - this.head;
  }
  dropped(): number {
    return this.drops;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.writeHead();
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new IdsError('STORE_FAILED', `offline queue ${this.dir} is closed`);
  }
}
