/**
 * Capture readers: classic pcap and pcapng, from a file, stdin or any byte stream, as PacketBatches.
 *
 * Streaming: each chunk is parsed where it lies and a batch's `data` is a subarray of that chunk (zero-copy);
 * only a record that straddles two chunks is copied, and it travels in a batch of its own. A damaged capture
 * yields every good packet before the damage, then throws IdsError('BAD_CAPTURE') naming the byte offset.
 * With `resync` (a live stream, where stopping at the first bad record would blind the hub for good) the
 * stream reader instead reports the damage through `onDegraded`, looks for the next plausible record
 * (capture/resync.ts), reports `onResynced` and carries on.
 */
import { createReadStream } from 'node:fs';
import { IdsError } from '../shared/errors.ts';
import type { PacketBatch } from '../shared/packets.ts';
import { detectFormat, type PacketSlot, type RecordFormat } from './formats.ts';
import { Resync } from './resync.ts';

export interface ReadOptions {
  /** Packets per batch (default 4096). */
  batchPackets?: number;
  /** Close a batch once it holds this many captured bytes (default: no limit beyond the chunk). */
  batchBytes?: number;
  /**
   * Stream reader only: on a corrupt record after the capture's header, skip to the next plausible record
   * instead of ending. The capture still ends with BAD_CAPTURE if it ends before one is found.
   */
  resync?: boolean;
  /** With `resync`: the reader lost its place (`reason` names the offset); packets stop until onResynced. */
  onDegraded?: (reason: string, offset: number) => void;
  /** With `resync`: packets flow again from `offset`; `skipped` bytes were passed over. */
  onResynced?: (offset: number, skipped: number) => void;
}

const DEFAULT_BATCH = 4096;

/** Parser state that survives across chunks: the format (known after the first bytes) and batch sizing. */
class CaptureParser {
  format: RecordFormat | null = null;
  private readonly slot: PacketSlot = { offset: 0, caplen: 0, wirelen: 0, timestampUs: 0, linkType: 0 };
  private readonly maxPackets: number;
  private readonly maxBytes: number;
  private readonly resync: boolean;
  /** Set (instead of throwing) when a resyncable error stopped `parse`: the record at the returned offset. */
  failed: IdsError | null = null;

  constructor(opts: ReadOptions = {}) {
    this.resync = opts.resync ?? false;
    this.maxPackets = opts.batchPackets ?? DEFAULT_BATCH;
    this.maxBytes = opts.batchBytes ?? Infinity;
    if (!Number.isInteger(this.maxPackets) || this.maxPackets < 1) {
      throw new IdsError('BAD_OPTION', `batchPackets must be a positive integer, got ${opts.batchPackets}`);
    }
    if (!(this.maxBytes > 0)) throw new IdsError('BAD_OPTION', `batchBytes must be positive, got ${opts.batchBytes}`);
  }

  /** Bytes needed at `pos` before the next record's length is known. */
  headerBytes(): number {
    return this.format ? this.format.headerBytes : 4;
  }

  /**
   * Length of the next record at `pos`, or -1 when fewer than the header's bytes are available.
   * The first call also detects the format.
   */
  nextLength(view: DataView, pos: number, avail: number, abs: number): number {
    if (!this.format) {
      if (avail < 4) return -1;
      this.format = detectFormat(view, pos, abs);
      if (avail < this.format.headerBytes) return -1;
    }
    if (avail < this.format.headerBytes) return -1;
    return this.format.recordLength(view, pos, abs);
  }

  /**
   * Parses whole records from buf[0 .. end) and yields full batches as they fill. Returns the bytes consumed
   * (the start of the first incomplete record). On corrupt input, yields the good packets first, then throws.
   */
  *parse(buf: Uint8Array, abs: number): Generator<PacketBatch, number> {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const end = buf.byteLength;
    const slot = this.slot;
    let pos = 0;
    let b = new BatchBuilder(this.maxPackets);
    try {
      for (;;) {
        const len = this.nextLength(view, pos, end - pos, abs + pos);
        if (len < 0 || pos + len > end) break;
        if (this.format!.record(view, pos, len, abs + pos, slot)) {
          if (b.count === 0) b.start(pos, abs + pos);
          b.add(slot);
          if (b.count >= this.maxPackets || b.bytes >= this.maxBytes) {
            yield b.finish(buf, pos + len);
            b = new BatchBuilder(this.maxPackets);
          }
        }
        pos += len;
      }
    } catch (e) {
      if (b.count > 0) yield b.finish(buf, pos);
      if (!this.canResync(e)) throw e;
      this.failed = e as IdsError;
      return pos;
    }
    if (b.count > 0) yield b.finish(buf, pos);
    return pos;
  }

  /** A corrupt record past the capture's header, in a reader that resynchronises. */
  canResync(e: unknown): boolean {
    return this.resync && e instanceof IdsError && e.code === 'BAD_CAPTURE' && (this.format?.ready ?? false);
  }
}

/** Collects one batch's packet positions inside a single buffer. */
class BatchBuilder {
  count = 0;
  bytes = 0;
  private base = 0;
  private sourceOffset = 0;
  private readonly offsets: Uint32Array;
  private readonly lengths: Uint32Array;
  private readonly wire: Uint32Array;
  private readonly ts: Float64Array;
  private readonly links: Uint16Array;

  constructor(cap: number) {
    this.offsets = new Uint32Array(cap);
    this.lengths = new Uint32Array(cap);
    this.wire = new Uint32Array(cap);
    this.ts = new Float64Array(cap);
    this.links = new Uint16Array(cap);
  }

  start(base: number, sourceOffset: number): void {
    this.base = base;
    this.sourceOffset = sourceOffset;
  }

  add(s: PacketSlot): void {
    const i = this.count++;
    this.offsets[i] = s.offset - this.base;
    this.lengths[i] = s.caplen;
    this.wire[i] = s.wirelen;
    this.ts[i] = s.timestampUs;
    this.links[i] = s.linkType;
    this.bytes += s.caplen;
  }

  finish(buf: Uint8Array, end: number): PacketBatch {
    const n = this.count;
    return {
      count: n,
      data: buf.subarray(this.base, end),
      offsets: this.offsets.subarray(0, n),
      lengths: this.lengths.subarray(0, n),
      wireLengths: this.wire.subarray(0, n),
      timestampsUs: this.ts.subarray(0, n),
      linkTypes: this.links.subarray(0, n),
      sourceOffset: this.sourceOffset,
    };
  }
}

function truncated(abs: number, have: number, need: number): IdsError {
  const what = need > 0 ? `a ${need}-byte record` : 'a record header';
  return new IdsError('BAD_CAPTURE', `capture truncated at byte offset ${abs}: ${what} has only ${have} byte(s)`);
}

/** Reads a capture held in memory: batches are subarrays of `buf`, nothing is copied. */
export function* readCaptureBuffer(buf: Uint8Array, opts?: ReadOptions): Generator<PacketBatch> {
  if (buf.byteLength === 0) throw new IdsError('EMPTY_INPUT', 'capture is empty (0 bytes)');
  const parser = new CaptureParser({ ...opts, resync: false }); // a file in memory has no later bytes to wait for
  const used = yield* parser.parse(buf, 0);
  if (used < buf.byteLength) {
    const view = new DataView(buf.buffer, buf.byteOffset + used, buf.byteLength - used);
    throw truncated(used, buf.byteLength - used, parser.nextLength(view, 0, buf.byteLength - used, used));
  }
}

/** Grows by doubling: holds the bytes of a record that straddles chunks. */
class Carry {
  buf = new Uint8Array(0);
  len = 0;
  abs = 0;

  append(src: Uint8Array): void {
    if (this.len + src.byteLength > this.buf.byteLength) {
      const next = new Uint8Array(Math.max(64, 2 * this.buf.byteLength, this.len + src.byteLength));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(src, this.len);
    this.len += src.byteLength;
  }
}

function openSource(source: string | NodeJS.ReadableStream): NodeJS.ReadableStream {
  if (typeof source !== 'string') return source;
  if (source === '-') return process.stdin;
  return createReadStream(source, { highWaterMark: 1 << 20 });
}

/**
 * Reads a capture from a path, '-' (stdin) or a byte stream, yielding batches as the bytes arrive.
 * Ends with IdsError BAD_CAPTURE (after the good packets) on a truncated or corrupt capture; with `resync`,
 * only when the capture ends while the reader is still looking for its place again.
 */
export async function* readCapture(
  source: string | NodeJS.ReadableStream,
  opts: ReadOptions = {},
): AsyncGenerator<PacketBatch> {
  const name = typeof source === 'string' ? (source === '-' ? 'stdin' : source) : 'stream';
  const reader = new StreamReader(opts);
  let stream: NodeJS.ReadableStream;
  try {
    stream = openSource(source);
  } catch (e) {
    throw new IdsError('BAD_CAPTURE', `cannot read capture ${name}: ${(e as Error).message}`, { cause: e });
  }
  const chunks = stream[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<string | Buffer>;
    try {
      next = await chunks.next();
    } catch (e) {
      if (e instanceof IdsError) throw e;
      throw new IdsError('BAD_CAPTURE', `cannot read capture ${name}: ${(e as Error).message}`, { cause: e });
    }
    if (next.done) break;
    if (typeof next.value === 'string') {
      throw new IdsError('BAD_CAPTURE', `capture ${name} is a text stream (set no encoding on it)`);
    }
    yield* reader.take(next.value);
  }
  yield* reader.end(name);
}

/** The streaming reader's state between chunks: parsing, carrying a straddling record, or lost (resyncing). */
class StreamReader {
  private readonly parser: CaptureParser;
  private readonly carry = new Carry();
  /** Absolute offset of the next chunk. */
  private abs = 0;
  private lost: Resync | null = null;
  private lostError: IdsError | null = null;

  constructor(private readonly opts: ReadOptions) {
    this.parser = new CaptureParser(opts);
  }

  *take(chunk: Uint8Array): Generator<PacketBatch> {
    const at = this.abs;
    this.abs += chunk.byteLength;
    yield* this.feed(chunk, at);
  }

  *end(name: string): Generator<PacketBatch> {
    if (this.lost) {
      const found = this.lost.push(new Uint8Array(0), true);
      if (!found) {
        const e = this.lostError!;
        throw new IdsError('BAD_CAPTURE', `capture ${name} ended before a good record followed the damage: ${e.message}`, { cause: e });
      }
      yield* this.resume(found.bytes, found.abs, found.skipped);
    }
    const carry = this.carry;
    if (carry.len > 0) {
      const view = new DataView(carry.buf.buffer, 0, carry.len);
      throw truncated(carry.abs, carry.len, this.parser.nextLength(view, 0, carry.len, carry.abs));
    }
    if (this.abs === 0) throw new IdsError('EMPTY_INPUT', `capture ${name} is empty (0 bytes)`);
  }

  /** Parses `data` (absolute offset `at`): completes a carried record first, keeps an incomplete tail. */
  private *feed(data: Uint8Array, at: number): Generator<PacketBatch> {
    if (this.lost) {
      const found = this.lost.push(data);
      if (found) yield* this.resume(found.bytes, found.abs, found.skipped);
      return;
    }
    let start = 0;
    const carry = this.carry;
    if (carry.len > 0) {
      const carried = yield* finishCarry(this.parser, carry, data);
      if (carried.failed) {
        this.lose(carried.failed, carried.bytes, carried.abs);
        yield* this.feed(data.subarray(carried.taken), at + carried.taken);
        return;
      }
      if (carried.taken < 0) return; // the straddling record needs more chunks still
      start = carried.taken;
    }
    const used = yield* this.parser.parse(data.subarray(start), at + start);
    const failed = this.parser.failed;
    if (failed) {
      this.lose(failed, data.subarray(start + used), at + start + used);
      yield* this.feed(new Uint8Array(0), at + data.byteLength);
      return;
    }
    if (start + used < data.byteLength) {
      carry.abs = at + start + used;
      carry.append(data.subarray(start + used));
    }
  }

  private lose(e: IdsError, bytes: Uint8Array, abs: number): void {
    this.parser.failed = null;
    this.carry.len = 0;
    this.lost = new Resync(this.parser.format!, bytes, abs);
    this.lostError = e;
    this.opts.onDegraded?.(e.message, abs);
  }

  private *resume(bytes: Uint8Array, abs: number, skipped: number): Generator<PacketBatch> {
    this.lost = null;
    this.lostError = null;
    this.opts.onResynced?.(abs, skipped);
    yield* this.feed(bytes, abs);
  }
}

interface Carried {
  /** Bytes of the chunk taken into the carried record; -1 when all went in and it is still incomplete. */
  taken: number;
  /** With resync: the carried record was corrupt; `bytes` (from absolute `abs`) hold it for the Resync. */
  failed?: IdsError;
  bytes: Uint8Array;
  abs: number;
}

/**
 * Completes the carried record with bytes from the front of `chunk` and parses it.
 */
function* finishCarry(parser: CaptureParser, carry: Carry, chunk: Uint8Array): Generator<PacketBatch, Carried> {
  let taken = 0;
  const none = new Uint8Array(0);
  for (;;) {
    const view = new DataView(carry.buf.buffer, 0, carry.len);
    let need: number;
    try {
      need = parser.nextLength(view, 0, carry.len, carry.abs);
    } catch (e) {
      if (!parser.canResync(e)) throw e;
      return { taken, failed: e as IdsError, bytes: carry.buf.slice(0, carry.len), abs: carry.abs };
    }
    const want = need < 0 ? parser.headerBytes() : need;
    const take = Math.min(want - carry.len, chunk.byteLength - taken);
    if (take > 0) {
      carry.append(chunk.subarray(taken, taken + take));
      taken += take;
    }
    if (need >= 0 && carry.len >= need) break;
    if (taken >= chunk.byteLength) {
      // Either the header or the body is still short; one more chunk may complete it.
      if (need < 0 && carry.len >= parser.headerBytes()) continue;
      return { taken: -1, bytes: none, abs: 0 };
    }
  }
  const record = carry.buf.slice(0, carry.len); // a copy: the batch must own its bytes
  const abs = carry.abs;
  carry.len = 0;
  yield* parser.parse(record, abs);
  if (parser.failed) {
    const failed = parser.failed;
    parser.failed = null;
    return { taken, failed, bytes: record, abs };
  }
  return { taken, bytes: none, abs: 0 };
}
