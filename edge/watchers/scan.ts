/**
 * Sweep and scan watcher (per source host; after Zeek's scan detection, which counts failed connection attempts).
 *
 * A scanner contacts many (host, port) pairs and most of them fail; a device at work talks to few peers and they
 * answer. Per source A and per window the watcher keeps bitmaps (distinct counting, fixed size) of
 *   tried    – (B, p) A sent a TCP SYN (no ACK) or a unicast UDP datagram to,
 *   answered – (B, p) that sent A a SYN-ACK, a non-RST TCP segment, or UDP back,
 *   failed   – (B, p) that refused: a TCP RST from B:p to A that no answer preceded (closed port, and the reply
 *              to ACK/FIN/NULL/Xmas probes), or an ICMP unreachable quoting A→B:p;
 * and counts failures = |failed ∪ (tried \ answered)|: unanswered or refused attempts. Separately it counts the
 * distinct hosts A sends ICMP echo requests to (an echo sweep is answered by every live host, so answers do not
 * excuse it), and "odd" probes: TCP segments without ACK whose flags no stack sends to open a connection (NULL,
 * FIN, Xmas, SYN+FIN, …) and ICMP echo requests with a non-zero code — the probes of nmap's OS detection and
 * FIN/NULL/Xmas scans.
 *
 * Findings (class Scan, role source; the host's flows are then upgraded to Scan by edge/verdicts.ts):
 *   scan-sweep       failures ≥ `failures` in the short window, or ≥ `slowFailures` in the long one (slow scans);
 *   scan-echo-sweep  echo requests to ≥ `echoHosts` distinct hosts in either window;
 *   scan-odd-flags   ≥ `oddProbes` odd probes in the short window.
 * Defaults (see edge/README.md "Watchers" for the measurement they rest on): Zeek raises at 25 failed hosts or 15
 * failed ports in 5 min, but the worst benign capture here — a plug set up with no Internet, retrying TLS to 47
 * cloud addresses — reaches 33 failures in a minute and 47 in 15 minutes; 64 and 128 keep twice that margin. nmap's
 * default scan (1,000 ports), a /24 sweep and Mirai's scanner (~160 SYNs/s) pass 64 within seconds; echo sweeps
 * (16 hosts; benign peak 2) and odd probes (3; benign peak 0) are their own rules because live hosts answer them.
 */
import type { PacketView } from './packet-view.ts';
import { KIND_IPV4, PROTO_ICMP, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, ipText, isBroadcastLike } from './packet-view.ts';
import { HostTable, addDistinct, distinctEstimate, hasDistinct, mix3 } from './host-table.ts';
import { type Finding, Reporter, SCAN } from './finding.ts';
import { AMP_PORTS } from './flood.ts';

export interface ScanOptions {
  /** Short window (ms). Default 60 s. */
  shortWindowMs?: number;
  /** Long window for slow scans (ms). Default 15 min. */
  longWindowMs?: number;
  /** Unanswered or refused (host, port) attempts in the short window. Default 64. */
  failures?: number;
  /** … in the long window. Default 128. */
  slowFailures?: number;
  /** Distinct hosts sent an ICMP echo request, in either window. Default 16. */
  echoHosts?: number;
  /** Odd TCP/ICMP probes in the short window. Default 3. */
  oddProbes?: number;
  /**
   * Half-open probes followed by a connection to the same (host, port) within `probeFollowMs`. Default 1: a SYN
   * scan that found an open port and then talks to it (nmap -sV, -A). 0 turns the rule off.
   */
  serviceProbes?: number;
  /** How long after a half-open probe a connection to the same (host, port) counts as its follow-up. Default 60 s. */
  probeFollowMs?: number;
  /** Sources tracked at once. Default 4096. */
  maxSources?: number;
  /** One finding per (kind, source) per this interval of capture time (ms). Default 60 s. */
  reportEveryMs?: number;
}

export const SCAN_DEFAULTS: Required<ScanOptions> = {
  shortWindowMs: 60_000, longWindowMs: 900_000, failures: 64, slowFailures: 128, echoHosts: 16, oddProbes: 3,
  serviceProbes: 1, probeFollowMs: 60_000, maxSources: 4096, reportEveryMs: 60_000,
};

const PAIR_BITS = 512;
const PAIR_WORDS = PAIR_BITS / 32;
const SMALL_BITS = 256;
const SMALL_WORDS = SMALL_BITS / 32;
// Word layout of one window: tried, answered, failed, acknowledged (pairs), echo hosts, hosts, ports.
const W_TRIED = 0;
const W_ANS = W_TRIED + PAIR_WORDS;
const W_FAIL = W_ANS + PAIR_WORDS;
const W_ACKED = W_FAIL + PAIR_WORDS;
const W_ECHO = W_ACKED + PAIR_WORDS;
const W_HOSTS = W_ECHO + SMALL_WORDS;
const W_PORTS = W_HOSTS + SMALL_WORDS;
const WIN_WORDS = W_PORTS + SMALL_WORDS;
const RING = 8;
const W_RING = 2 * WIN_WORDS; // RING × (host, port)
const HALF = 4;
const W_HALF = W_RING + 2 * RING; // HALF × (host, port) of the latest half-open probes
const W_SYNACK = W_HALF + 2 * HALF; // HALF × (host, port, ack) of the latest SYN-ACKs this source received
const WORDS = W_SYNACK + 3 * HALF;
// Number layout of one window: start, tried ones, failed ones, echo ones, host ones, port ones, odd probes,
// half-open probes followed by a connection.
const N_START = 0;
const N_TRIED = 1;
const N_FAIL = 2;
const N_ECHO = 3;
const N_HOSTS = 4;
const N_PORTS = 5;
const N_ODD = 6;
const N_FOLLOWED = 7;
const WIN_NUMS = 8;
const N_RING = 2 * WIN_NUMS;
const N_HALF = N_RING + 1; // half-open probes recorded (the ring's next index)
const N_HALF_US = N_HALF + 1; // HALF × time of each
const N_SYNACK = N_HALF_US + HALF; // SYN-ACKs recorded (that ring's next index)
const NUMS = N_SYNACK + 1;

const K_SWEEP = 1;
const K_ECHO = 2;
const K_ODD = 3;
const K_PROBE = 4;

export class ScanWatcher {
  readonly table: HostTable;
  private readonly reporter: Reporter;
  private readonly windowUs: [number, number];
  private readonly o: Required<ScanOptions>;
  private readonly followUs: number;
  /** Highest value each measure reached (any source): the benign worst case when run on benign traffic. */
  readonly peak = { failures: 0, slowFailures: 0, echoHosts: 0, oddProbes: 0, halfOpen: 0, serviceProbes: 0 };

  private readonly service = new Uint8Array(65536);

  constructor(opts: ScanOptions = {}) {
    for (const port of AMP_PORTS) this.service[port] = 1;
    this.o = {
      ...SCAN_DEFAULTS, ...stripUndefined(opts),
    };
    this.windowUs = [this.o.shortWindowMs * 1000, this.o.longWindowMs * 1000];
    this.followUs = this.o.probeFollowMs * 1000;
    this.table = new HostTable(this.o.maxSources, NUMS, WORDS);
    this.reporter = new Reporter(this.o.reportEveryMs * 1000);
  }

  packet(p: PacketView, out: Finding[]): void {
    if (p.kind !== KIND_IPV4 || !p.hasL4) return;
    if (p.proto === PROTO_TCP) this.tcp(p, out);
    else if (p.proto === PROTO_UDP) {
      this.answer(p.dst, p.src, p.sport, p.tUs);
      // A datagram from a service port to an ephemeral one is an answer (or reflected traffic), not a probe.
      if (!isBroadcastLike(p.dst) && !(this.service[p.sport] === 1 && p.dport >= 1024)) {
        this.attempt(p.src, p.dst, p.dport, p.tUs, false, out);
      }
    } else if (p.proto === PROTO_ICMP) this.icmp(p, out);
  }

  private tcp(p: PacketView, out: Finding[]): void {
    const f = p.flags;
    if ((f & TCP_ACK) === 0) {
      if ((f & (TCP_SYN | TCP_FIN | TCP_RST)) === TCP_SYN) {
        this.attempt(p.src, p.dst, p.dport, p.tUs, false, out);
        // SYN with URG/PSH is not how a stack opens a connection (ECE/CWR are: ECN).
        if ((f & 0x28) !== 0) this.odd(p.src, p.tUs, out);
      } else if (f === TCP_RST) {
        this.refused(p.dst, p.src, p.sport, p.tUs, out);
        this.reset(p, out);
      } else {
        this.odd(p.src, p.tUs, out);
      }
      return;
    }
    if ((f & TCP_RST) !== 0) {
      this.refused(p.dst, p.src, p.sport, p.tUs, out);
      return;
    }
    this.answer(p.dst, p.src, p.sport, p.tUs);
    if ((f & TCP_SYN) !== 0) this.synAck(p);
    // An ACK to a (host, port) that never talks back is a probe (ACK scan) or a session the peer has dropped;
    // a SYN-ACK answers a SYN and is no attempt of its own.
    if ((f & TCP_SYN) === 0) this.attempt(p.src, p.dst, p.dport, p.tUs, true, out);
  }

  private icmp(p: PacketView, out: Finding[]): void {
    if (p.icmpType === 8) {
      if (p.icmpCode !== 0) this.odd(p.src, p.tUs, out);
      if (isBroadcastLike(p.dst)) return;
      const s = this.slot(p.src, p.tUs);
      for (let w = 0; w < 2; w++) {
        const wb = s * WORDS + w * WIN_WORDS;
        const nb = s * NUMS + w * WIN_NUMS;
        if (addDistinct(this.table.word, wb + W_ECHO, SMALL_BITS, mix3(p.dst, 8, 0))) {
          const n = ++this.table.num[nb + N_ECHO];
          const hosts = distinctEstimate(n, SMALL_BITS);
          if (hosts > this.peak.echoHosts) this.peak.echoHosts = hosts;
          if (w === 0) this.remember(s, p.dst, 0);
          if (hosts >= this.o.echoHosts) this.raise(K_ECHO, 'scan-echo-sweep', s, w, hosts, p.tUs, out);
        }
      }
    } else if (p.icmpType === 3 && p.innerProto !== 0) {
      // Unreachable: the quoted datagram went from innerSrc (the prober) to innerDst:innerDport.
      this.refused(p.innerSrc, p.innerDst, p.innerProto === PROTO_ICMP ? 0 : p.innerDport, p.tUs, out);
    }
  }

  /** The source's slot with both windows current. */
  private slot(src: number, tUs: number): number {
    const t = this.table;
    const s = t.get(src, 0, 0, tUs);
    for (let w = 0; w < 2; w++) {
      const nb = s * NUMS + w * WIN_NUMS;
      if (t.num[nb + N_START] === 0 || tUs - t.num[nb + N_START] > this.windowUs[w]) {
        t.num.fill(0, nb, nb + WIN_NUMS);
        t.num[nb + N_START] = tUs || 1;
        const wb = s * WORDS + w * WIN_WORDS;
        t.word.fill(0, wb, wb + WIN_WORDS);
      }
    }
    return s;
  }

  /** `acked`: a TCP segment acknowledging the peer (the handshake was completed from this side). */
  private attempt(src: number, dst: number, port: number, tUs: number, acked: boolean, out: Finding[]): void {
    const s = this.slot(src, tUs);
    const h = mix3(dst, port, 1);
    for (let w = 0; w < 2; w++) {
      const wb = s * WORDS + w * WIN_WORDS;
      // The first acknowledgement to a (host, port) in the window: a handshake completed, maybe a half-open's follow-up.
      if (acked && addDistinct(this.table.word, wb + W_ACKED, PAIR_BITS, h) && w === 0 && this.table.num[s * NUMS + N_HALF] > 0) {
        this.followUp(s, dst, port, tUs, out);
      }
      if (!addDistinct(this.table.word, wb + W_TRIED, PAIR_BITS, h)) continue;
      const nb = s * NUMS + w * WIN_NUMS;
      this.table.num[nb + N_TRIED]++;
      this.spread(s, w, dst, port);
      this.check(s, w, tUs, out);
    }
  }

  private answer(to: number, from: number, port: number, tUs: number): void {
    const s = this.table.find(to);
    if (s < 0) return;
    const h = mix3(from, port, 1);
    for (let w = 0; w < 2; w++) {
      const nb = s * NUMS + w * WIN_NUMS;
      if (tUs - this.table.num[nb + N_START] > this.windowUs[w]) continue;
      addDistinct(this.table.word, s * WORDS + w * WIN_WORDS + W_ANS, PAIR_BITS, h);
    }
  }

  private refused(prober: number, target: number, port: number, tUs: number, out: Finding[]): void {
    const s = this.table.find(prober);
    if (s < 0) return;
    const h = mix3(target, port, 1);
    for (let w = 0; w < 2; w++) {
      const wb = s * WORDS + w * WIN_WORDS;
      if (tUs - this.table.num[s * NUMS + w * WIN_NUMS + N_START] > this.windowUs[w]) continue;
      // Only a refusal of something the prober tried counts (a RST answering a reflected SYN-ACK does not), and a
      // RST closing a session that was answered is an ordinary end.
      if (!hasDistinct(this.table.word, wb + W_TRIED, PAIR_BITS, h) || hasDistinct(this.table.word, wb + W_ANS, PAIR_BITS, h)) continue;
      if (!addDistinct(this.table.word, wb + W_FAIL, PAIR_BITS, h)) continue;
      this.table.num[s * NUMS + w * WIN_NUMS + N_FAIL]++;
      this.spread(s, w, target, port);
      if (w === 0) this.remember(s, target, port);
      this.check(s, w, tUs, out);
    }
  }

  /** A SYN-ACK to a tracked source: kept (a few, the latest) so that reset() can tell a half-open probe. */
  private synAck(p: PacketView): void {
    const t = this.table;
    const s = t.find(p.dst);
    if (s < 0) return;
    const k = t.num[s * NUMS + N_SYNACK]++ % HALF;
    const at = s * WORDS + W_SYNACK + 3 * k;
    t.word[at] = p.src;
    t.word[at + 1] = p.sport;
    t.word[at + 2] = p.ack;
  }

  /**
   * A bare RST that answers a SYN-ACK exactly (its sequence number is the SYN-ACK's acknowledgement: nothing was
   * sent in between) from a source that never acknowledged that (host, port): the handshake was not completed
   * from this side. That is a SYN scan's probe of an open port (the scanner's raw SYN has no socket behind it, so
   * its kernel resets the SYN-ACK), or a SYN-ACK that came after the client gave up. Counted as a failure (no
   * session was established) and remembered for followUp. A reset after data, or one a capture shows without its
   * handshake, does not match.
   */
  private reset(p: PacketView, out: Finding[]): void {
    const t = this.table;
    const { src, dst, dport: port, tUs } = p;
    const s = t.find(src);
    if (s < 0) return;
    let answered = false;
    for (let k = 0, n = Math.min(HALF, t.num[s * NUMS + N_SYNACK]); k < n && !answered; k++) {
      const at = s * WORDS + W_SYNACK + 3 * k;
      answered = t.word[at] === dst && t.word[at + 1] === port && t.word[at + 2] === p.seq;
    }
    if (!answered) return;
    const h = mix3(dst, port, 1);
    let half = false;
    for (let w = 0; w < 2; w++) {
      const wb = s * WORDS + w * WIN_WORDS;
      const nb = s * NUMS + w * WIN_NUMS;
      if (tUs - t.num[nb + N_START] > this.windowUs[w]) continue;
      if (hasDistinct(t.word, wb + W_ACKED, PAIR_BITS, h)) continue;
      half = true;
      if (!addDistinct(t.word, wb + W_FAIL, PAIR_BITS, h)) continue;
      t.num[nb + N_FAIL]++;
      this.spread(s, w, dst, port);
      if (w === 0) this.remember(s, dst, port);
      this.check(s, w, tUs, out);
    }
    if (!half) return;
    const i = t.num[s * NUMS + N_HALF]++;
    if (i + 1 > this.peak.halfOpen) this.peak.halfOpen = i + 1;
    const k = i % HALF;
    t.word[s * WORDS + W_HALF + 2 * k] = dst;
    t.word[s * WORDS + W_HALF + 2 * k + 1] = port;
    t.num[s * NUMS + N_HALF_US + k] = tUs;
  }

  /**
   * Source slot `s` completed a handshake with a (host, port) it half-opened shortly before: the scan found the port
   * open and the tool now connects to it to read its banner and probe the service (nmap -sV and -A do this right
   * after their SYN scan; the probes themselves are ordinary sessions; a SYN flood from a real address half-opens
   * the same port again and again but never completes a handshake). Finding `scan-service-probe` at
   * `serviceProbes` of them.
   */
  private followUp(s: number, dst: number, port: number, tUs: number, out: Finding[]): void {
    const t = this.table;
    if (this.o.serviceProbes <= 0) return;
    const n = Math.min(HALF, t.num[s * NUMS + N_HALF]);
    for (let k = 0; k < n; k++) {
      const at = s * WORDS + W_HALF + 2 * k;
      if (t.word[at] !== dst || t.word[at + 1] !== port) continue;
      const when = t.num[s * NUMS + N_HALF_US + k];
      if (when === 0 || tUs - when > this.followUs) continue;
      // Each half-open probe is followed up once.
      t.num[s * NUMS + N_HALF_US + k] = 0;
      const followed = ++t.num[s * NUMS + N_FOLLOWED];
      if (followed > this.peak.serviceProbes) this.peak.serviceProbes = followed;
      if (followed >= this.o.serviceProbes) this.raise(K_PROBE, 'scan-service-probe', s, 0, followed, tUs, out);
      return;
    }
  }

  private odd(src: number, tUs: number, out: Finding[]): void {
    const s = this.slot(src, tUs);
    const n = ++this.table.num[s * NUMS + N_ODD];
    if (n > this.peak.oddProbes) this.peak.oddProbes = n;
    if (n >= this.o.oddProbes) this.raise(K_ODD, 'scan-odd-flags', s, 0, n, tUs, out);
  }

  /** Distinct hosts and ports touched (for the evidence). */
  private spread(s: number, w: number, host: number, port: number): void {
    const t = this.table;
    const wb = s * WORDS + w * WIN_WORDS;
    const nb = s * NUMS + w * WIN_NUMS;
    if (addDistinct(t.word, wb + W_HOSTS, SMALL_BITS, mix3(host, 0, 2))) t.num[nb + N_HOSTS]++;
    if (addDistinct(t.word, wb + W_PORTS, SMALL_BITS, mix3(port, 0, 3))) t.num[nb + N_PORTS]++;
  }

  private remember(s: number, host: number, port: number): void {
    const t = this.table;
    const i = t.num[s * NUMS + N_RING]++ % RING;
    t.word[s * WORDS + W_RING + 2 * i] = host;
    t.word[s * WORDS + W_RING + 2 * i + 1] = port;
  }

  /**
   * How much probing `ip` did in its current windows (the larger of the two): distinct (host, port) attempts that
   * failed or went unanswered, distinct hosts sent an echo request, and odd probes. 0 for a host never seen
   * sending. What a model Scan verdict needs behind it (edge/verdicts.ts): a scan is many targets.
   */
  probes(ip: number, tUs: number): number {
    const t = this.table;
    const s = t.find(ip);
    if (s < 0) return 0;
    let best = 0;
    for (let w = 0; w < 2; w++) {
      const nb = s * NUMS + w * WIN_NUMS;
      if (t.num[nb + N_START] === 0 || tUs - t.num[nb + N_START] > this.windowUs[w]) continue;
      const wb = s * WORDS + w * WIN_WORDS;
      let ones = 0;
      for (let k = 0; k < PAIR_WORDS; k++) ones += popcount(t.word[wb + W_FAIL + k] | (t.word[wb + W_TRIED + k] & ~t.word[wb + W_ANS + k]));
      const n = distinctEstimate(ones, PAIR_BITS) + distinctEstimate(t.num[nb + N_ECHO], SMALL_BITS) + t.num[nb + N_ODD];
      if (n > best) best = n;
    }
    return best;
  }

  /** Failures = |failed ∪ (tried \ answered)|, computed only once the cheap upper bound reaches the threshold. */
  private check(s: number, w: number, tUs: number, out: Finding[]): void {
    const t = this.table;
    const nb = s * NUMS + w * WIN_NUMS;
    const limit = w === 0 ? this.o.failures : this.o.slowFailures;
    const bound = t.num[nb + N_TRIED] + t.num[nb + N_FAIL];
    if (bound < Math.min(limit, w === 0 ? this.peak.failures + 1 : this.peak.slowFailures + 1)) return;
    const wb = s * WORDS + w * WIN_WORDS;
    const words = t.word;
    let ones = 0;
    for (let k = 0; k < PAIR_WORDS; k++) {
      ones += popcount(words[wb + W_FAIL + k] | (words[wb + W_TRIED + k] & ~words[wb + W_ANS + k]));
    }
    const failures = distinctEstimate(ones, PAIR_BITS);
    if (w === 0 && failures > this.peak.failures) this.peak.failures = failures;
    if (w === 1 && failures > this.peak.slowFailures) this.peak.slowFailures = failures;
    if (failures >= limit) this.raise(K_SWEEP, 'scan-sweep', s, w, failures, tUs, out);
  }

  private raise(k: number, kind: 'scan-sweep' | 'scan-echo-sweep' | 'scan-odd-flags' | 'scan-service-probe', s: number, w: number, count: number,
    tUs: number, out: Finding[]): void {
    const t = this.table;
    const src = t.keyA(s);
    if (!this.reporter.allow(k, src, tUs)) return;
    this.reporter.count(kind);
    const nb = s * NUMS + w * WIN_NUMS;
    const hosts = distinctEstimate(t.num[nb + N_HOSTS], SMALL_BITS);
    const ports = distinctEstimate(t.num[nb + N_PORTS], SMALL_BITS);
    const targets: string[] = [];
    const seen = Math.min(RING, t.num[s * NUMS + N_RING]);
    for (let i = 0; i < seen; i++) {
      const host = t.word[s * WORDS + W_RING + 2 * i];
      const port = t.word[s * WORDS + W_RING + 2 * i + 1];
      targets.push(port ? `${ipText(host)}:${port}` : ipText(host));
    }
    const windowMs = (w === 0 ? this.o.shortWindowMs : this.o.longWindowMs);
    const ip = ipText(src);
    const what = kind === 'scan-sweep' ? `${count} unanswered or refused attempts (${hosts} hosts, ${ports} ports)`
      : kind === 'scan-echo-sweep' ? `echo requests to ${count} hosts`
      : kind === 'scan-service-probe' ? `${count} half-open probes of open ports followed by connections to them`
      : `${count} probes with flags no connection uses`;
    out.push({
      class: SCAN, host: ip, role: 'source', tUs,
      evidence: { kind, ip, macs: [], detail: `${ip}: ${what} within ${windowMs / 1000} s`, count, windowMs, hosts, ports, targets },
    });
  }

  stats() {
    return { sources: this.table.live, evicted: this.table.evicted, raised: { ...this.reporter.raised }, suppressed: this.reporter.suppressed, peak: { ...this.peak } };
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

export function stripUndefined<T extends object>(o: T): Partial<T> {
  const r: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (r as Record<string, unknown>)[k] = v;
  return r;
}
