// Packet parsing for the flow meter: link layer → IP → TCP/UDP/other, into module globals (no allocation per
// packet). The flow key (addresses, ports, protocol) is written to a 40-byte scratch block the meter hashes and
// compares with SIMD; the per-packet values the features need land in the `pk*` globals.

// Link types (pcap LINKTYPE_*).
const LT_NULL: u32 = 0;
const LT_ETHERNET: u32 = 1;
const LT_RAW: u32 = 101;
const LT_LOOP: u32 = 108;
const LT_LINUX_SLL: u32 = 113;
const LT_IPV4: u32 = 228;
const LT_IPV6: u32 = 229;
const LT_LINUX_SLL2: u32 = 276;

export const PARSE_OK: i32 = 1;
export const PARSE_NOT_IP: i32 = 0;
/** IP, but nothing a flow can use (a header cut by the snap length, an IPv6 packet in compat mode). */
export const PARSE_SKIPPED: i32 = -1;

// TCP flag bits as on the wire.
export const F_FIN: u32 = 0x01;
export const F_SYN: u32 = 0x02;
export const F_RST: u32 = 0x04;
export const F_PSH: u32 = 0x08;
export const F_ACK: u32 = 0x10;
export const F_URG: u32 = 0x20;
export const F_ECE: u32 = 0x40;
export const F_CWR: u32 = 0x80;

// Parsed packet (valid after parsePacket returned PARSE_OK).
export let pkSrcPort: u32 = 0;
export let pkDstPort: u32 = 0;
export let pkProto: u32 = 0;
export let pkV6: u32 = 0;
export let pkPayload: f64 = 0;
export let pkHeader: f64 = 0;
export let pkWindow: f64 = -1;
export let pkFlags: u32 = 0;
/** Source and destination addresses, 16 bytes each (IPv4 in the first 4, zeros after). */
export let pkSrcPtr: usize = 0;
export let pkDstPtr: usize = 0;

export function initPacketScratch(): void {
  pkSrcPtr = heap.alloc(32);
  pkDstPtr = pkSrcPtr + 16;
}

@inline function be16(p: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}

/**
 * Parses one captured packet. `compat` reproduces what CICFlowMeter's reader (jnetpcap, IPv4 only by default)
 * extracts: protocols other than TCP/UDP become protocol 0 with ports 0 and no lengths.
 */
export function parsePacket(p: usize, caplen: u32, link: u32, compat: bool): i32 {
  let off: u32 = 0;
  let etype: u32 = 0;
  if (link == LT_ETHERNET) {
    if (caplen < 14) return PARSE_NOT_IP;
    etype = be16(p + 12);
    off = 14;
    // 802.1Q, 802.1ad (QinQ) and the old 0x9100 tag: 4 bytes each, any depth the capture holds.
    while ((etype == 0x8100 || etype == 0x88a8 || etype == 0x9100) && off + 4 <= caplen) {
      etype = be16(p + off + 2);
      off += 4;
    }
  } else if (link == LT_LINUX_SLL) {
    if (caplen < 16) return PARSE_NOT_IP;
    etype = be16(p + 14);
    off = 16;
  } else if (link == LT_LINUX_SLL2) {
    if (caplen < 20) return PARSE_NOT_IP;
    etype = be16(p);
    off = 20;
  } else if (link == LT_RAW || link == LT_IPV4 || link == LT_IPV6) {
    if (caplen < 1) return PARSE_NOT_IP;
    const v = <u32>load<u8>(p) >> 4;
    etype = v == 4 ? 0x0800 : v == 6 ? 0x86dd : 0;
  } else if (link == LT_NULL || link == LT_LOOP) {
    if (caplen < 4) return PARSE_NOT_IP;
    // Address family in host order of the capturing machine: accept both.
    let fam = load<u32>(p);
    if (fam > 0xffff) fam = bswap<u32>(fam);
    etype = fam == 2 ? 0x0800 : fam == 24 || fam == 28 || fam == 30 ? 0x86dd : 0;
    off = 4;
  } else {
    return PARSE_NOT_IP;
  }
  if (etype == 0x0800) return parseIpv4(p + off, caplen - off, compat);
  if (etype == 0x86dd) return compat ? PARSE_SKIPPED : parseIpv6(p + off, caplen - off);
  return PARSE_NOT_IP;
}

function parseIpv4(ip: usize, cap: u32, compat: bool): i32 {
  if (cap < 20 || <u32>load<u8>(ip) >> 4 != 4) return PARSE_SKIPPED;
  const ihl = (<u32>load<u8>(ip) & 15) << 2;
  if (ihl < 20 || ihl > cap) return PARSE_SKIPPED;
  let total = be16(ip + 2);
  if (total == 0) total = cap; // TCP segmentation offload writes 0 for large segments
  if (total < ihl) return PARSE_SKIPPED;
  const fragOffset = be16(ip + 6) & 0x1fff;
  const proto = <u32>load<u8>(ip + 9);
  store<u32>(pkSrcPtr, load<u32>(ip + 12));
  store<u32>(pkSrcPtr, 0, 4);
  store<u64>(pkSrcPtr, 0, 8);
  store<u32>(pkDstPtr, load<u32>(ip + 16));
  store<u32>(pkDstPtr, 0, 4);
  store<u64>(pkDstPtr, 0, 8);
  pkV6 = 0;
  return parseL4(ip + ihl, cap - ihl, total - ihl, proto, fragOffset != 0, compat);
}

function parseIpv6(ip: usize, cap: u32): i32 {
  if (cap < 40 || <u32>load<u8>(ip) >> 4 != 6) return PARSE_SKIPPED;
  let payload = be16(ip + 4);
  let nh = <u32>load<u8>(ip + 6);
  v128.store(pkSrcPtr, v128.load(ip + 8));
  v128.store(pkDstPtr, v128.load(ip + 24));
  pkV6 = 1;
  let off: u32 = 40;
  let fragment = false;
  // Extension headers: hop-by-hop, routing, destination options, AH, fragment (bounded walk).
  for (let i = 0; i < 8; i++) {
    if (nh == 0 || nh == 43 || nh == 60 || nh == 51 || nh == 44) {
      if (off + 8 > cap) return PARSE_SKIPPED;
      const next = <u32>load<u8>(ip + off);
      let len: u32;
      if (nh == 44) {
        len = 8;
        if ((be16(ip + off + 2) >> 3) != 0) fragment = true;
      } else if (nh == 51) len = (<u32>load<u8>(ip + off + 1) + 2) << 2;
      else len = (<u32>load<u8>(ip + off + 1) + 1) << 3;
      off += len;
      payload = payload >= len ? payload - len : 0;
      nh = next;
      if (fragment) break;
    } else break;
  }
  if (off > cap) return PARSE_SKIPPED;
  return parseL4(ip + off, cap - off, payload, nh, fragment, false);
}

function parseL4(l4: usize, cap: u32, ipPayload: u32, proto: u32, laterFragment: bool, compat: bool): i32 {
  pkFlags = 0;
  pkWindow = -1;
  if (!laterFragment && proto == 6) {
    if (cap < 20) return PARSE_SKIPPED;
    const doff = (<u32>load<u8>(l4 + 12) >> 4) << 2;
    pkSrcPort = be16(l4);
    pkDstPort = be16(l4 + 2);
    pkProto = 6;
    pkFlags = <u32>load<u8>(l4 + 13);
    pkWindow = <f64>be16(l4 + 14);
    pkHeader = <f64>doff;
    pkPayload = ipPayload > doff ? <f64>(ipPayload - doff) : 0;
    return PARSE_OK;
  }
  if (!laterFragment && proto == 17) {
    if (cap < 8) return PARSE_SKIPPED;
    pkSrcPort = be16(l4);
    pkDstPort = be16(l4 + 2);
    pkProto = 17;
    pkHeader = 8;
    pkPayload = ipPayload > 8 ? <f64>(ipPayload - 8) : 0;
    return PARSE_OK;
  }
  pkSrcPort = 0;
  pkDstPort = 0;
  if (compat) {
    // CICFlowMeter keeps such packets with every field at its default: protocol 0, no lengths.
    pkProto = 0;
    pkHeader = 0;
    pkPayload = 0;
    return PARSE_OK;
  }
  pkProto = proto;
  if (!laterFragment && (proto == 1 || proto == 58)) {
    pkHeader = 8;
    pkPayload = ipPayload > 8 ? <f64>(ipPayload - 8) : 0;
  } else {
    pkHeader = 0;
    pkPayload = <f64>ipPayload;
  }
  return PARSE_OK;
}
