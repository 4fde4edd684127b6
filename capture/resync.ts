/**
 * Finding the way back into a damaged live capture. After a corrupt record a streaming reader hands the bytes
 * from the bad record on to a Resync, which looks for the next record the format finds plausible
 * (RecordFormat.plausible) and confirms it with the record right after it, so one lucky 16-byte match in packet
 * data does not put the reader on a false track. Memory is fixed: bytes already ruled out are dropped, and the
 * most ever held is two candidate records (2 × RESYNC_SPAN) plus one read chunk.
 */
import type { RecordFormat } from './formats.ts';

export interface Resynced {
  /** The bytes from the confirmed record on (a copy: batches made from it own their bytes). */
  bytes: Uint8Array;
  /** Absolute offset of bytes[0] in the capture. */
  abs: number;
  /** Bytes skipped since the corrupt record began. */
  skipped: number;
}

export class Resync {
  private buf = new Uint8Array(0);
  private len = 0;
  /** Absolute offset of buf[0]. */
  private abs = 0;
  /** Offset of the corrupt record: `skipped` counts from there. */
  private readonly lostAt: number;

  /** `bytes` start at the corrupt record (absolute offset `abs`); the scan starts one byte past it. */
  constructor(private readonly format: RecordFormat, bytes: Uint8Array, abs: number) {
    this.lostAt = abs;
    this.abs = abs + 1;
    this.append(bytes.subarray(1));
  }

  /** Bytes held right now (for tests of the memory bound). */
  get held(): number {
    return this.len;
  }

  /**
   * Adds bytes that follow those already given and looks for the next confirmed record. `final` says no more
   * bytes will come: then a plausible record that ends exactly at the end is taken without a successor.
   */
  push(bytes: Uint8Array, final = false): Resynced | null {
    if (bytes.byteLength > 0) this.append(bytes);
    const view = new DataView(this.buf.buffer, this.buf.byteOffset, this.len);
    const end = this.len;
    let p = 0;
    for (; p < end; p++) {
      const first = this.format.plausible(view, p, end - p);
      if (first < 0) break; // this candidate may still be one: wait for its bytes
      if (first === 0) continue;
      const next = p + first;
      const second = next === end && final ? 1 : this.format.plausible(view, next, end - next);
      if (second < 0) break;
      if (second === 0) continue;
      const found: Resynced = { bytes: this.buf.slice(p, end), abs: this.abs + p, skipped: this.abs + p - this.lostAt };
      this.len = 0;
      return found;
    }
    this.drop(p);
    return null;
  }

  private drop(n: number): void {
    if (n === 0) return;
    this.buf.copyWithin(0, n, this.len);
    this.len -= n;
    this.abs += n;
  }

  private append(src: Uint8Array): void {
    if (this.len + src.byteLength > this.buf.byteLength) {
      const next = new Uint8Array(Math.max(1024, 2 * this.buf.byteLength, this.len + src.byteLength));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(src, this.len);
    this.len += src.byteLength;
  }
}
