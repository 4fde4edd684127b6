/**
 * Record framing for classic pcap and pcapng. A format answers two questions about the bytes at a position:
 * how long is the next record (so the streaming reader knows when it holds a whole one), and what packet, if any,
 * does a whole record hold. Both throw IdsError('BAD_CAPTURE') naming the absolute byte offset on corrupt input.
 */
import { IdsError } from '../shared/errors.ts';

/** pcap's own ceiling on a snapshot length; a larger captured length means a corrupt record, not a big packet. */
export const MAX_CAPLEN = 262144;
/** Non-packet pcapng blocks (name resolution, statistics, secrets) stay well under this. */
export const MAX_BLOCK = 16 * 1024 * 1024;
/**
 * Longest record a resynchronising reader will take as a candidate: a packet of MAX_CAPLEN plus headers and
 * options. Bounds the bytes it holds while it looks for one (larger blocks are not worth resynchronising on).
 */
export const RESYNC_SPAN = MAX_CAPLEN + 4096;

/** Where the packet of a record lies and what it is. Reused for every record (no per-packet objects). */
export interface PacketSlot {
  offset: number;
  caplen: number;
  wirelen: number;
  timestampUs: number;
  linkType: number;
}

export interface RecordFormat {
  /** Bytes needed before `recordLength` can answer. */
  readonly headerBytes: number;
  /** Total length of the record at `pos` (header included). */
  recordLength(view: DataView, pos: number, abs: number): number;
  /** Decode the record; true when it holds a packet (then `slot` is filled). */
  record(view: DataView, pos: number, len: number, abs: number, slot: PacketSlot): boolean;
  /** True once the file/section header is read: only then can a lost reader look for the next record. */
  readonly ready: boolean;
  /**
   * For a reader that lost its place: the length of a record that plausibly starts at `pos` (judged by what the
   * format has seen so far), 0 when it does not, -1 when `avail` bytes are too few to tell. Never throws.
   */
  plausible(view: DataView, pos: number, avail: number): number;
}

const bad = (abs: number, what: string) => new IdsError('BAD_CAPTURE', `corrupt capture at byte offset ${abs}: ${what}`);

/**
 * Old libpcap and OpenBSD wrote raw IP captures with their DLT values (12, 14) instead of LINKTYPE_RAW (101);
 * readers downstream only need to know LINKTYPE_RAW.
 */
export function normalizeLinkType(lt: number): number {
  return lt === 12 || lt === 14 ? 101 : lt;
}

/** Converts a (high, low) 64-bit tick count to whole µs since the epoch without losing precision past 2^53. */
export type TickToUs = (hi: number, lo: number) => number;

const TWO32 = 4294967296;

/** A converter for a pcapng if_tsresol byte (default 6 = microseconds) plus if_tsoffset seconds. */
export function tickConverter(tsresol: number, offsetSec = 0): TickToUs {
  const base = offsetSec * 1e6;
  if ((tsresol & 0x80) === 0) {
    const k = tsresol;
    if (k === 6) return (hi, lo) => base + hi * TWO32 + lo;
    if (k < 6) {
      const m = 10 ** (6 - k);
      return (hi, lo) => base + (hi * TWO32 + lo) * m;
    }
    // Ticks finer than 1 µs: divide hi·2^32 + lo by d with the quotient split so every product stays exact.
    const d = 10 ** (k - 6);
    const q = Math.floor(TWO32 / d);
    const r = TWO32 - q * d;
    return (hi, lo) => base + hi * q + Math.floor((hi * r + lo) / d);
  }
  const p = tsresol & 0x7f;
  const unit = 2 ** p;
  if (p <= 32) {
    return (hi, lo) => {
      // seconds = ticks >> p, fraction = ticks & (2^p - 1), done on the two 32-bit halves.
      const sec = hi * (TWO32 / unit) + Math.floor(lo / unit);
      const frac = lo % unit;
      return base + sec * 1e6 + Math.floor((frac * 1e6) / unit);
    };
  }
  return (hi, lo) => base + Math.floor(((hi * TWO32 + lo) / unit) * 1e6);
}

/** Classic pcap: a 24-byte file header then 16-byte record headers. */
export class PcapFormat implements RecordFormat {
  readonly headerBytes = 16;
  private headerDone = false;
  private le = true;
  private nano = false;
  private linkType = 1;
  private snaplen = MAX_CAPLEN;
  /** Seconds of the last packet, 0 before the first: a resynchronising reader wants timestamps near it. */
  private lastSec = 0;

  get ready(): boolean {
    return this.headerDone;
  }

  /** Reads the byte order and timestamp unit from the magic at `pos`; null when it is not classic pcap. */
  static detect(view: DataView, pos: number): PcapFormat | null {
    const m = view.getUint32(pos, false);
    const f = new PcapFormat();
    if (m === 0xd4c3b2a1) [f.le, f.nano] = [true, false];
    else if (m === 0xa1b2c3d4) [f.le, f.nano] = [false, false];
    else if (m === 0x4d3cb2a1) [f.le, f.nano] = [true, true];
    else if (m === 0xa1b23c4d) [f.le, f.nano] = [false, true];
    else return null;
    return f;
  }

  recordLength(view: DataView, pos: number, abs: number): number {
    if (!this.headerDone) return 24;
    const caplen = view.getUint32(pos + 8, this.le);
    if (caplen > MAX_CAPLEN) throw bad(abs, `packet record claims ${caplen} captured bytes (limit ${MAX_CAPLEN})`);
    return 16 + caplen;
  }

  record(view: DataView, pos: number, len: number, abs: number, slot: PacketSlot): boolean {
    if (!this.headerDone) {
      const major = view.getUint16(pos + 4, this.le);
      if (major !== 2) throw bad(abs + 4, `pcap version ${major} (expected 2)`);
      this.headerDone = true;
      // The upper 4 bits of the link-type word may carry FCS information; the link type is the low 16.
      this.linkType = normalizeLinkType(view.getUint32(pos + 20, this.le) & 0xffff);
      const snaplen = view.getUint32(pos + 16, this.le);
      this.snaplen = snaplen > 0 && snaplen < MAX_CAPLEN ? snaplen : MAX_CAPLEN;
      return false;
    }
    const sec = (this.lastSec = view.getUint32(pos, this.le));
    const frac = view.getUint32(pos + 4, this.le);
    slot.offset = pos + 16;
    slot.caplen = len - 16;
    slot.wirelen = view.getUint32(pos + 12, this.le);
    slot.timestampUs = sec * 1e6 + (this.nano ? Math.floor(frac / 1000) : frac);
    slot.linkType = this.linkType;
    return true;
  }

  /**
   * A record header is plausible when its timestamp lies within 10 minutes before to a day after the last good
   * packet, its fraction is below one second, 0 < caplen ≤ snaplen and origlen ≥ caplen (a random 16 bytes
   * pass all of that about once in 10^12 tries once a packet has been seen).
   */
  plausible(view: DataView, pos: number, avail: number): number {
    if (avail < 16) return -1;
    const le = this.le;
    const sec = view.getUint32(pos, le);
    const frac = view.getUint32(pos + 4, le);
    const caplen = view.getUint32(pos + 8, le);
    const wirelen = view.getUint32(pos + 12, le);
    if (frac >= (this.nano ? 1e9 : 1e6)) return 0;
    if (caplen === 0 || caplen > this.snaplen || wirelen < caplen || wirelen > 4 * MAX_CAPLEN) return 0;
    if (this.lastSec > 0 && (sec < this.lastSec - 600 || sec > this.lastSec + 86400)) return 0;
    return 16 + caplen;
  }
}

interface Iface {
  linkType: number;
  snaplen: number;
  toUs: TickToUs;
}

const SHB = 0x0a0d0d0a;
const IDB = 1;
const OPB = 2;
const SPB = 3;
const EPB = 6;
/** Block types a resynchronising reader accepts: the packet and interface blocks, name resolution (4),
 * statistics (5), systemd journal (9), secrets (10) and the two custom types. */
const KNOWN_BLOCKS = new Set([SHB, IDB, OPB, SPB, 4, 5, EPB, 9, 10, 0x00000bad, 0x40000bad]);

/** pcapng: blocks of (type, total length, body, total length); each Section Header Block sets the byte order. */
export class PcapngFormat implements RecordFormat {
  readonly headerBytes = 12;
  private le = true;
  private ifaces: Iface[] = [];
  /** Simple Packet Blocks carry no timestamp: they take the last one seen. */
  private lastUs = 0;
  private sections = 0;

  get ready(): boolean {
    return this.sections > 0;
  }

  static detect(view: DataView, pos: number): PcapngFormat | null {
    return view.getUint32(pos, false) === SHB ? new PcapngFormat() : null;
  }

  recordLength(view: DataView, pos: number, abs: number): number {
    const type = view.getUint32(pos, true);
    if (type === SHB) {
      const magic = view.getUint32(pos + 8, true);
      if (magic === 0x1a2b3c4d) this.le = true;
      else if (magic === 0x4d3c2b1a) this.le = false;
      else throw bad(abs + 8, `section header byte-order magic 0x${magic.toString(16)}`);
    }
    const len = view.getUint32(pos + 4, this.le);
    if (len < 12) throw bad(abs + 4, `block length ${len} (minimum 12)`);
    if (len > MAX_BLOCK) throw bad(abs + 4, `block length ${len} (limit ${MAX_BLOCK})`);
    return len;
  }

  record(view: DataView, pos: number, len: number, abs: number, slot: PacketSlot): boolean {
    const le = this.le;
    const type = view.getUint32(pos, le);
    if (view.getUint32(pos + len - 4, le) !== len) {
      throw bad(abs + len - 4, `block trailer length ${view.getUint32(pos + len - 4, le)} != header length ${len}`);
    }
    switch (type) {
      case SHB:
        if (len < 28) throw bad(abs, `section header block of ${len} bytes`);
        this.ifaces = [];
        this.sections++;
        return false;
      case IDB:
        if (len < 20) throw bad(abs, `interface description block of ${len} bytes`);
        this.ifaces.push(this.readIdb(view, pos, len));
        return false;
      case EPB:
      case OPB: {
        if (len < 32) throw bad(abs, `packet block of ${len} bytes`);
        const ifId = type === EPB ? view.getUint32(pos + 8, le) : view.getUint16(pos + 8, le);
        const iface = this.ifaces[ifId];
        if (!iface) throw bad(abs + 8, `packet on interface ${ifId}, but ${this.ifaces.length} interface(s) described`);
        const caplen = view.getUint32(pos + 20, le);
        if (caplen > MAX_CAPLEN || caplen > len - 32) throw bad(abs + 20, `captured length ${caplen} in a ${len}-byte block`);
        slot.offset = pos + 28;
        slot.caplen = caplen;
        slot.wirelen = view.getUint32(pos + 24, le);
        slot.timestampUs = this.lastUs = iface.toUs(view.getUint32(pos + 12, le), view.getUint32(pos + 16, le));
        slot.linkType = iface.linkType;
        return true;
      }
      case SPB: {
        if (len < 16) throw bad(abs, `simple packet block of ${len} bytes`);
        const iface = this.ifaces[0];
        if (!iface) throw bad(abs, 'simple packet block before any interface description');
        const wirelen = view.getUint32(pos + 8, le);
        let caplen = Math.min(wirelen, len - 16);
        if (iface.snaplen > 0) caplen = Math.min(caplen, iface.snaplen);
        slot.offset = pos + 12;
        slot.caplen = caplen;
        slot.wirelen = wirelen;
        slot.timestampUs = this.lastUs;
        slot.linkType = iface.linkType;
        return true;
      }
      default:
        return false; // name resolution, statistics, custom, secrets: not packets
    }
  }

  /**
   * A block is plausible when its type is one pcapng defines, its length is a multiple of 4 within
   * [12, RESYNC_SPAN], its trailing length matches and, for a packet block, its interface exists and its
   * captured length fits. A new section header (either byte order) is plausible too.
   */
  plausible(view: DataView, pos: number, avail: number): number {
    if (avail < 12) return -1;
    let le = this.le;
    if (view.getUint32(pos, true) === SHB) {
      const magic = view.getUint32(pos + 8, true);
      if (magic === 0x1a2b3c4d) le = true;
      else if (magic === 0x4d3c2b1a) le = false;
      else return 0;
    }
    const type = view.getUint32(pos, le);
    if (!KNOWN_BLOCKS.has(type)) return 0;
    const len = view.getUint32(pos + 4, le);
    if (len < 12 || len % 4 !== 0 || len > RESYNC_SPAN) return 0;
    if (avail < len) return -1;
    if (view.getUint32(pos + len - 4, le) !== len) return 0;
    if (type === EPB || type === OPB) {
      if (len < 32) return 0;
      const ifId = type === EPB ? view.getUint32(pos + 8, le) : view.getUint16(pos + 8, le);
      const caplen = view.getUint32(pos + 20, le);
      if (ifId >= this.ifaces.length || caplen > len - 32) return 0;
    }
    if (type === SPB && (len < 16 || this.ifaces.length === 0)) return 0;
    return len;
  }

  private readIdb(view: DataView, pos: number, len: number): Iface {
    const le = this.le;
    const linkType = normalizeLinkType(view.getUint16(pos + 8, le));
    const snaplen = view.getUint32(pos + 12, le);
    let tsresol = 6;
    let offsetSec = 0;
    // Options: (code u16, length u16, value padded to 4); opt_endofopt (0) ends them.
    let p = pos + 16;
    const end = pos + len - 4;
    while (p + 4 <= end) {
      const code = view.getUint16(p, le);
      const olen = view.getUint16(p + 2, le);
      if (code === 0) break;
      if (p + 4 + olen > end) break; // an overlong option: keep what we have rather than reject the interface
      if (code === 9 && olen >= 1) tsresol = view.getUint8(p + 4);
      if (code === 14 && olen >= 8) {
        offsetSec = view.getUint32(p + 4 + (le ? 4 : 0), le) * TWO32 + view.getUint32(p + 4 + (le ? 0 : 4), le);
      }
      p += 4 + ((olen + 3) & ~3);
    }
    return { linkType, snaplen, toUs: tickConverter(tsresol, offsetSec) };
  }
}

/** Picks the format from the first 4 bytes; throws BAD_CAPTURE for anything else. */
export function detectFormat(view: DataView, pos: number, abs: number): RecordFormat {
  const f = PcapFormat.detect(view, pos) ?? PcapngFormat.detect(view, pos);
  if (!f) {
    const magic = view.getUint32(pos, false).toString(16).padStart(8, '0');
    throw bad(abs, `magic 0x${magic} is neither pcap nor pcapng`);
  }
  return f;
}
