/**
 * ARP watcher: rule-based MITM evidence below the IP layer, where flow features are blind. It runs on the hub
 * beside the model and sees the same packet batches.
 *
 * Rules (tuned on the real captures in ../shared/data/pcaps; see test/edge/arp-watcher.test.ts):
 * - arp-ip-conflict: an IP bound to MAC A is claimed by MAC B while A was still claiming it within `graceMs`.
 *   A claim after A has been silent for longer is a re-binding (DHCP gave the address to a new device): counted,
 *   not raised.
 * - arp-gateway-claim: a configured gateway IP is claimed by a MAC other than the one bound to it, or by a MAC
 *   that also sends unsolicited replies for other IPs (a poisoner announcing both directions).
 * - arp-unsolicited-reply: repeated replies nobody asked for, but only when they claim someone else's address:
 *   the MAC claims two or more IPs by unsolicited replies at once (arpspoof/ettercap poisoning both victims), or
 *   the IP is bound to another MAC. A device repeating its own sole binding is NOT evidence: captures taken at a
 *   device's port miss unicast requests, and the real IoTEnsemble captures show a hub answering an unseen peer
 *   every 12 s, 6,800 times a day.
 * - arp-mac-multi-ip: one MAC answers (op 2, solicited or not) for `multiIps` or more IPs within the window while
 *   one of those IPs is bound to another MAC: a poisoner answering for its own address and the one it steals.
 *   (Several IPs alone are not enough: a router doing proxy ARP answers for many.) Also raised when a MAC repeats
 *   unsolicited replies for one IP (`repeatThreshold`) while it speaks as another IP in the same window: arpspoof
 *   poisoning a single direction, seen at the victim, where the stolen address has no live binding to conflict with.
 * - arp-binding-flip: an IP's claimed MAC changes `flips` or more times within the window (A → B → A: the real owner
 *   and a poisoner taking turns). A DHCP re-binding changes it once.
 * - arp-gratuitous-storm: one MAC sends `gratuitousStorm` or more gratuitous ARPs within the window (devices send
 *   a handful at boot or on link up; a storm refreshes poisoned caches or floods them).
 * - arp-sweep (class Scan): one sender asks for `sweepHosts` or more distinct IPs within `sweepWindowMs` (arp-scan,
 *   nmap -sn on a LAN); a router resolving its clients asks for a few at a time as they talk.
 * Each (kind, IP, MACs) raises at most once per `rateLimitMs`; every table is capped (oldest entries evicted).
 */
import type { Evidence } from '../../shared/payloads.ts';
import type { PacketBatch } from '../../shared/packets.ts';
import { ETH_ARP, ETH_IPV4, ipv4String, linkLayer, macString, newLinkInfo } from '../../capture/decode.ts';

export interface ArpWatcherOptions {
  /** IPs of the site's gateways (routers): claims on them are watched closely. */
  gatewayIps?: string[];
  /** How long a binding's owner must be silent before another MAC may take the IP without a conflict (ms). */
  graceMs?: number;
  /** Window for "repeated" and "at once" (ms). */
  windowMs?: number;
  /** Unsolicited replies for one (IP, MAC) within the window that count as repeated. */
  repeatThreshold?: number;
  /** A reply answers a request for its IP seen at most this long before (ms). */
  requestWindowMs?: number;
  /** Same evidence (kind, IP, MACs) at most once per this interval (ms). */
  rateLimitMs?: number;
  /** Cap on every table (bindings, requests, counters). */
  maxEntries?: number;
  /** Distinct IPs one MAC answers for, one of them bound elsewhere (arp-mac-multi-ip). Default 2. */
  multiIps?: number;
  /** MAC changes of one IP within the window (arp-binding-flip). Default 2 (A → B → A). */
  flips?: number;
  /** Gratuitous ARPs from one MAC within the window (arp-gratuitous-storm). Default 30. */
  gratuitousStorm?: number;
  /** Distinct IPs one sender asks for within sweepWindowMs (arp-sweep). Default 16 (benign peak 3). */
  sweepHosts?: number;
  /** Default 30 s. */
  sweepWindowMs?: number;
}

export interface ArpWatcherStats {
  packets: number;
  arpPackets: number;
  requests: number;
  replies: number;
  gratuitous: number;
  unsolicitedReplies: number;
  malformed: number;
  rebinds: number;
  bindings: number;
  evicted: number;
  evidence: Partial<Record<Evidence['kind'], number>>;
  suppressed: number;
}

interface Binding {
  mac: string;
  /** Last time (ms) this MAC claimed the IP. */
  lastMs: number;
}

interface Counter {
  startMs: number;
  count: number;
}

interface Spread {
  startMs: number;
  /** Capped at the threshold: the set never grows past what the rule needs. */
  seen: Set<string>;
}

interface Flips {
  startMs: number;
  mac: string;
  flips: number;
}

/** A Map with insertion-order eviction beyond `cap`; `touch` moves a key to the young end. */
class CappedMap<V> extends Map<string, V> {
  constructor(
    private readonly cap: number,
    private readonly onEvict: () => void,
  ) {
    super();
  }
  touch(key: string, value: V): void {
    this.delete(key);
    this.set(key, value);
    if (this.size > this.cap) {
      this.delete(this.keys().next().value as string);
      this.onEvict();
    }
  }
}

export class ArpWatcher {
  private readonly gateways: Set<string>;
  private readonly graceMs: number;
  private readonly windowMs: number;
  private readonly repeat: number;
  private readonly requestWindowMs: number;
  private readonly rateLimitMs: number;
  private readonly bindings: CappedMap<Binding>;
  /** Target IP → last time (ms) someone asked for it. */
  private readonly asked: CappedMap<number>;
  /** "ip mac" → unsolicited replies in the current window. */
  private readonly unsolicited: CappedMap<Counter>;
  /** MAC → (IP → last unsolicited reply ms) for the "claims several IPs at once" test. */
  private readonly claimsByMac: CappedMap<Map<string, number>>;
  private readonly lastRaised: CappedMap<number>;
  private readonly li = newLinkInfo();
  private readonly s: ArpWatcherStats = {
    packets: 0, arpPackets: 0, requests: 0, replies: 0, gratuitous: 0, unsolicitedReplies: 0, malformed: 0,
    rebinds: 0, bindings: 0, evicted: 0, suppressed: 0,
    evidence: {},
  };
  private readonly multiIps: number;
  private readonly flipLimit: number;
  private readonly gratuitousStorm: number;
  private readonly sweepHosts: number;
  private readonly sweepWindowMs: number;
  /** MAC → IPs it answered for in the window. */
  private readonly answersByMac: CappedMap<Spread>;
  /** Sender IP → distinct IPs it asked for. */
  private readonly asksBySender: CappedMap<Spread>;
  private readonly flipsByIp: CappedMap<Flips>;
  /** MAC → IPs it spoke as (sender of any ARP) in the window. */
  private readonly sendersByMac: CappedMap<Spread>;
  private readonly gratuitousByMac: CappedMap<Counter>;
  /** Highest value each measure reached: the benign worst case when run on benign traffic. */
  readonly peak = { multiIps: 0, flips: 0, gratuitous: 0, sweepHosts: 0 };

  constructor(opts: ArpWatcherOptions = {}) {
    this.gateways = new Set(opts.gatewayIps ?? []);
    this.graceMs = opts.graceMs ?? 300_000;
    this.windowMs = opts.windowMs ?? 60_000;
    this.repeat = opts.repeatThreshold ?? 3;
    this.requestWindowMs = opts.requestWindowMs ?? 5_000;
    this.rateLimitMs = opts.rateLimitMs ?? 60_000;
    const cap = opts.maxEntries ?? 4096;
    const evict = () => void this.s.evicted++;
    this.bindings = new CappedMap(cap, evict);
    this.asked = new CappedMap(cap, evict);
    this.unsolicited = new CappedMap(cap, evict);
    this.claimsByMac = new CappedMap(cap, evict);
    this.lastRaised = new CappedMap(cap, evict);
    this.multiIps = opts.multiIps ?? 2;
    this.flipLimit = opts.flips ?? 2;
    this.gratuitousStorm = opts.gratuitousStorm ?? 30;
    this.sweepHosts = opts.sweepHosts ?? 16;
    this.sweepWindowMs = opts.sweepWindowMs ?? 30_000;
    this.answersByMac = new CappedMap(cap, evict);
    this.asksBySender = new CappedMap(cap, evict);
    this.flipsByIp = new CappedMap(cap, evict);
    this.sendersByMac = new CappedMap(cap, evict);
    this.gratuitousByMac = new CappedMap(cap, evict);
  }

  /** Looks at every ARP packet of the batch; returns the evidence it raised (usually none). */
  /** The MAC bound to `ip` (the one that last claimed it without stealing it), or undefined. */
  macOf(ip: string): string | undefined {
    return this.bindings.get(ip)?.mac;
  }

  push(batch: PacketBatch): Evidence[] {
    const out: Evidence[] = [];
    const d = batch.data;
    const li = this.li;
    this.s.packets += batch.count;
    for (let i = 0; i < batch.count; i++) {
      if (!linkLayer(d, batch.offsets[i], batch.lengths[i], batch.linkTypes[i], li) || li.etherType !== ETH_ARP) continue;
      this.s.arpPackets++;
      const p = li.l3;
      const end = batch.offsets[i] + batch.lengths[i];
      // Ethernet/IPv4 ARP only: htype 1, ptype 0x0800, hlen 6, plen 4, 28 bytes.
      if (p + 28 > end || ((d[p] << 8) | d[p + 1]) !== 1 || ((d[p + 2] << 8) | d[p + 3]) !== ETH_IPV4 || d[p + 4] !== 6 || d[p + 5] !== 4) {
        this.s.malformed++;
        continue;
      }
      this.arp(d, p, batch.timestampsUs[i] / 1000, out);
    }
    this.s.bindings = this.bindings.size;
    return out;
  }

  stats(): ArpWatcherStats {
    return { ...this.s, evidence: { ...this.s.evidence }, bindings: this.bindings.size };
  }

  private arp(d: Uint8Array, p: number, nowMs: number, out: Evidence[]): void {
    const op = (d[p + 6] << 8) | d[p + 7];
    const senderMac = macString(d, p + 8);
    const senderIp = ipv4String(d, p + 14);
    const targetIp = ipv4String(d, p + 24);
    const gratuitous = senderIp === targetIp;
    if (gratuitous) {
      this.s.gratuitous++;
      this.gratuitousCount(senderMac, senderIp, nowMs, out);
    }
    if (op === 1) {
      this.s.requests++;
      if (!gratuitous) {
        this.asked.touch(targetIp, nowMs);
        this.sweep(senderIp, senderMac, targetIp, nowMs, out);
      }
    } else if (op === 2) {
      this.s.replies++;
    } else {
      return; // RARP and friends
    }
    if (senderIp === '0.0.0.0') return; // an address probe claims nothing
    // Link-local addresses are what a device uses until DHCP answers: speaking as one as well is no second identity.
    if (!senderIp.startsWith('169.254.')) this.spread(this.sendersByMac, senderMac, senderIp, nowMs, this.windowMs, 16);
    const prev = this.bindings.get(senderIp);
    const otherOwner = prev && prev.mac !== senderMac && nowMs - prev.lastMs <= this.graceMs ? prev : undefined;

    if (otherOwner) {
      this.raise(out, nowMs, 'arp-ip-conflict', senderIp, [otherOwner.mac, senderMac],
        `${senderIp} claimed by ${senderMac} while bound to ${otherOwner.mac} (seen ${Math.round((nowMs - otherOwner.lastMs) / 1000)} s ago)`);
    } else if (prev && prev.mac !== senderMac) {
      this.s.rebinds++;
    }
    this.flip(senderIp, senderMac, nowMs, out);
    if (op === 2 && !gratuitous) this.answers(senderIp, senderMac, nowMs, out);
    const isGateway = this.gateways.has(senderIp);
    if (isGateway && otherOwner) {
      this.raise(out, nowMs, 'arp-gateway-claim', senderIp, [otherOwner.mac, senderMac],
        `gateway ${senderIp} claimed by ${senderMac}; its binding is ${otherOwner.mac}`);
    }

    if (op === 2 && !gratuitous) {
      const askedAt = this.asked.get(senderIp);
      if (askedAt === undefined || nowMs - askedAt > this.requestWindowMs) this.unsolicitedReply(senderIp, senderMac, nowMs, !!otherOwner, isGateway, out);
    }
    // A conflicting claim does not take the binding over: the first owner keeps it until silent for graceMs.
    if (!otherOwner) this.bindings.touch(senderIp, { mac: senderMac, lastMs: nowMs });
  }

  private unsolicitedReply(ip: string, mac: string, nowMs: number, conflict: boolean, isGateway: boolean, out: Evidence[]): void {
    this.s.unsolicitedReplies++;
    const key = `${ip} ${mac}`;
    let c = this.unsolicited.get(key);
    if (!c || nowMs - c.startMs > this.windowMs) c = { startMs: nowMs, count: 0 };
    c.count++;
    this.unsolicited.touch(key, c);

    let claims = this.claimsByMac.get(mac);
    if (!claims) claims = new Map();
    claims.set(ip, nowMs);
    for (const [k, t] of claims) if (nowMs - t > this.windowMs) claims.delete(k);
    if (claims.size > 16) claims.delete(claims.keys().next().value as string);
    this.claimsByMac.touch(mac, claims);

    if (c.count < this.repeat) return;
    // Repeated unsolicited replies for one IP from a MAC that also speaks as another IP: a host announcing an
    // address that is not its own (arpspoof poisoning one direction, seen where only that direction passes).
    const spoke = this.sendersByMac.get(mac);
    if (spoke && spoke.seen.size >= 2) {
      const own = [...spoke.seen].filter((x) => x !== ip);
      this.raise(out, nowMs, 'arp-mac-multi-ip', ip, [mac],
        `${mac} keeps announcing ${ip} (${c.count} unsolicited replies) while it also speaks as ${own.join(', ')}`,
        { count: c.count, windowMs: this.windowMs, hosts: spoke.seen.size, targets: [...spoke.seen] });
    }
    const several = claims.size >= 2;
    if (!several && !conflict) return;
    const others = [...claims.keys()].filter((k) => k !== ip);
    const why = conflict ? `${ip} belongs to another MAC` : `${mac} also claims ${others.join(', ')}`;
    this.raise(out, nowMs, 'arp-unsolicited-reply', ip, [mac],
      `${c.count} unsolicited ARP replies in ${Math.round((nowMs - c.startMs) / 1000)} s say ${ip} is at ${mac}; ${why}`);
    if (isGateway && several) {
      this.raise(out, nowMs, 'arp-gateway-claim', ip, [mac], `gateway ${ip} claimed by unsolicited replies from ${mac}, which also claims ${others.join(', ')}`);
    }
  }

  /** Grows a capped set in a window; the set's size after adding (or 0 when the window restarted). */
  private spread(map: CappedMap<Spread>, key: string, item: string, nowMs: number, windowMs: number, cap: number): Spread {
    let sp = map.get(key);
    if (!sp || nowMs - sp.startMs > windowMs) sp = { startMs: nowMs, seen: new Set() };
    if (sp.seen.size < cap) sp.seen.add(item);
    map.touch(key, sp);
    return sp;
  }

  private sweep(senderIp: string, senderMac: string, targetIp: string, nowMs: number, out: Evidence[]): void {
    const sp = this.spread(this.asksBySender, senderIp === '0.0.0.0' ? senderMac : senderIp, targetIp, nowMs, this.sweepWindowMs, this.sweepHosts);
    const n = sp.seen.size;
    if (n > this.peak.sweepHosts) this.peak.sweepHosts = n;
    if (n < this.sweepHosts) return;
    this.raise(out, nowMs, 'arp-sweep', senderIp, [senderMac],
      `${senderIp} (${senderMac}) asked for ${n}+ addresses in ${Math.round((nowMs - sp.startMs) / 1000)} s`,
      { count: n, windowMs: this.sweepWindowMs, hosts: n, targets: [...sp.seen].slice(-8) });
  }

  private answers(ip: string, mac: string, nowMs: number, out: Evidence[]): void {
    const sp = this.spread(this.answersByMac, mac, ip, nowMs, this.windowMs, 16);
    const ips = [...sp.seen];
    // Only IPs that are bound to another (live) MAC make this a theft rather than proxy ARP.
    const stolen = ips.filter((x) => {
      const b = this.bindings.get(x);
      return b !== undefined && b.mac !== mac && nowMs - b.lastMs <= this.graceMs;
    });
    const n = stolen.length ? ips.length : 0;
    if (n > this.peak.multiIps) this.peak.multiIps = n;
    if (n < this.multiIps) return;
    this.raise(out, nowMs, 'arp-mac-multi-ip', stolen[0], [mac],
      `${mac} answers for ${ips.join(', ')}; ${stolen.join(', ')} bound to another MAC`,
      { count: n, windowMs: this.windowMs, hosts: n, targets: ips.slice(0, 16) });
  }

  /** Counts changes of the MAC claiming `ip` (whoever the binding table keeps). */
  private flip(ip: string, mac: string, nowMs: number, out: Evidence[]): void {
    let f = this.flipsByIp.get(ip);
    if (!f || nowMs - f.startMs > this.windowMs) f = { startMs: nowMs, mac, flips: 0 };
    const prevMac = f.mac;
    if (f.mac !== mac) {
      f.flips++;
      f.mac = mac;
    }
    this.flipsByIp.touch(ip, f);
    if (f.flips > this.peak.flips) this.peak.flips = f.flips;
    if (f.flips < this.flipLimit) return;
    this.raise(out, nowMs, 'arp-binding-flip', ip, [prevMac, mac],
      `${ip} changed MAC ${f.flips} times in ${Math.round((nowMs - f.startMs) / 1000)} s (${prevMac} ↔ ${mac})`,
      { count: f.flips, windowMs: this.windowMs });
  }

  private gratuitousCount(mac: string, ip: string, nowMs: number, out: Evidence[]): void {
    let c = this.gratuitousByMac.get(mac);
    if (!c || nowMs - c.startMs > this.windowMs) c = { startMs: nowMs, count: 0 };
    c.count++;
    this.gratuitousByMac.touch(mac, c);
    if (c.count > this.peak.gratuitous) this.peak.gratuitous = c.count;
    if (c.count < this.gratuitousStorm) return;
    this.raise(out, nowMs, 'arp-gratuitous-storm', ip, [mac],
      `${c.count} gratuitous ARPs from ${mac} in ${Math.round((nowMs - c.startMs) / 1000)} s`, { count: c.count, windowMs: this.windowMs });
  }

  private raise(out: Evidence[], nowMs: number, kind: Evidence['kind'], ip: string, macs: string[], detail: string,
    extra: Partial<Evidence> = {}): void {
    const key = `${kind} ${ip} ${macs.join(',')}`;
    const last = this.lastRaised.get(key);
    if (last !== undefined && nowMs - last < this.rateLimitMs) {
      this.s.suppressed++;
      return;
    }
    this.lastRaised.touch(key, nowMs);
    this.s.evidence[kind] = (this.s.evidence[kind] ?? 0) + 1;
    out.push({ kind, ip, macs, detail: detail.slice(0, 256), ...extra });
  }
}
