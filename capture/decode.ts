/**
 * Just enough link- and network-layer decoding for the ARP watcher, the lab and tests: where the layer-3
 * header starts (Ethernet with 802.1Q/802.1ad tags, Linux SLL, raw IP), address formatting, and checksums.
 */
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW } from '../shared/packets.ts';

export const ETH_IPV4 = 0x0800;
export const ETH_ARP = 0x0806;
export const ETH_IPV6 = 0x86dd;

/** Result of `linkLayer`, reused between calls. */
export interface LinkInfo {
  etherType: number;
  /** Offset of the layer-3 header in the data array. */
  l3: number;
  /** Offset of the 6-byte source MAC (-1 when the link has none) and destination MAC (-1 likewise). */
  srcMac: number;
  dstMac: number;
}

/**
 * Fills `out` for the packet at data[off, off+len) of the given link type; false when the link header is
 * cut short or the link type is not one we read.
 */
export function linkLayer(data: Uint8Array, off: number, len: number, linkType: number, out: LinkInfo): boolean {
  const end = off + len;
  if (linkType === LINKTYPE_ETHERNET) {
    if (len < 14) return false;
    out.dstMac = off;
    out.srcMac = off + 6;
    let p = off + 12;
    let type = (data[p] << 8) | data[p + 1];
    // Up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, old QinQ 0x9100).
    for (let i = 0; i < 2 && (type === 0x8100 || type === 0x88a8 || type === 0x9100); i++) {
      p += 4;
      if (p + 2 > end) return false;
      type = (data[p] << 8) | data[p + 1];
    }
    out.etherType = type;
    out.l3 = p + 2;
    return true;
  }
  if (linkType === LINKTYPE_LINUX_SLL) {
    if (len < 16) return false;
    out.dstMac = -1;
    // The SLL address field holds the sender's link-layer address when its length is 6.
    out.srcMac = ((data[off + 4] << 8) | data[off + 5]) === 6 ? off + 6 : -1;
    out.etherType = (data[off + 14] << 8) | data[off + 15];
    out.l3 = off + 16;
    return true;
  }
  if (linkType === LINKTYPE_RAW) {
    if (len < 1) return false;
    out.srcMac = out.dstMac = -1;
    out.etherType = data[off] >> 4 === 6 ? ETH_IPV6 : ETH_IPV4;
    out.l3 = off;
    return true;
  }
  return false;
}

export const newLinkInfo = (): LinkInfo => ({ etherType: 0, l3: 0, srcMac: -1, dstMac: -1 });

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function macString(data: Uint8Array, off: number): string {
  return `${HEX[data[off]]}:${HEX[data[off + 1]]}:${HEX[data[off + 2]]}:${HEX[data[off + 3]]}:${HEX[data[off + 4]]}:${HEX[data[off + 5]]}`;
}

export function ipv4String(data: Uint8Array, off: number): string {
  return `${data[off]}.${data[off + 1]}.${data[off + 2]}.${data[off + 3]}`;
}

/** Ones'-complement sum of data[start, end) folded to 16 bits, added to `initial` (not complemented). */
export function onesSum(data: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  let i = start;
  for (; i + 1 < end; i += 2) s += (data[i] << 8) | data[i + 1];
  if (i < end) s += data[i] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The Internet checksum (RFC 1071) of data[start, end) with an initial partial sum. */
export function internetChecksum(data: Uint8Array, start: number, end: number, initial = 0): number {
  return ~onesSum(data, start, end, initial) & 0xffff;
}

/** Partial sum of the IPv4 or IPv6 pseudo-header for a layer-4 segment of `l4len` bytes. */
export function pseudoHeaderSum(data: Uint8Array, l3: number, proto: number, l4len: number): number {
  const v6 = data[l3] >> 4 === 6;
  const s = v6 ? onesSum(data, l3 + 8, l3 + 40) : onesSum(data, l3 + 12, l3 + 20);
  return s + proto + (l4len >>> 16) + (l4len & 0xffff);
}

export interface ChecksumReport {
  /** IPv4 header checksum verifies (true for IPv6, which has none). */
  ip: boolean;
  /** TCP/UDP/ICMP checksum verifies; null when the frame carries none of them. */
  l4: boolean | null;
}

/** Verifies the checksums of an Ethernet frame (tests, and the lab's self-check). */
export function verifyChecksums(frame: Uint8Array, linkType = LINKTYPE_ETHERNET): ChecksumReport {
  const li = newLinkInfo();
  if (!linkLayer(frame, 0, frame.byteLength, linkType, li)) return { ip: false, l4: null };
  const l3 = li.l3;
  let proto: number;
  let l4: number;
  let l4end: number;
  let ip = true;
  if (li.etherType === ETH_IPV4) {
    const ihl = (frame[l3] & 15) * 4;
    ip = internetChecksum(frame, l3, l3 + ihl) === 0;
    proto = frame[l3 + 9];
    l4 = l3 + ihl;
    l4end = l3 + ((frame[l3 + 2] << 8) | frame[l3 + 3]);
  } else if (li.etherType === ETH_IPV6) {
    proto = frame[l3 + 6];
    l4 = l3 + 40;
    l4end = l4 + ((frame[l3 + 4] << 8) | frame[l3 + 5]);
  } else {
    return { ip: true, l4: null };
  }
  if (l4end > frame.byteLength) return { ip, l4: false };
  if (proto === 6 || proto === 17 || proto === 58) {
    const sum = internetChecksum(frame, l4, l4end, pseudoHeaderSum(frame, l3, proto, l4end - l4));
    return { ip, l4: sum === 0 };
  }
  if (proto === 1) return { ip, l4: internetChecksum(frame, l4, l4end) === 0 };
  return { ip, l4: null };
}
