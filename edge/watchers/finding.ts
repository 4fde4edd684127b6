/**
 * What a watcher reports, and the rate limiter every watcher reports through: one finding per (kind, host) per
 * `everyMs` of capture time, so a flood or a long scan gives a handful of findings, each with the count of
 * events it stands for. Capture time (not wall time) keeps a replayed capture's findings the same run to run.
 */
import type { Evidence } from '../../shared/payloads.ts';
import { HostTable } from './host-table.ts';

export interface Finding {
  /** Alert class, in IoTID20's vocabulary (Scan, DoS, Mirai, MITM ARP Spoofing). */
  class: string;
  /** The host whose flows the finding upgrades (verdicts.ts): the scanner, brute-forcer, or victim. */
  host: string;
  role: 'source' | 'victim';
  evidence: Evidence;
  /** Capture time of the finding (µs). */
  tUs: number;
}

export const SCAN = 'Scan';
export const DOS = 'DoS';
export const MIRAI = 'Mirai';
export const MITM = 'MITM ARP Spoofing';

export class Reporter {
  private readonly last: HostTable;
  suppressed = 0;
  readonly raised: Record<string, number> = {};

  constructor(private readonly everyUs: number, capacity = 1024) {
    // nums: [last raised µs]
    this.last = new HostTable(capacity, 1, 0);
  }

  /** True when a finding of `kind` about `host` (a number: IPv4, or a MAC's low bits) may be raised now. */
  allow(kindIdx: number, host: number, tUs: number): boolean {
    const s = this.last.get(kindIdx, host, 0, tUs);
    const prev = this.last.num[s];
    if (prev !== 0 && tUs - prev < this.everyUs) {
      this.suppressed++;
      return false;
    }
    this.last.num[s] = tUs || 1;
    return true;
  }

  count(kind: string): void {
    this.raised[kind] = (this.raised[kind] ?? 0) + 1;
  }
}
