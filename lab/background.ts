/**
 * Benign background: the real IoT captures in ../shared/data/pcaps/benign/, re-timed to the lab's clock and
 * re-addressed into the lab network. Private IPv4 addresses (10/8, 172.16/12, 192.168/16, 169.254/16) move to
 * 192.168.N.x keeping the last octet (so a capture's gateway .1 becomes the lab gateway): the capture's first
 * private /24 becomes the lab subnet 192.168.50, a second one (a device's own set-up AP, link-local) 192.168.51,
 * and so on, so two subnets' .1 never collide. A replica k > 0 shifts the host part so a second pass looks like
 * other devices. Public addresses, MACs, IPv6 and timing between
 * packets stay as captured. Checksums are updated incrementally (RFC 1624), so a packet whose checksums were valid
 * stays valid and a snap-length-cut packet is still consistent.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readCapture } from '../capture/reader.ts';
import { ETH_ARP, ETH_IPV4, internetChecksum, linkLayer, newLinkInfo, pseudoHeaderSum } from '../capture/decode.ts';
import { LINKTYPE_ETHERNET } from '../shared/packets.ts';
import type { Sink } from './wire.ts';

export function listCaptures(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? listCaptures(p) : /\.pcap(ng)?$/.test(n) ? [p] : [];
    });
}

const isPrivate = (a: number, b: number) =>
  a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 169 && b === 254);

/** Adds the ones'-complement difference of one 16-bit word change to the checksum at `at` (RFC 1624 eq. 3). */
function adjust(f: Uint8Array, at: number, oldWord: number, newWord: number): void {
  let s = (~((f[at] << 8) | f[at + 1]) & 0xffff) + (~oldWord & 0xffff) + newWord;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  f[at] = c >> 8;
  f[at + 1] = c & 255;
}

/** Maps one capture's private addresses into the lab (state: which source /24 became which lab /24). */
export class Readdresser {
  private readonly subnets = new Map<number, number>();
  private readonly li = newLinkInfo();
  constructor(private readonly replica = 0) {}

  /** Rewrites the 4-byte address at `p` in place; fixes the checksums at `sums` (offsets, -1 = none). */
  private address(f: Uint8Array, p: number, sums: number[]): void {
    if (!isPrivate(f[p], f[p + 1])) return;
    const key = (f[p] << 16) | (f[p + 1] << 8) | f[p + 2];
    let third = this.subnets.get(key);
    if (third === undefined) {
      third = 50 + (this.subnets.size % 200);
      this.subnets.set(key, third);
    }
    const last = f[p + 3];
    const host = this.replica === 0 || last === 1 || last === 255 ? last : ((last - 2 + 37 * this.replica) % 253) + 2;
    const old0 = (f[p] << 8) | f[p + 1];
    const old1 = (f[p + 2] << 8) | f[p + 3];
    f[p] = 192;
    f[p + 1] = 168;
    f[p + 2] = third;
    f[p + 3] = host;
    for (const at of sums) {
      if (at < 0) continue;
      adjust(f, at, old0, (192 << 8) | 168);
      adjust(f, at, old1, (third << 8) | host);
    }
  }

  /** Re-addresses one Ethernet frame in place. */
  frame(f: Uint8Array): void {
    const li = this.li;
    if (!linkLayer(f, 0, f.length, LINKTYPE_ETHERNET, li)) return;
    const p = li.l3;
    if (li.etherType === ETH_ARP && p + 28 <= f.length) {
      this.address(f, p + 14, []);
      this.address(f, p + 24, []);
      return;
    }
    if (li.etherType !== ETH_IPV4 || p + 20 > f.length || f[p] >> 4 !== 4) return;
    const ihl = (f[p] & 15) * 4;
    const proto = f[p + 9];
    const firstFragment = (((f[p + 6] << 8) | f[p + 7]) & 0x1fff) === 0;
    const l4 = p + ihl;
    let l4sum = -1;
    if (firstFragment && proto === 6 && l4 + 18 <= f.length) l4sum = l4 + 16;
    if (firstFragment && proto === 17 && l4 + 8 <= f.length && (f[l4 + 6] | f[l4 + 7]) !== 0) l4sum = l4 + 6;
    this.address(f, p + 12, [p + 10, l4sum]);
    this.address(f, p + 16, [p + 10, l4sum]);
    // A whole packet gets fresh checksums: captures taken on the sending host carry the zeros or garbage that
    // checksum offload leaves (2,309 such packets in the benign set); a generated corpus should not.
    const total = (f[p + 2] << 8) | f[p + 3];
    if (p + total > f.length || total < ihl) return;
    f[p + 10] = f[p + 11] = 0;
    const h = internetChecksum(f, p, p + ihl);
    f[p + 10] = h >> 8;
    f[p + 11] = h & 255;
    if (l4sum < 0 || (((f[p + 6] << 8) | f[p + 7]) & 0x2000) !== 0) return; // more fragments follow: leave it
    f[l4sum] = f[l4sum + 1] = 0;
    let c = internetChecksum(f, l4, p + total, pseudoHeaderSum(f, p, proto, p + total - l4));
    if (c === 0 && proto === 17) c = 0xffff;
    f[l4sum] = c >> 8;
    f[l4sum + 1] = c & 255;
  }
}

/**
 * Replays one benign capture into `sink`, its first packet at `startUs`; returns the last packet's time.
 * Packets on other link types than Ethernet are skipped (counted in the result).
 */
export async function replayCapture(path: string, sink: Sink, startUs: number, replica: number): Promise<{ endUs: number; packets: number; skipped: number }> {
  let first = -1;
  let endUs = startUs;
  let packets = 0;
  let skipped = 0;
  const readdress = new Readdresser(replica);
  for await (const b of readCapture(path)) {
    for (let i = 0; i < b.count; i++) {
      if (b.linkTypes[i] !== LINKTYPE_ETHERNET) {
        skipped++;
        continue;
      }
      const ts = b.timestampsUs[i];
      if (first < 0) first = ts;
      const f = b.data.slice(b.offsets[i], b.offsets[i] + b.lengths[i]);
      readdress.frame(f);
      // Captures that go back in time (merged files) are clamped so the lab's clock never runs backwards.
      endUs = Math.max(endUs, startUs + Math.max(0, ts - first));
      sink.push(endUs, f, b.wireLengths[i]);
      packets++;
    }
  }
  return { endUs, packets, skipped };
}
