/**
 * One packet's header fields as numbers, decoded once per packet for every watcher (no strings, no objects per
 * packet: the view is reused). Only what the watchers need: Ethernet MACs, ARP, IPv4 addresses/id/length, TCP
 * ports and flags, UDP ports, ICMP type/code and, for destination-unreachable, the quoted IPv4/UDP-TCP header.
 * IPv6 is recognised and skipped (counted by the caller): the watchers' rules are written for IPv4 LANs.
 */
import type { PacketBatch } from '../../shared/packets.ts';
import { ETH_ARP, ETH_IPV4, linkLayer, newLinkInfo } from '../../capture/decode.ts';

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export { TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG } from '../../capture/frames.ts';

export const KIND_OTHER = 0;
export const KIND_ARP = 1;
export const KIND_IPV4 = 2;

export class PacketView {
  kind = KIND_OTHER;
  /** Capture time, µs. */
  tUs = 0;
  /** Source / destination MAC as 48-bit numbers (-1 without a MAC, e.g. raw IP captures). */
  srcMac = -1;
  dstMac = -1;
  /** 802.1Q VLAN id (0 when untagged): a routed copy on another VLAN is not a relay. */
  vlan = 0;
  // ARP
  arpOp = 0;
  arpSenderMac = 0;
  arpSenderIp = 0;
  arpTargetIp = 0;
  /** ARP body complete and Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4). */
  arpValid = false;
  // IPv4 (addresses as unsigned 32-bit numbers)
  src = 0;
  dst = 0;
  proto = 0;
  ipId = 0;
  ipLen = 0;
  ttl = 0;
  /** First fragment or unfragmented: ports and flags are present. */
  hasL4 = false;
  sport = 0;
  dport = 0;
  flags = 0;
  /** TCP sequence and acknowledgement numbers. */
  seq = 0;
  ack = 0;
  /** Layer-4 payload bytes per the IP total length (not the captured length). */
  payloadLen = 0;
  icmpType = 0;
  icmpCode = 0;
  /** ICMP unreachable / time exceeded: the quoted datagram's protocol, addresses and ports (0 when cut). */
  innerProto = 0;
  innerSrc = 0;
  innerDst = 0;
  innerSport = 0;
  innerDport = 0;

  private readonly li = newLinkInfo();

  /** Decodes packet i of the batch; false when it is not one the watchers read (kind stays KIND_OTHER). */
  read(b: PacketBatch, i: number): boolean {
    const d = b.data;
    const off = b.offsets[i];
    const end = off + b.lengths[i];
    const li = this.li;
    this.kind = KIND_OTHER;
    this.tUs = b.timestampsUs[i];
    if (!linkLayer(d, off, b.lengths[i], b.linkTypes[i], li)) return false;
    this.srcMac = li.srcMac >= 0 ? mac48(d, li.srcMac) : -1;
    this.dstMac = li.dstMac >= 0 ? mac48(d, li.dstMac) : -1;
    this.vlan = li.dstMac >= 0 && li.l3 - off > 14 ? ((d[off + 14] << 8) | d[off + 15]) & 0xfff : 0;
    const p = li.l3;
    if (li.etherType === ETH_ARP) {
      this.kind = KIND_ARP;
      this.arpValid = p + 28 <= end && d[p] === 0 && d[p + 1] === 1 && ((d[p + 2] << 8) | d[p + 3]) === ETH_IPV4 &&
        d[p + 4] === 6 && d[p + 5] === 4;
      if (!this.arpValid) return true;
      this.arpOp = (d[p + 6] << 8) | d[p + 7];
      this.arpSenderMac = mac48(d, p + 8);
      this.arpSenderIp = u32(d, p + 14);
      this.arpTargetIp = u32(d, p + 24);
      return true;
    }
    if (li.etherType !== ETH_IPV4 || p + 20 > end || d[p] >> 4 !== 4) return false;
    const ihl = (d[p] & 15) * 4;
    if (ihl < 20 || p + ihl > end) return false;
    this.kind = KIND_IPV4;
    this.ipLen = (d[p + 2] << 8) | d[p + 3];
    this.ipId = (d[p + 4] << 8) | d[p + 5];
    this.ttl = d[p + 8];
    this.proto = d[p + 9];
    this.src = u32(d, p + 12);
    this.dst = u32(d, p + 16);
    const fragOffset = ((d[p + 6] & 0x1f) << 8) | d[p + 7];
    const l4 = p + ihl;
    this.hasL4 = false;
    this.sport = this.dport = this.flags = this.icmpType = this.icmpCode = this.payloadLen = 0;
    this.innerProto = this.innerSrc = this.innerDst = this.innerSport = this.innerDport = 0;
    if (fragOffset !== 0) return true;
    if (this.proto === PROTO_TCP && l4 + 14 <= end) {
      this.sport = (d[l4] << 8) | d[l4 + 1];
      this.dport = (d[l4 + 2] << 8) | d[l4 + 3];
      this.flags = d[l4 + 13];
      this.seq = u32(d, l4 + 4);
      this.ack = u32(d, l4 + 8);
      this.payloadLen = Math.max(0, this.ipLen - ihl - (d[l4 + 12] >> 4) * 4);
      this.hasL4 = true;
    } else if (this.proto === PROTO_UDP && l4 + 4 <= end) {
      this.sport = (d[l4] << 8) | d[l4 + 1];
      this.dport = (d[l4 + 2] << 8) | d[l4 + 3];
      this.payloadLen = Math.max(0, this.ipLen - ihl - 8);
      this.hasL4 = true;
    } else if (this.proto === PROTO_ICMP && l4 + 2 <= end) {
      this.icmpType = d[l4];
      this.icmpCode = d[l4 + 1];
      this.hasL4 = true;
      // Unreachable (3) and time exceeded (11) quote the offending IPv4 header + 8 bytes after the 8-byte ICMP header.
      const q = l4 + 8;
      if ((this.icmpType === 3 || this.icmpType === 11) && q + 20 <= end && d[q] >> 4 === 4) {
        const qihl = (d[q] & 15) * 4;
        this.innerProto = d[q + 9];
        this.innerSrc = u32(d, q + 12);
        this.innerDst = u32(d, q + 16);
        if (qihl >= 20 && q + qihl + 4 <= end) {
          this.innerSport = (d[q + qihl] << 8) | d[q + qihl + 1];
          this.innerDport = (d[q + qihl + 2] << 8) | d[q + qihl + 3];
        }
      }
    }
    return true;
  }
}

export const u32 = (d: Uint8Array, at: number): number => ((d[at] << 24) | (d[at + 1] << 16) | (d[at + 2] << 8) | d[at + 3]) >>> 0;
const mac48 = (d: Uint8Array, at: number): number => ((d[at] << 8) | d[at + 1]) * 0x100000000 + u32(d, at + 2);

/** IPv4 text → number, without allocating (flow records carry addresses as text). */
export function ipNumber(s: string): number {
  let v = 0;
  let part = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      v = v * 256 + part;
      part = 0;
    } else if (c >= 48 && c <= 57) part = part * 10 + (c - 48);
    else return -1;
  }
  return v * 256 + part;
}

export const ipText = (ip: number): string => `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
export const macText = (m: number): string => {
  const h = m.toString(16).padStart(12, '0');
  return `${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}:${h.slice(10, 12)}`;
};

/** Multicast (224/4), limited broadcast, and "this network" 0/8: no one answers a probe sent there. */
export const isGroupAddress = (ip: number): boolean => ip >>> 28 === 14 || ip === 0xffffffff || ip >>> 24 === 0;
/** A directed broadcast of a /24 or wider LAN (x.y.z.255): treated like a group address. */
export const isBroadcastLike = (ip: number): boolean => isGroupAddress(ip) || (ip & 255) === 255;
/** RFC 1918, link-local, CGNAT and loopback: addresses of a LAN rather than the Internet. */
export const isPrivate = (ip: number): boolean => {
  const a = ip >>> 24;
  const b = (ip >>> 16) & 255;
  return a === 10 || a === 127 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) ||
    (a === 169 && b === 254) || (a === 100 && b >= 64 && b < 128);
};
