/**
 * Frame builders for generated traffic: Ethernet + ARP / IPv4 / IPv6 + TCP / UDP / ICMP, with valid IPv4
 * header checksums and TCP/UDP/ICMPv6 pseudo-header checksums. Addresses are bytes (4 or 16 for IP, 6 for MAC);
 * `ip()` and `mac()` parse the text forms once, so hot loops pass bytes.
 */
import { IdsError } from '../shared/errors.ts';
import { ETH_ARP, ETH_IPV4, ETH_IPV6, internetChecksum, pseudoHeaderSum } from './decode.ts';

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

/** Ethernet frames shorter than this (without FCS) are padded on the wire. */
const MIN_FRAME = 60;

export function mac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new IdsError('BAD_OPTION', `not a MAC address: "${text}"`);
  }
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

/** IPv4 dotted quad or IPv6 text (with :: compression) to bytes. */
export function ip(text: string): Uint8Array {
  if (!text.includes(':')) {
    const parts = text.split('.');
    const b = parts.map(Number);
    if (parts.length !== 4 || b.some((x, i) => !/^\d{1,3}$/.test(parts[i]) || x > 255)) {
      throw new IdsError('BAD_OPTION', `not an IPv4 address: "${text}"`);
    }
    return Uint8Array.from(b);
  }
  const [head, tail, extra] = text.split('::');
  if (extra !== undefined) throw new IdsError('BAD_OPTION', `not an IPv6 address: "${text}"`);
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) {
    throw new IdsError('BAD_OPTION', `not an IPv6 address: "${text}"`);
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 255;
  });
  return out;
}

export const ipv4FromInt = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
export const ipv4ToInt = (b: Uint8Array): number => ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;

/** Link and network layer of a generated packet. */
export interface Hop {
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  src: Uint8Array;
  dst: Uint8Array;
  /** Default 64. */
  ttl?: number;
  /** IPv4 identification (default 0); IPv6 ignores it. */
  ipId?: number;
  /** IPv4: set the don't-fragment bit (default true, as Linux does for TCP). */
  df?: boolean;
}

export interface TcpSegment {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** Already-encoded TCP options; padded to 4 bytes here. */
  options?: Uint8Array;
  payload?: Uint8Array;
}

export interface UdpDatagram {
  sport: number;
  dport: number;
  payload?: Uint8Array;
}

export interface IcmpMessage {
  type: number;
  code: number;
  /** The 4 bytes after the checksum (echo: identifier << 16 | sequence). */
  rest: number;
  payload?: Uint8Array;
}

const EMPTY = new Uint8Array(0);

function put16(b: Uint8Array, p: number, v: number): void {
  b[p] = (v >>> 8) & 255;
  b[p + 1] = v & 255;
}
function put32(b: Uint8Array, p: number, v: number): void {
  b[p] = (v >>> 24) & 255;
  b[p + 1] = (v >>> 16) & 255;
  b[p + 2] = (v >>> 8) & 255;
  b[p + 3] = v & 255;
}

/** Allocates the frame, writes Ethernet + IP headers and returns [frame, l3 offset, l4 offset]. */
function ipFrame(hop: Hop, proto: number, l4len: number): [Uint8Array, number, number] {
  const v6 = hop.src.length === 16;
  if (v6 !== (hop.dst.length === 16)) throw new IdsError('BAD_OPTION', 'source and destination IP versions differ');
  const l3len = (v6 ? 40 : 20) + l4len;
  const f = new Uint8Array(Math.max(MIN_FRAME, 14 + l3len));
  f.set(hop.dstMac, 0);
  f.set(hop.srcMac, 6);
  put16(f, 12, v6 ? ETH_IPV6 : ETH_IPV4);
  const l3 = 14;
  if (v6) {
    f[l3] = 0x60;
    put16(f, l3 + 4, l4len);
    f[l3 + 6] = proto;
    f[l3 + 7] = hop.ttl ?? 64;
    f.set(hop.src, l3 + 8);
    f.set(hop.dst, l3 + 24);
    return [f, l3, l3 + 40];
  }
  f[l3] = 0x45;
  put16(f, l3 + 2, l3len);
  put16(f, l3 + 4, hop.ipId ?? 0);
  if (hop.df ?? true) f[l3 + 6] = 0x40;
  f[l3 + 8] = hop.ttl ?? 64;
  f[l3 + 9] = proto;
  f.set(hop.src, l3 + 12);
  f.set(hop.dst, l3 + 16);
  put16(f, l3 + 10, internetChecksum(f, l3, l3 + 20));
  return [f, l3, l3 + 20];
}

function l4Checksum(f: Uint8Array, l3: number, l4: number, l4len: number, proto: number, at: number): void {
  let c = internetChecksum(f, l4, l4 + l4len, pseudoHeaderSum(f, l3, proto, l4len));
  if (c === 0 && proto === 17) c = 0xffff; // UDP: 0 means "no checksum"
  put16(f, at, c);
}

export function tcpFrame(hop: Hop, seg: TcpSegment): Uint8Array {
  const opts = seg.options ?? EMPTY;
  const optLen = (opts.length + 3) & ~3;
  const payload = seg.payload ?? EMPTY;
  const hlen = 20 + optLen;
  const l4len = hlen + payload.length;
  const [f, l3, l4] = ipFrame(hop, 6, l4len);
  put16(f, l4, seg.sport);
  put16(f, l4 + 2, seg.dport);
  put32(f, l4 + 4, seg.seq);
  put32(f, l4 + 8, seg.ack);
  f[l4 + 12] = (hlen / 4) << 4;
  f[l4 + 13] = seg.flags;
  put16(f, l4 + 14, seg.window);
  f.set(opts, l4 + 20);
  f.set(payload, l4 + hlen);
  l4Checksum(f, l3, l4, l4len, 6, l4 + 16);
  return f;
}

export function udpFrame(hop: Hop, d: UdpDatagram): Uint8Array {
  const payload = d.payload ?? EMPTY;
  const l4len = 8 + payload.length;
  const [f, l3, l4] = ipFrame({ df: false, ...hop }, 17, l4len);
  put16(f, l4, d.sport);
  put16(f, l4 + 2, d.dport);
  put16(f, l4 + 4, l4len);
  f.set(payload, l4 + 8);
  l4Checksum(f, l3, l4, l4len, 17, l4 + 6);
  return f;
}

/** ICMP over IPv4, ICMPv6 (with its pseudo-header checksum) over IPv6. */
export function icmpFrame(hop: Hop, m: IcmpMessage): Uint8Array {
  const payload = m.payload ?? EMPTY;
  const v6 = hop.src.length === 16;
  const proto = v6 ? 58 : 1;
  const l4len = 8 + payload.length;
  const [f, l3, l4] = ipFrame({ df: false, ...hop }, proto, l4len);
  f[l4] = m.type;
  f[l4 + 1] = m.code;
  put32(f, l4 + 4, m.rest);
  f.set(payload, l4 + 8);
  if (v6) l4Checksum(f, l3, l4, l4len, proto, l4 + 2);
  else put16(f, l4 + 2, internetChecksum(f, l4, l4 + l4len));
  return f;
}

/** The bytes an ICMP error quotes: the offending IP header plus the first 8 bytes of its payload. */
export function quoteForIcmpError(frame: Uint8Array): Uint8Array {
  const ihl = (frame[14] & 15) * 4;
  return frame.slice(14, 14 + ihl + 8);
}

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
const BROADCAST = new Uint8Array([255, 255, 255, 255, 255, 255]);
const ZERO_MAC = new Uint8Array(6);

export interface ArpSpec {
  op: number;
  senderMac: Uint8Array;
  senderIp: Uint8Array;
  /** Zero for requests by default. */
  targetMac?: Uint8Array;
  targetIp: Uint8Array;
  /** Ethernet destination: broadcast for requests, the target MAC for replies, unless given. */
  ethDst?: Uint8Array;
}

export function arpFrame(a: ArpSpec): Uint8Array {
  const f = new Uint8Array(MIN_FRAME);
  const targetMac = a.targetMac ?? ZERO_MAC;
  f.set(a.ethDst ?? (a.op === ARP_REQUEST ? BROADCAST : targetMac), 0);
  f.set(a.senderMac, 6);
  put16(f, 12, ETH_ARP);
  put16(f, 14, 1); // Ethernet
  put16(f, 16, ETH_IPV4);
  f[18] = 6;
  f[19] = 4;
  put16(f, 20, a.op);
  f.set(a.senderMac, 22);
  f.set(a.senderIp, 28);
  f.set(targetMac, 32);
  f.set(a.targetIp, 38);
  return f;
}

/** TCP options as a SYN from Linux carries them: MSS, SACK permitted, timestamps, NOP, window scale. */
export function linuxSynOptions(tsVal: number, mss = 1460, wscale = 7): Uint8Array {
  const o = new Uint8Array(20);
  o[0] = 2;
  o[1] = 4;
  put16(o, 2, mss);
  o[4] = 4;
  o[5] = 2;
  o[6] = 8;
  o[7] = 10;
  put32(o, 8, tsVal);
  // o[12..15] echo 0
  o[16] = 1;
  o[17] = 3;
  o[18] = 3;
  o[19] = wscale;
  return o;
}

/** MSS only: what raw-socket tools (Mirai's scanner has none; hping3 none; nmap MSS 1460) put in a SYN. */
export function mssOption(mss = 1460): Uint8Array {
  return Uint8Array.of(2, 4, mss >> 8, mss & 255);
}
