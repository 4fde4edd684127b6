/**
 * Relay watcher: the MITM itself, seen on the wire. A host that poisons ARP caches and forwards what it receives
 * puts every relayed IP packet on the segment twice: first addressed to its MAC, then sent again from its MAC.
 * The same IP packet (IP id, addresses, total length) seen twice, the second time from the MAC the first copy was
 * sent to, on the same VLAN, within `maxDelayMs`, is a relay. A router between two segments does this only across
 * VLANs (the copies carry different tags) or ports a single capture does not see both of.
 *
 * Finding (class MITM ARP Spoofing, role victim: the relayed host's flows are upgraded): `arp-relay` when one MAC
 * relays `relays` or more packets within `windowMs`. Default 3 in 10 s: an arpspoof/ettercap relay forwards every
 * packet of the victim, while an accidental duplicate pair (a mirror port doubling a frame keeps the MAC) never
 * matches. Fixed memory: the recent-packet table is direct-mapped (`slots`) and overwritten, the per-MAC counters
 * are a HostTable.
 */
import type { PacketView } from './packet-view.ts';
import { KIND_IPV4, ipText, macText } from './packet-view.ts';
import { HostTable, mix3 } from './host-table.ts';
import { type Finding, MITM, Reporter } from './finding.ts';

export interface RelayOptions {
  /** Longest time between the two copies (ms). Default 1,000. */
  maxDelayMs?: number;
  /** Relayed packets by one MAC within windowMs. Default 3. */
  relays?: number;
  windowMs?: number;
  /** Recent packets remembered (direct-mapped). Default 8,192. */
  slots?: number;
  reportEveryMs?: number;
}

export class RelayWatcher {
  private readonly mask: number;
  private readonly src: Uint32Array;
  private readonly dst: Uint32Array;
  private readonly idLen: Uint32Array;
  private readonly srcMac: Float64Array;
  private readonly dstMac: Float64Array;
  private readonly tUs: Float64Array;
  private readonly vlan: Uint16Array;
  /** Per relaying MAC (hi 16 bits, lo 32 bits): nums [window start, relays, last victim]. */
  private readonly macs = new HostTable(1024, 3, 0);
  private readonly reporter: Reporter;
  private readonly maxDelayUs: number;
  private readonly windowUs: number;
  private readonly relays: number;
  relayed = 0;
  peak = 0;

  constructor(opts: RelayOptions = {}) {
    let n = 1;
    while (n < (opts.slots ?? 8192)) n <<= 1;
    this.mask = n - 1;
    this.src = new Uint32Array(n);
    this.dst = new Uint32Array(n);
    this.idLen = new Uint32Array(n);
    this.srcMac = new Float64Array(n);
    this.dstMac = new Float64Array(n);
    this.tUs = new Float64Array(n);
    this.vlan = new Uint16Array(n);
    this.maxDelayUs = (opts.maxDelayMs ?? 1000) * 1000;
    this.windowUs = (opts.windowMs ?? 10_000) * 1000;
    this.relays = opts.relays ?? 3;
    this.reporter = new Reporter((opts.reportEveryMs ?? 60_000) * 1000);
  }

  packet(p: PacketView, out: Finding[]): void {
    if (p.kind !== KIND_IPV4 || p.srcMac < 0) return;
    const idLen = ((p.ipId << 16) | p.ipLen) >>> 0;
    const i = mix3(p.src ^ idLen, p.dst, 7) & this.mask;
    if (this.idLen[i] === idLen && this.src[i] === p.src && this.dst[i] === p.dst && this.vlan[i] === p.vlan &&
      p.tUs - this.tUs[i] <= this.maxDelayUs && this.srcMac[i] !== p.srcMac && this.dstMac[i] === p.srcMac) {
      this.relay(p, out);
    }
    this.src[i] = p.src;
    this.dst[i] = p.dst;
    this.idLen[i] = idLen;
    this.srcMac[i] = p.srcMac;
    this.dstMac[i] = p.dstMac;
    this.tUs[i] = p.tUs;
    this.vlan[i] = p.vlan;
  }

  private relay(p: PacketView, out: Finding[]): void {
    this.relayed++;
    const hi = Math.floor(p.srcMac / 0x100000000);
    const lo = p.srcMac >>> 0;
    const t = this.macs;
    const s = t.get(hi, lo, 0, p.tUs);
    const nb = s * 3;
    if (t.num[nb] === 0 || p.tUs - t.num[nb] > this.windowUs) {
      t.num[nb] = p.tUs || 1;
      t.num[nb + 1] = 0;
    }
    const n = ++t.num[nb + 1];
    if (n > this.peak) this.peak = n;
    if (n < this.relays || !this.reporter.allow(1, p.src, p.tUs)) return;
    this.reporter.count('arp-relay');
    const victim = ipText(p.src);
    const relay = macText(p.srcMac);
    out.push({
      class: MITM, host: victim, role: 'victim', tUs: p.tUs,
      evidence: {
        kind: 'arp-relay', ip: victim, macs: [relay], count: n, windowMs: this.windowUs / 1000, targets: [ipText(p.dst)],
        detail: `${relay} re-sent ${n} IP packets it received (${victim} → ${ipText(p.dst)} and others): traffic relayed through a third host`,
      },
    });
  }

  stats() {
    return { relayed: this.relayed, evicted: this.macs.evicted, raised: { ...this.reporter.raised }, peak: this.peak };
  }
}
