/**
 * Alert semantics: the model's verdict on each flow combined with what the watchers know about its hosts.
 *
 * A watcher finding flags a host (the scanner, the brute-forcer, the infected device, the flood's victim) for
 * `holdMs` of capture time after its latest finding. A flow with a flagged endpoint takes the flag's class:
 *   - the model agreed → the verdict is confirmed (source "model");
 *   - the model said Normal or another class → upgraded (source "rule"): a Normal-called flow from a sweeping host
 *     becomes Scan, a reflection the model calls Scan becomes DoS.
 * Only flags raised before the flow reached the hub count (a live hub cannot alert in the past), so a replayed
 * capture gives the same verdicts as the live traffic would. When both endpoints are flagged the more severe class
 * wins (DoS, Mirai, Scan, MITM ARP Spoofing), except that a brute-force finding on a host already flagged as a
 * scanner (or the reverse) leaves it a scanner: nmap's version probes and scripts look like a brute force.
 * Flows of flagged hosts are summarised: one alert per (class, host) per `ruleBurstMs` with `count`, so a flood of
 * 37,000 flows gives a handful of alerts. Unflagged flows keep the model's verdict, and a model MITM verdict still
 * needs ARP evidence on the hub within `mitmNeedsArpMs` (hub option; the MITM gate is the hub-wide case of the
 * same idea: at the flow level a relayed session looks like a direct one).
 *
 * The other model verdicts on unflagged flows need a little evidence from the packets too (ModelGate), because the
 * model sees one flow and some legitimate flows look like one probe: a session's tail after the meter ended it (a
 * server's late segment answered by a reset), a device retrying a closed port every few seconds, a discovery burst
 * (SSDP NOTIFY, mDNS) to a multicast group. A Scan verdict alerts when an endpoint of the flow probed several
 * targets (a scan is many targets, however slow); a verdict on a flow to a group address does not alert (floods
 * and scans are aimed at hosts; the flood watcher still sees volume).
 */
import { DOS, MIRAI, MITM, SCAN, type Finding } from './watchers/finding.ts';
import type { Watchers } from './watchers/index.ts';
import { ipNumber, isBroadcastLike } from './watchers/packet-view.ts';

export interface VerdictOptions {
  /** How long a finding keeps its host flagged, in capture time (ms). Default 10 min. */
  holdMs?: number;
  /** Hosts flagged at once (oldest dropped past it). Default 4096. */
  maxHosts?: number;
  /**
   * An unflagged model Scan verdict alerts only when one of the flow's endpoints probed at least this many
   * targets (the scan watcher's failed or unanswered (host, port) attempts, echo-swept hosts and odd probes in its
   * windows). Default 4; 0 = the model alone decides.
   */
  scanNeedsProbes?: number;
  /** Alert unflagged model verdicts on flows to a multicast or broadcast address (x.y.z.255 too). Default false. */
  groupVerdicts?: boolean;
}

export interface Flag {
  /** The flagged host (IPv4 text). */
  host: string;
  class: string;
  rank: number;
  kind: string;
  /** A scanning tool's own signature was seen (a sweep, odd probes): its brute-force-like sessions are scripts. */
  tool: boolean;
  /** performance.now() when first raised: flows that arrived before it are not upgraded. */
  since: number;
  /** Capture time (µs) until which the flag holds. */
  untilUs: number;
}

const RANK: Record<string, number> = { [DOS]: 4, [MIRAI]: 3, [SCAN]: 2, [MITM]: 1 };
/** Findings only a scanning tool produces (nmap, masscan): a host that raised one is running a scanner. */
const TOOL_KINDS = new Set(['scan-sweep', 'scan-echo-sweep', 'scan-odd-flags']);

/**
 * The class a flagged flow is alerted with: the flag's, except that a flood flag (DoS) keeps a model verdict of
 * Mirai — IoTID20 files a bot's floods under Mirai, and the model may tell the bot's flood from a flooding tool's
 * where the watcher only sees the volume.
 */
export function flaggedClass(flagClass: string, model: string): string {
  return flagClass === DOS && model === MIRAI ? MIRAI : flagClass;
}

export class HostFlags {
  private readonly flags = new Map<string, Flag>();
  private readonly holdUs: number;
  private readonly max: number;
  /** Latest capture time seen (µs): flags expire against it. */
  nowUs = 0;
  evicted = 0;

  constructor(opts: VerdictOptions = {}) {
    this.holdUs = (opts.holdMs ?? 600_000) * 1000;
    this.max = opts.maxHosts ?? 4096;
  }

  /**
   * Records a finding; a more severe class replaces a flag, a finding of the same class extends it. Returns the
   * class the finding stands for (its own, or Scan for a scanner's brute-force-like sessions).
   */
  add(f: Finding, now = performance.now()): string {
    if (f.tUs > this.nowUs) this.nowUs = f.tUs;
    let cls = f.class;
    const old = this.flags.get(f.host);
    const live = old && old.untilUs >= this.nowUs ? old : undefined;
    // A host that sweeps ports or sends OS-detection probes and also opens many alike sessions is a scanning tool
    // running its scripts (nmap -A, -sV), not a password guesser: it stays (or becomes) a scanner. A port scan
    // that only found the service it then attacks (a half-open probe, then a brute force) is the brute force.
    if (live && live.class === SCAN && live.tool && f.evidence.kind === 'brute-force') cls = SCAN;
    if (live && live.kind === 'brute-force' && (f.evidence.kind === 'scan-odd-flags' || f.evidence.kind === 'scan-sweep')) {
      this.flags.delete(f.host);
    }
    const rank = RANK[cls] ?? 0;
    const cur = this.flags.get(f.host);
    if (cur && cur.untilUs >= this.nowUs && cur.rank > rank) return cls;
    const keep = cur && cur.class === cls && cur.untilUs >= this.nowUs;
    const tool = (keep && cur.tool) || TOOL_KINDS.has(f.evidence.kind);
    this.flags.delete(f.host);
    this.flags.set(f.host, {
      host: f.host, class: cls, rank, kind: keep ? cur.kind : f.evidence.kind, tool, since: keep ? cur.since : now, untilUs: f.tUs + this.holdUs,
    });
    if (this.flags.size > this.max) {
      this.flags.delete(this.flags.keys().next().value as string);
      this.evicted++;
    }
    return cls;
  }

  /** The flag that applies to a flow that arrived at `arrival` (performance.now()), or undefined. */
  forFlow(src: string, dst: string, arrival: number): Flag | undefined {
    if (this.flags.size === 0) return undefined;
    const a = this.live(src, arrival);
    const b = this.live(dst, arrival);
    return a && (!b || a.rank >= b.rank) ? a : b;
  }

  private live(host: string, arrival: number): Flag | undefined {
    const f = this.flags.get(host);
    return f && f.since <= arrival && f.untilUs >= this.nowUs ? f : undefined;
  }

  get size(): number {
    return this.flags.size;
  }
}

/**
 * Model verdicts without a flag that the packets do not back (see the module comment). Only packet input gives
 * the watchers anything to say: with flow records (CSV) every verdict passes.
 */
export class ModelGate {
  private readonly needProbes: number;
  private readonly group: boolean;
  /** Verdicts withheld, per class. */
  readonly withheld: Record<string, number> = {};

  constructor(private readonly watchers: Watchers, opts: VerdictOptions = {}) {
    this.needProbes = opts.scanNeedsProbes ?? 4;
    this.group = opts.groupVerdicts ?? false;
  }

  /** True when the model's `cls` verdict on src → dst may alert. */
  passes(cls: string, src: string, dst: string): boolean {
    const w = this.watchers;
    if (w.packets === 0) return true;
    const a = ipNumber(src);
    const b = ipNumber(dst);
    // IPv6 and anything else the watchers do not read: the model alone decides.
    if (a < 0 || b < 0) return true;
    let ok = true;
    if (!this.group && isBroadcastLike(b)) ok = false;
    else if (cls === SCAN && this.needProbes > 0 && w.scan) {
      ok = w.scan.probes(a, w.lastUs) >= this.needProbes || w.scan.probes(b, w.lastUs) >= this.needProbes;
    }
    if (!ok) this.withheld[cls] = (this.withheld[cls] ?? 0) + 1;
    return ok;
  }
}
