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
export const PCAP_HEADER_BYTES = 24;
export const PCAP_RECORD_HEADER_BYTES = 16;

/** The classic pcap global header (magic a1b2c3d4, v2.4, thiszone 0, sigfigs 0) at `b[at..at+24)`. */
export function writePcapHeader(b: Buffer, at = 0, linkType = LINKTYPE_ETHERNET, snaplen = MAX_CAPLEN): void {
  b.writeUInt32LE(0xa1b2c3d4, at);
  b.writeUInt16LE(2, at + 4);
  b.writeUInt16LE(4, at + 6);
  b.writeInt32LE(0, at + 8); // thiszone
  b.writeUInt32LE(0, at + 12); // sigfigs
  b.writeUInt32LE(snaplen, at + 16);
  b.writeUInt32LE(linkType, at + 20);
}

/** A record header at `b[at..at+16)`: the µs timestamp split into seconds and microseconds, then the two lengths. */
export function writePcapRecordHeader(b: Buffer, at: number, timestampUs: number, caplen: number, wireLen: number): void {
  const us = Math.round(timestampUs);
  const sec = Math.floor(us / 1e6);
  b.writeUInt32LE(sec, at);
  b.writeUInt32LE(us - sec * 1e6, at + 4);
  b.writeUInt32LE(caplen, at + 8);
  b.writeUInt32LE(wireLen, at + 12);
}

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
    writePcapHeader(this.buf, 0, opts.linkType ?? LINKTYPE_ETHERNET, this.snaplen);
    this.pos = PCAP_HEADER_BYTES;
  }

  /** Appends one packet; `wireLen` defaults to the frame's length (frames longer than the snap length are cut). */
  write(frame: Uint8Array, timestampUs: number, wireLen = frame.byteLength): void {
    if (this.closed) throw new IdsError('BAD_OPTION', 'PcapWriter.write after close');
    if (!(timestampUs >= 0)) throw new IdsError('BAD_OPTION', `packet timestamp ${timestampUs} µs is not a time`);
    const caplen = Math.min(frame.byteLength, this.snaplen);
    if (this.pos + 16 + caplen > this.buf.byteLength) this.flush();
    if (16 + caplen > this.buf.byteLength) this.buf = Buffer.allocUnsafe(16 + caplen);
    writePcapRecordHeader(this.buf, this.pos, timestampUs, caplen, Math.max(wireLen, caplen));
    const p = this.pos + PCAP_RECORD_HEADER_BYTES;
    this.buf.set(caplen === frame.byteLength ? frame : frame.subarray(0, caplen), p);
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
  const header = Buffer.alloc(PCAP_HEADER_BYTES);
  writePcapHeader(header, 0, linkType);
  parts.push(header);
  for (const p of packets) {
    const h = Buffer.alloc(PCAP_RECORD_HEADER_BYTES);
    writePcapRecordHeader(h, 0, p.timestampUs, p.frame.byteLength, p.wireLen ?? p.frame.byteLength);
    parts.push(h, Buffer.from(p.frame.buffer, p.frame.byteOffset, p.frame.byteLength));
  }
  return new Uint8Array(Buffer.concat(parts));
}
