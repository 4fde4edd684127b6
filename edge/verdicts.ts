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
 */
import { DOS, MIRAI, MITM, SCAN, type Finding } from './watchers/finding.ts';

export interface VerdictOptions {
  /** How long a finding keeps its host flagged, in capture time (ms). Default 10 min. */
  holdMs?: number;
  /** Hosts flagged at once (oldest dropped past it). Default 4096. */
  maxHosts?: number;
}

export interface Flag {
  /** The flagged host (IPv4 text). */
  host: string;
  class: string;
  rank: number;
  kind: string;
  /** performance.now() when first raised: flows that arrived before it are not upgraded. */
  since: number;
  /** Capture time (µs) until which the flag holds. */
  untilUs: number;
}

const RANK: Record<string, number> = { [DOS]: 4, [MIRAI]: 3, [SCAN]: 2, [MITM]: 1 };

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
    // running its scripts (nmap -A, -sV), not a password guesser: it stays (or becomes) a scanner.
    if (live && live.class === SCAN && f.evidence.kind === 'brute-force') cls = SCAN;
    if (live && live.kind === 'brute-force' && (f.evidence.kind === 'scan-odd-flags' || f.evidence.kind === 'scan-sweep')) {
      this.flags.delete(f.host);
    }
    const rank = RANK[cls] ?? 0;
    const cur = this.flags.get(f.host);
    if (cur && cur.untilUs >= this.nowUs && cur.rank > rank) return cls;
    const keep = cur && cur.class === cls && cur.untilUs >= this.nowUs;
    this.flags.delete(f.host);
    this.flags.set(f.host, { host: f.host, class: cls, rank, kind: keep ? cur.kind : f.evidence.kind, since: keep ? cur.since : now, untilUs: f.tUs + this.holdUs });
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
