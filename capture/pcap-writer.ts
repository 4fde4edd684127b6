/**
 * Writes classic pcap (little-endian, microsecond timestamps, one link type, Ethernet by default) to a file or
 * a stream. Records are packed into 1 MiB chunks, so writing a million small frames costs a few hundred writes.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { IdsError } from '../shared/errors.ts';
import { LINKTYPE_ETHERNET } from '../shared/packets.ts';
import { MAX_CAPLEN } from './formats.ts';

const CHUNK = 1 << 20;

export interface PcapWriterOptions {
  linkType?: number;
  snaplen?: number;
}

export class PcapWriter {
  private buf = Buffer.allocUnsafe(CHUNK);
  private pos = 0;
  private fd: number | null = null;
  private stream: Writable | null = null;
  private closed = false;
  private readonly snaplen: number;
  /** Packets written so far. */
  packets = 0;

  /** `out`: a file path (created or truncated, written synchronously) or a writable stream. */
  constructor(out: string | Writable, opts: PcapWriterOptions = {}) {
    this.snaplen = opts.snaplen ?? MAX_CAPLEN;
    if (typeof out === 'string') this.fd = openSync(out, 'w');
    else this.stream = out;
    const h = this.buf;
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8); // thiszone
    h.writeUInt32LE(0, 12); // sigfigs
    h.writeUInt32LE(this.snaplen, 16);
    h.writeUInt32LE(opts.linkType ?? LINKTYPE_ETHERNET, 20);
    this.pos = 24;
  }

  /** Appends one packet; `wireLen` defaults to the frame's length (frames longer than the snap length are cut). */
  write(frame: Uint8Array, timestampUs: number, wireLen = frame.byteLength): void {
    if (this.closed) throw new IdsError('BAD_OPTION', 'PcapWriter.write after close');
    if (!(timestampUs >= 0)) throw new IdsError('BAD_OPTION', `packet timestamp ${timestampUs} µs is not a time`);
    const caplen = Math.min(frame.byteLength, this.snaplen);
    if (this.pos + 16 + caplen > this.buf.byteLength) this.flush();
    if (16 + caplen > this.buf.byteLength) this.buf = Buffer.allocUnsafe(16 + caplen);
    const us = Math.round(timestampUs);
    const sec = Math.floor(us / 1e6);
    const b = this.buf;
    let p = this.pos;
    b.writeUInt32LE(sec, p);
    b.writeUInt32LE(us - sec * 1e6, p + 4);
    b.writeUInt32LE(caplen, p + 8);
    b.writeUInt32LE(Math.max(wireLen, caplen), p + 12);
    p += 16;
    b.set(caplen === frame.byteLength ? frame : frame.subarray(0, caplen), p);
    this.pos = p + caplen;
    this.packets++;
  }

  private flush(): void {
    if (this.pos === 0) return;
    if (this.fd !== null) {
      let off = 0;
      while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    } else {
      // The stream keeps the chunk, so hand it over and start a fresh one.
      this.stream!.write(this.buf.subarray(0, this.pos));
      this.buf = Buffer.allocUnsafe(CHUNK);
    }
    this.pos = 0;
  }

  /** Writes what is buffered and closes the file; a stream is ended and awaited. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    } else {
      const s = this.stream!;
      if (s === (process.stdout as unknown)) return;
      s.end();
      if (!s.writableFinished) await once(s, 'finish');
    }
  }
}

/** A whole pcap in memory (tests and benchmarks): frames with their timestamps, in order. */
export function encodePcap(
  packets: Iterable<{ frame: Uint8Array; timestampUs: number; wireLen?: number }>,
  linkType = LINKTYPE_ETHERNET,
): Uint8Array {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(MAX_CAPLEN, 16);
  header.writeUInt32LE(linkType, 20);
  parts.push(header);
  for (const p of packets) {
    const h = Buffer.alloc(16);
    const us = Math.round(p.timestampUs);
    const sec = Math.floor(us / 1e6);
    h.writeUInt32LE(sec, 0);
    h.writeUInt32LE(us - sec * 1e6, 4);
    h.writeUInt32LE(p.frame.byteLength, 8);
    h.writeUInt32LE(p.wireLen ?? p.frame.byteLength, 12);
    parts.push(h, Buffer.from(p.frame.buffer, p.frame.byteOffset, p.frame.byteLength));
  }
  return new Uint8Array(Buffer.concat(parts));
}
