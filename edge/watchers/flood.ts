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
 *   udp-flood          UDP to the victim ≥ `udpFlood` spread over ≥ `udpFloodPorts` destination or source ports
 *                      (floods randomise or walk the ports: Mirai's generic flood both, hping3 the source port; a
 *                      video stream keeps one pair), or mostly of a bot's payload size (Mirai's udpplain);
 *   ack-flood          TCP segments with data and without SYN to the victim ≥ `ackFlood` over as many port pairs
 *                      while the victim sends back fewer than a tenth as many (Mirai's ACK flood: no session behind
 *                      them; empty ACKs to many ports are an ACK scan, which the scan watcher reports);
 *   icmp-flood         ICMP messages to the victim ≥ `icmpFlood` (ping sends one a second).
 * Role victim: the victim's flows are upgraded by edge/verdicts.ts. Class DoS, except UDP and ACK floods made mostly
 * of `botPayloadBytes`-sized packets, which are Mirai's (its attack code's default payload is 512 random bytes;
 * IoTID20 files Mirai's floods under Mirai). Defaults are per 10 s window (200 packets/s), far above the busiest
 * benign host measured here (edge/README.md "Watchers") and below the slowest flood of interest (a lab flood at
 * 1,000 packets/s passes them in 2 s; the floods in the captures run at 1,500–40,000 packets/s).
 */
import type { PacketView } from './packet-view.ts';
import { KIND_IPV4, PROTO_ICMP, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_RST, TCP_SYN, ipText, isBroadcastLike, macText } from './packet-view.ts';
import { HostTable, addDistinct, clearDistinct, distinctEstimate, hasDistinct, mix3 } from './host-table.ts';
import { DOS, type Finding, MIRAI, Reporter } from './finding.ts';

export interface FloodOptions {
  windowMs?: number;
  synFlood?: number;
  reflection?: number;
  /** Unsolicited SYN-ACKs over the slow window: reflection at a trickle (retransmitting reflectors). Default 50 in 10 min. */
  slowReflection?: number;
  slowWindowMs?: number;
  amplification?: number;
  ampPorts?: number[];
  /** UDP datagrams to one host in the window, spread over udpFloodPorts destination or source ports. Default 2,000. */
  udpFlood?: number;
  udpFloodPorts?: number;
  /** ICMP messages to one host in the window (ping sends 1/s). Default 2,000. */
  icmpFlood?: number;
  /** TCP segments without SYN to one host over ≥ udpFloodPorts ports while it sends < 10 % as many back. Default 2,000. */
  ackFlood?: number;
  /** Layer-4 payload sizes of bot floods: a flood mostly of these is Mirai's (its default payload is 512 bytes). */
  botPayloadBytes?: number[];
  maxHosts?: number;
  reportEveryMs?: number;
}

export const AMP_PORTS = [7, 17, 19, 53, 69, 111, 123, 137, 161, 389, 1900, 3283, 3478, 3702, 5351, 5353, 5683, 10001, 11211, 20800, 27015, 33848, 37810, 47808];

// nums: start, synIn, ackIn, synAckIn, synOut, ampIn, udpIn, dport ones, source ones
const N_START = 0, N_SYN_IN = 1, N_ACK_IN = 2, N_SYNACK_IN = 3, N_SYN_OUT = 4, N_AMP_IN = 5, N_UDP_IN = 6, N_DPORTS = 7, N_SRCS = 8;
// SYN sources and SYN destination ports (a port scan is one source, many ports: not a flood); the long window.
const N_SYN_SRCS = 9, N_SYN_PORTS = 10;
// UDP source ports; ICMP in; TCP segments (no SYN, no RST) in and out, their ports; bot-sized payloads.
const N_SPORTS = 11, N_ICMP_IN = 12, N_TCP_IN = 13, N_TCP_OUT = 14, N_TPORTS = 15, N_BOT = 16;
const N_L_START = 17, N_L_SYNACK = 18, N_L_SYN_OUT = 19;
// The MAC frames to this host are addressed to, + 1 (0: none seen); kept across windows.
const N_MAC = 20;
const NUMS = 21;
const ASK_BITS = 512;
const SMALL_BITS = 256;
// words: asked (victim → reflector:port), dports, sources
const W_ASKED = 0, W_DPORTS = ASK_BITS / 32, W_SRCS = W_DPORTS + SMALL_BITS / 32;
const W_SYN_SRCS = W_SRCS + SMALL_BITS / 32, W_SYN_PORTS = W_SYN_SRCS + SMALL_BITS / 32;
const W_SPORTS = W_SYN_PORTS + SMALL_BITS / 32, W_TPORTS = W_SPORTS + SMALL_BITS / 32;
const WORDS = W_TPORTS + SMALL_BITS / 32;
/** Bit 0 of the asked-group mask: the victim sent to a group address (per amplifier port below). */

const K_SYN = 1, K_REFL = 2, K_AMP = 3, K_UDP = 4, K_ICMP = 5, K_ACK = 6;

export class FloodWatcher {
  private readonly table: HostTable;
  private readonly reporter: Reporter;
  private readonly windowUs: number;
  private readonly o: Required<Omit<FloodOptions, 'ampPorts' | 'botPayloadBytes'>>;
  private readonly amp = new Uint8Array(65536);
  private readonly bot = new Uint8Array(65536);
  /** Per-window peaks over all hosts: the benign worst case when run on benign traffic. */
  readonly peak = { synHalfOpen: 0, reflection: 0, slowReflection: 0, amplification: 0, udpSpread: 0, icmp: 0, ackSpread: 0 };
  private readonly slowWindowUs: number;
  /**
   * The MAC an address is bound to on this LAN (the ARP watcher's bindings; set by Watchers), for spoofed() when no
   * frame to the address was seen yet.
   */
  owner: ((ip: string) => string | undefined) | undefined;
  /** Queries to amplifier ports not counted as asked because they came from another MAC than the address's. */
  spoofedQueries = 0;

  constructor(opts: FloodOptions = {}) {
    this.o = {
      windowMs: opts.windowMs ?? 10_000, slowWindowMs: opts.slowWindowMs ?? 600_000, slowReflection: opts.slowReflection ?? 50, synFlood: opts.synFlood ?? 1000, reflection: opts.reflection ?? 500,
      amplification: opts.amplification ?? 500, udpFlood: opts.udpFlood ?? 2000, udpFloodPorts: opts.udpFloodPorts ?? 32,
      icmpFlood: opts.icmpFlood ?? 2000, ackFlood: opts.ackFlood ?? 2000,
      maxHosts: opts.maxHosts ?? 4096, reportEveryMs: opts.reportEveryMs ?? 60_000,
    };
    for (const p of opts.ampPorts ?? AMP_PORTS) this.amp[p] = 1;
    for (const n of opts.botPayloadBytes ?? [512]) this.bot[n] = 1;
    this.windowUs = this.o.windowMs * 1000;
    this.slowWindowUs = this.o.slowWindowMs * 1000;
    this.table = new HostTable(this.o.maxHosts, NUMS, WORDS);
    this.reporter = new Reporter(this.o.reportEveryMs * 1000);
  }

  /** The host's slot with its windows current; `mac`: the destination MAC of a frame addressed to it. */
  private slot(ip: number, tUs: number, mac = -1): number {
    const t = this.table;
    const s = t.get(ip, 0, 0, tUs);
    const nb = s * NUMS;
    if (mac >= 0) t.num[nb + N_MAC] = mac + 1;
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
    else if (p.proto === PROTO_ICMP && !isBroadcastLike(p.dst)) {
      const s = this.slot(p.dst, p.tUs, p.dstMac);
      const n = ++this.table.num[s * NUMS + N_ICMP_IN];
      if (n > this.peak.icmp) this.peak.icmp = n;
      if (n >= this.o.icmpFlood) this.raise(K_ICMP, 'icmp-flood', DOS, s, n, `${n} ICMP messages`, p, out);
    }
  }

  /** Mirai when most of the flood's packets carry a bot's default payload size, else DoS. */
  private floodClass(nb: number): string {
    const t = this.table.num;
    return t[nb + N_BOT] * 2 >= t[nb + N_UDP_IN] + t[nb + N_TCP_IN] ? MIRAI : DOS;
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
      const s = this.slot(p.dst, p.tUs, p.dstMac);
      const nb = s * NUMS;
      const syn = ++t.num[nb + N_SYN_IN];
      if (addDistinct(t.word, s * WORDS + W_SYN_SRCS, SMALL_BITS, mix3(p.src, 0, 13))) t.num[nb + N_SYN_SRCS]++;
      if (addDistinct(t.word, s * WORDS + W_SYN_PORTS, SMALL_BITS, mix3(p.dport, 0, 14))) t.num[nb + N_SYN_PORTS]++;
      const halfOpen = syn - t.num[nb + N_ACK_IN];
      if (halfOpen > this.peak.synHalfOpen) this.peak.synHalfOpen = halfOpen;
      // One or few sources across many ports is a port scan (the scan watcher's), not a flood.
      const scanLike = t.num[nb + N_SYN_SRCS] < 16 && t.num[nb + N_SYN_PORTS] > 8;
      if (syn >= this.o.synFlood && t.num[nb + N_ACK_IN] * 2 < syn && !scanLike) {
        this.raise(K_SYN, 'syn-flood', DOS, s, syn, `${syn} SYNs, ${t.num[nb + N_ACK_IN]} ACK-bearing segments`, p, out);
      }
      return;
    }
    const s = this.slot(p.dst, p.tUs, p.dstMac);
    const nb = s * NUMS;
    if ((f & TCP_SYN) !== 0) {
      const n = ++t.num[nb + N_SYNACK_IN];
      if (addDistinct(t.word, s * WORDS + W_SRCS, SMALL_BITS, mix3(p.src, 0, 9))) t.num[nb + N_SRCS]++;
      const unsolicited = n - t.num[nb + N_SYN_OUT];
      const slow = ++t.num[nb + N_L_SYNACK] - t.num[nb + N_L_SYN_OUT];
      if (unsolicited > this.peak.reflection) this.peak.reflection = unsolicited;
      if (slow > this.peak.slowReflection) this.peak.slowReflection = slow;
      if (unsolicited >= this.o.reflection) {
        this.raise(K_REFL, 'synack-reflection', DOS, s, unsolicited, `${unsolicited} SYN-ACKs it never asked for`, p, out);
      } else if (slow >= this.o.slowReflection) {
        this.raise(K_REFL, 'synack-reflection', DOS, s, slow, `${slow} SYN-ACKs it never asked for (slow: over ${this.o.slowWindowMs / 60_000} min)`, p, out);
      }
    } else {
      t.num[nb + N_ACK_IN]++;
      this.segment(p, s, nb, out);
    }
  }

  /** A TCP segment without SYN: counts toward an ACK flood on its destination unless that host talks back. */
  private segment(p: PacketView, s: number, nb: number, out: Finding[]): void {
    const t = this.table;
    const back = t.find(p.src);
    if (back >= 0) t.num[back * NUMS + N_TCP_OUT]++;
    // A flood sends data nobody asked for; empty segments to many ports are an ACK scan (the scan watcher's).
    if (p.payloadLen === 0) return;
    const n = ++t.num[nb + N_TCP_IN];
    if (this.bot[p.payloadLen] === 1) t.num[nb + N_BOT]++;
    if (addDistinct(t.word, s * WORDS + W_TPORTS, SMALL_BITS, mix3(p.dport, p.sport, 15))) t.num[nb + N_TPORTS]++;
    const ports = distinctEstimate(t.num[nb + N_TPORTS], SMALL_BITS);
    const quiet = t.num[nb + N_TCP_OUT] * 10 < n;
    if (ports >= this.o.udpFloodPorts && quiet && n > this.peak.ackSpread) this.peak.ackSpread = n;
    if (n >= this.o.ackFlood && ports >= this.o.udpFloodPorts && quiet) {
      this.raise(K_ACK, 'ack-flood', this.floodClass(nb), s, n, `${n} TCP segments outside any session, to ${ports} port pairs`, p, out);
    }
  }

  /**
   * A query from `p.src` (slot q) sent from another MAC than the one frames to that address go to (or, before any
   * was seen, than the one its ARP binding names): the attacker's spoofed request of a reflection, not the host
   * asking. A routed address is consistent (the router's MAC both ways); a LAN host's is its own.
   */
  private spoofed(p: PacketView, q: number): boolean {
    if (p.srcMac < 0) return false;
    const seen = this.table.num[q * NUMS + N_MAC];
    let other: boolean;
    if (seen !== 0) other = seen - 1 !== p.srcMac;
    else {
      const mac = this.owner?.(ipText(p.src));
      other = mac !== undefined && mac !== macText(p.srcMac);
    }
    if (other) this.spoofedQueries++;
    return other;
  }

  private udp(p: PacketView, out: Finding[]): void {
    const t = this.table;
    if (this.amp[p.dport] === 1) {
      // A query: the answers from (dst, dport) — from anyone on that port, for a group query — are solicited.
      const q = this.slot(p.src, p.tUs);
      const h = isBroadcastLike(p.dst) ? mix3(0, p.dport, 11) : mix3(p.dst, p.dport, 11);
      // A spoofed query also withdraws what was taken as the host's own asking of that server (the attack's first
      // query may come before any frame showed the host's real MAC).
      if (this.spoofed(p, q)) clearDistinct(t.word, q * WORDS + W_ASKED, ASK_BITS, h);
      else addDistinct(t.word, q * WORDS + W_ASKED, ASK_BITS, h);
    }
    if (isBroadcastLike(p.dst)) return;
    const s = this.slot(p.dst, p.tUs, p.dstMac);
    const nb = s * NUMS;
    // Empty datagrams are probes (a UDP scan), not a flood's payload.
    if (p.payloadLen === 0) return;
    const udp = ++t.num[nb + N_UDP_IN];
    if (this.bot[p.payloadLen] === 1) t.num[nb + N_BOT]++;
    if (addDistinct(t.word, s * WORDS + W_DPORTS, SMALL_BITS, mix3(p.dport, 0, 12))) t.num[nb + N_DPORTS]++;
    if (addDistinct(t.word, s * WORDS + W_SPORTS, SMALL_BITS, mix3(p.src, p.sport, 16))) t.num[nb + N_SPORTS]++;
    if (this.amp[p.sport] === 1 && !hasDistinct(t.word, s * WORDS + W_ASKED, ASK_BITS, mix3(p.src, p.sport, 11)) &&
      !hasDistinct(t.word, s * WORDS + W_ASKED, ASK_BITS, mix3(0, p.sport, 11))) {
      const n = ++t.num[nb + N_AMP_IN];
      if (addDistinct(t.word, s * WORDS + W_SRCS, SMALL_BITS, mix3(p.src, 0, 9))) t.num[nb + N_SRCS]++;
      if (n > this.peak.amplification) this.peak.amplification = n;
      if (n >= this.o.amplification) {
        this.raise(K_AMP, 'udp-amplification', DOS, s, n, `${n} unsolicited UDP answers from port ${p.sport} and other amplifier ports`, p, out);
      }
    }
    // Spread: a flood randomises or walks destination or source ports; a stream keeps its pair.
    const ports = Math.max(distinctEstimate(t.num[nb + N_DPORTS], SMALL_BITS), distinctEstimate(t.num[nb + N_SPORTS], SMALL_BITS));
    if (ports >= this.o.udpFloodPorts && udp > this.peak.udpSpread) this.peak.udpSpread = udp;
    // A bot's flood needs no port spread to be told apart from a stream: its datagrams carry the bot's payload size
    // (Mirai's "udpplain" sends from a few connected sockets).
    if (udp >= this.o.udpFlood && (ports >= this.o.udpFloodPorts || this.floodClass(nb) === MIRAI)) {
      this.raise(K_UDP, 'udp-flood', this.floodClass(nb), s, udp, `${udp} UDP datagrams over ${ports} ports`, p, out);
    }
  }

  private raise(k: number, kind: 'syn-flood' | 'synack-reflection' | 'udp-amplification' | 'udp-flood' | 'icmp-flood' | 'ack-flood',
    cls: string, s: number, count: number, what: string, p: PacketView, out: Finding[]): void {
    const victim = this.table.keyA(s);
    if (!this.reporter.allow(k, victim, p.tUs)) return;
    this.reporter.count(kind);
    const ip = ipText(victim);
    const nb = s * NUMS;
    const hosts = distinctEstimate(this.table.num[nb + N_SRCS], SMALL_BITS);
    const windowMs = this.o.windowMs;
    out.push({
      class: cls, host: ip, role: 'victim', tUs: p.tUs,
      evidence: {
        kind, ip, macs: [], count, windowMs, hosts, ports: distinctEstimate(this.table.num[nb + N_DPORTS], SMALL_BITS),
        targets: [`${ipText(p.src)}:${p.sport}`], detail: `${ip}: ${what} within ${windowMs / 1000} s`,
      },
    });
  }

  stats() {
    return {
      hosts: this.table.live, evicted: this.table.evicted, raised: { ...this.reporter.raised }, peak: { ...this.peak }, spoofedQueries: this.spoofedQueries,
    };
  }
}
