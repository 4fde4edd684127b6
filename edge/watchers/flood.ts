/**
 * Flood and reflection watcher (per destination host, the victim). In a window it counts what reaches the victim
 * and what the victim itself sent:
 *   syn-flood          SYNs to the victim ≥ `synFlood` while fewer than half as many ACK-bearing segments follow
 *                      (connections left half-open: a busy server completes its handshakes);
 *   synack-reflection  SYN-ACKs to the victim beyond the SYNs it sent ≥ `reflection` (reflectors answering SYNs
 *                      spoofed with the victim's address: answers to questions it never asked);
 *   udp-amplification  UDP from amplifier service ports (DNS 53, NTP 123, SSDP 1900, CoAP 5683, BACnet 47808,
 *                      memcached 11211, SNMP 161, CLDAP 389, WS-Discovery 3702, chargen 19, …) that the victim did
 *                      not query ≥ `amplification` (a query to a group address, e.g. SSDP M-SEARCH, makes every
 *                      answer on that port solicited);
 *   udp-flood          UDP to the victim ≥ `udpFlood` spread over ≥ `udpFloodPorts` destination ports (Mirai's
 *                      UDP floods randomise the port; a video stream uses one or two).
 * Class DoS, role victim: the victim's flows are upgraded by edge/verdicts.ts. Defaults are per 10 s window and sit
 * an order of magnitude above the busiest benign host measured here (edge/README.md "Watchers"), and an order of
 * magnitude below the floods in the captures (1,500–40,000 packets/s).
 */
import type { PacketView } from './packet-view.ts';
import { KIND_IPV4, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_RST, TCP_SYN, ipText, isBroadcastLike } from './packet-view.ts';
import { HostTable, addDistinct, distinctEstimate, hasDistinct, mix3 } from './host-table.ts';
import { DOS, type Finding, Reporter } from './finding.ts';

export interface FloodOptions {
  windowMs?: number;
  synFlood?: number;
  reflection?: number;
  /** Unsolicited SYN-ACKs over the slow window: reflection at a trickle (retransmitting reflectors). Default 50 in 10 min. */
  slowReflection?: number;
  slowWindowMs?: number;
  amplification?: number;
  ampPorts?: number[];
  udpFlood?: number;
  udpFloodPorts?: number;
  maxHosts?: number;
  reportEveryMs?: number;
}

export const AMP_PORTS = [7, 17, 19, 53, 69, 111, 123, 137, 161, 389, 1900, 3283, 3478, 3702, 5351, 5353, 5683, 10001, 11211, 20800, 27015, 33848, 37810, 47808];

// nums: start, synIn, ackIn, synAckIn, synOut, ampIn, udpIn, dport ones, source ones
const N_START = 0, N_SYN_IN = 1, N_ACK_IN = 2, N_SYNACK_IN = 3, N_SYN_OUT = 4, N_AMP_IN = 5, N_UDP_IN = 6, N_DPORTS = 7, N_SRCS = 8;
// SYN sources and SYN destination ports (a port scan is one source, many ports: not a flood); the long window.
const N_SYN_SRCS = 9, N_SYN_PORTS = 10, N_L_START = 11, N_L_SYNACK = 12, N_L_SYN_OUT = 13;
const NUMS = 14;
const ASK_BITS = 512;
const SMALL_BITS = 256;
// words: asked (victim → reflector:port), dports, sources
const W_ASKED = 0, W_DPORTS = ASK_BITS / 32, W_SRCS = W_DPORTS + SMALL_BITS / 32;
const W_SYN_SRCS = W_SRCS + SMALL_BITS / 32, W_SYN_PORTS = W_SYN_SRCS + SMALL_BITS / 32;
const WORDS = W_SYN_PORTS + SMALL_BITS / 32;
/** Bit 0 of the asked-group mask: the victim sent to a group address (per amplifier port below). */

const K_SYN = 1, K_REFL = 2, K_AMP = 3, K_UDP = 4;

export class FloodWatcher {
  private readonly table: HostTable;
  private readonly reporter: Reporter;
  private readonly windowUs: number;
  private readonly o: Required<Omit<FloodOptions, 'ampPorts'>>;
  private readonly amp = new Uint8Array(65536);
  /** Per-window peaks over all hosts: the benign worst case when run on benign traffic. */
  readonly peak = { synHalfOpen: 0, reflection: 0, slowReflection: 0, amplification: 0, udpSpread: 0 };
  private readonly slowWindowUs: number;

  constructor(opts: FloodOptions = {}) {
    this.o = {
      windowMs: opts.windowMs ?? 10_000, slowWindowMs: opts.slowWindowMs ?? 600_000, slowReflection: opts.slowReflection ?? 50, synFlood: opts.synFlood ?? 1000, reflection: opts.reflection ?? 500,
      amplification: opts.amplification ?? 500, udpFlood: opts.udpFlood ?? 5000, udpFloodPorts: opts.udpFloodPorts ?? 32,
      maxHosts: opts.maxHosts ?? 4096, reportEveryMs: opts.reportEveryMs ?? 60_000,
    };
    for (const p of opts.ampPorts ?? AMP_PORTS) this.amp[p] = 1;
    this.windowUs = this.o.windowMs * 1000;
    this.slowWindowUs = this.o.slowWindowMs * 1000;
    this.table = new HostTable(this.o.maxHosts, NUMS, WORDS);
    this.reporter = new Reporter(this.o.reportEveryMs * 1000);
  }

  private slot(ip: number, tUs: number): number {
    const t = this.table;
    const s = t.get(ip, 0, 0, tUs);
    const nb = s * NUMS;
    if (t.num[nb + N_L_START] === 0 || tUs - t.num[nb + N_L_START] > this.slowWindowUs) {
      t.num[nb + N_L_START] = tUs || 1;
      t.num[nb + N_L_SYNACK] = t.num[nb + N_L_SYN_OUT] = 0;
    }
    if (t.num[nb + N_START] === 0 || tUs - t.num[nb + N_START] > this.windowUs) {
      t.num.fill(0, nb, nb + N_L_START);
      t.num[nb + N_START] = tUs || 1;
      t.word.fill(0, s * WORDS, (s + 1) * WORDS);
    }
    return s;
  }

  packet(p: PacketView, out: Finding[]): void {
    if (p.kind !== KIND_IPV4 || !p.hasL4) return;
    if (p.proto === PROTO_TCP) this.tcp(p, out);
    else if (p.proto === PROTO_UDP) this.udp(p, out);
  }

  private tcp(p: PacketView, out: Finding[]): void {
    const f = p.flags;
    if ((f & TCP_RST) !== 0) return;
    const t = this.table;
    if ((f & TCP_SYN) !== 0 && (f & TCP_ACK) === 0) {
      // The sender's own SYNs make SYN-ACKs coming back to it solicited.
      const so = t.find(p.src);
      if (so >= 0) {
        t.num[so * NUMS + N_SYN_OUT]++;
        t.num[so * NUMS + N_L_SYN_OUT]++;
      }
      const s = this.slot(p.dst, p.tUs);
      const nb = s * NUMS;
      const syn = ++t.num[nb + N_SYN_IN];
      if (addDistinct(t.word, s * WORDS + W_SYN_SRCS, SMALL_BITS, mix3(p.src, 0, 13))) t.num[nb + N_SYN_SRCS]++;
      if (addDistinct(t.word, s * WORDS + W_SYN_PORTS, SMALL_BITS, mix3(p.dport, 0, 14))) t.num[nb + N_SYN_PORTS]++;
      const halfOpen = syn - t.num[nb + N_ACK_IN];
      if (halfOpen > this.peak.synHalfOpen) this.peak.synHalfOpen = halfOpen;
      // One or few sources across many ports is a port scan (the scan watcher's), not a flood.
      const scanLike = t.num[nb + N_SYN_SRCS] < 16 && t.num[nb + N_SYN_PORTS] > 8;
      if (syn >= this.o.synFlood && t.num[nb + N_ACK_IN] * 2 < syn && !scanLike) {
        this.raise(K_SYN, 'syn-flood', s, syn, `${syn} SYNs, ${t.num[nb + N_ACK_IN]} ACK-bearing segments`, p, out);
      }
      return;
    }
    const s = this.slot(p.dst, p.tUs);
    const nb = s * NUMS;
    if ((f & TCP_SYN) !== 0) {
      const n = ++t.num[nb + N_SYNACK_IN];
      if (addDistinct(t.word, s * WORDS + W_SRCS, SMALL_BITS, mix3(p.src, 0, 9))) t.num[nb + N_SRCS]++;
      const unsolicited = n - t.num[nb + N_SYN_OUT];
      const slow = ++t.num[nb + N_L_SYNACK] - t.num[nb + N_L_SYN_OUT];
      if (unsolicited > this.peak.reflection) this.peak.reflection = unsolicited;
      if (slow > this.peak.slowReflection) this.peak.slowReflection = slow;
      if (unsolicited >= this.o.reflection) {
        this.raise(K_REFL, 'synack-reflection', s, unsolicited, `${unsolicited} SYN-ACKs it never asked for`, p, out);
      } else if (slow >= this.o.slowReflection) {
        this.raise(K_REFL, 'synack-reflection', s, slow, `${slow} SYN-ACKs it never asked for (slow: over ${this.o.slowWindowMs / 60_000} min)`, p, out);
      }
    } else {
      t.num[nb + N_ACK_IN]++;
    }
  }

  private udp(p: PacketView, out: Finding[]): void {
    const t = this.table;
    if (this.amp[p.dport] === 1) {
      // A query: the answers from (dst, dport) — from anyone on that port, for a group query — are solicited.
      const q = this.slot(p.src, p.tUs);
      addDistinct(t.word, q * WORDS + W_ASKED, ASK_BITS, isBroadcastLike(p.dst) ? mix3(0, p.dport, 11) : mix3(p.dst, p.dport, 11));
    }
    if (isBroadcastLike(p.dst)) return;
    const s = this.slot(p.dst, p.tUs);
    const nb = s * NUMS;
    const udp = ++t.num[nb + N_UDP_IN];
    if (addDistinct(t.word, s * WORDS + W_DPORTS, SMALL_BITS, mix3(p.dport, 0, 12))) t.num[nb + N_DPORTS]++;
    if (this.amp[p.sport] === 1 && !hasDistinct(t.word, s * WORDS + W_ASKED, ASK_BITS, mix3(p.src, p.sport, 11)) &&
      !hasDistinct(t.word, s * WORDS + W_ASKED, ASK_BITS, mix3(0, p.sport, 11))) {
      const n = ++t.num[nb + N_AMP_IN];
      if (addDistinct(t.word, s * WORDS + W_SRCS, SMALL_BITS, mix3(p.src, 0, 9))) t.num[nb + N_SRCS]++;
      if (n > this.peak.amplification) this.peak.amplification = n;
      if (n >= this.o.amplification) {
        this.raise(K_AMP, 'udp-amplification', s, n, `${n} unsolicited UDP answers from port ${p.sport} and other amplifier ports`, p, out);
      }
    }
    const ports = distinctEstimate(t.num[nb + N_DPORTS], SMALL_BITS);
    if (ports >= this.o.udpFloodPorts && udp > this.peak.udpSpread) this.peak.udpSpread = udp;
    if (udp >= this.o.udpFlood && ports >= this.o.udpFloodPorts) {
      this.raise(K_UDP, 'udp-flood', s, udp, `${udp} UDP datagrams to ${ports} ports`, p, out);
    }
  }

  private raise(k: number, kind: 'syn-flood' | 'synack-reflection' | 'udp-amplification' | 'udp-flood', s: number, count: number,
    what: string, p: PacketView, out: Finding[]): void {
    const victim = this.table.keyA(s);
    if (!this.reporter.allow(k, victim, p.tUs)) return;
    this.reporter.count(kind);
    const ip = ipText(victim);
    const nb = s * NUMS;
    const hosts = distinctEstimate(this.table.num[nb + N_SRCS], SMALL_BITS);
    const windowMs = this.o.windowMs;
    out.push({
      class: DOS, host: ip, role: 'victim', tUs: p.tUs,
      evidence: {
        kind, ip, macs: [], count, windowMs, hosts, ports: distinctEstimate(this.table.num[nb + N_DPORTS], SMALL_BITS),
        targets: [`${ipText(p.src)}:${p.sport}`], detail: `${ip}: ${what} within ${windowMs / 1000} s`,
      },
    });
  }

  stats() {
    return { hosts: this.table.live, evicted: this.table.evicted, raised: { ...this.reporter.raised }, peak: { ...this.peak } };
  }
}
