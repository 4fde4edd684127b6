/**
 * The hub's counters and latency samples, turned into the periodic stats payload (shared/payloads.ts Stats).
 * Latency samples sit in a fixed ring (the newest `LATENCY_SAMPLES` per interval), so memory stays constant.
 */
import type { StatsSchema } from '../shared/payloads.ts';
import type { z } from 'zod';

const LATENCY_SAMPLES = 16384;

export type StatsInput = z.input<typeof StatsSchema>;

export class HubStats {
  /** Flows classified since start. */
  flows = 0;
  alerts = 0;
  ruleAlerts = 0;
  malformed = 0;
  inputErrors = 0;
  bundlesRejected = 0;
  bundlesLoaded = 0;
  /** MITM verdicts withheld for lack of ARP evidence (Hub option mitmNeedsArpMs). */
  unconfirmed = 0;
  /** Normal samples published and dropped (edge/sampler.ts); reported only when sampling is on. */
  samples: { samples: number; dropped: number } | undefined;
  readonly classCounts: Record<string, number> = {};
  private intervalFlows = 0;
  private intervalStart = performance.now();
  private readonly lat = new Float64Array(LATENCY_SAMPLES);
  private latN = 0;
  private readonly allLat = new Float64Array(LATENCY_SAMPLES);
  private allLatN = 0;
  lastError: string | undefined;

  countFlows(n: number): void {
    this.flows += n;
    this.intervalFlows += n;
  }

  countClass(label: string): void {
    this.classCounts[label] = (this.classCounts[label] ?? 0) + 1;
  }

  /** One flow's arrival → publish (or → verdict for Normal flows) time, in ms. */
  latency(ms: number): void {
    this.lat[this.latN++ % LATENCY_SAMPLES] = ms;
    this.allLat[this.allLatN++ % LATENCY_SAMPLES] = ms;
  }

  /** Percentiles over the newest samples since start (for tests and the bench), or since the last snapshot. */
  percentiles(sinceStart = true): { p50: number; p95: number; p99: number } {
    const n = Math.min(sinceStart ? this.allLatN : this.latN, LATENCY_SAMPLES);
    if (n === 0) return { p50: 0, p95: 0, p99: 0 };
    const s = (sinceStart ? this.allLat : this.lat).slice(0, n).sort();
    const at = (p: number) => Math.round(s[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))] * 1000) / 1000;
    return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
  }

  /** The stats payload for the interval since the last snapshot, which starts a new interval. */
  snapshot(ids: { hub: string; site: string }, gauges: { queueDepth: number; dropped: number; offlineQueued: number }): StatsInput {
    const now = performance.now();
    const ms = Math.max(1, now - this.intervalStart);
    const latencyMs = this.percentiles(false);
    const out: StatsInput = {
      v: 1,
      hub: ids.hub,
      site: ids.site,
      ts: Date.now(),
      intervalMs: Math.round(ms),
      flowsPerSec: Math.round((this.intervalFlows * 1000) / ms),
      flows: this.flows,
      classCounts: { ...this.classCounts },
      latencyMs,
      queueDepth: gauges.queueDepth,
      dropped: gauges.dropped,
      malformed: this.malformed,
      offlineQueued: gauges.offlineQueued,
      inputErrors: this.inputErrors,
      bundlesRejected: this.bundlesRejected,
      unconfirmed: this.unconfirmed,
      ...(this.samples ? { samples: this.samples.samples, samplesDropped: this.samples.dropped } : {}),
      // An error message may quote hostile input: NUL is refused by the payload schema (PostgreSQL TEXT cannot hold it).
      ...(this.lastError ? { lastError: this.lastError.slice(0, 256).replace(/\u0000/g, '\uFFFD') } : {}),
    };
    this.intervalFlows = 0;
    this.intervalStart = now;
    this.latN = 0;
    return out;
  }
}
