/**
 * What the dashboard's live stream carries: alert counts per second by class (with a few minutes of history so
 * a page that opens has a chart at once), incidents, hub status changes and the fleet totals. One bus per
 * aggregator; every SSE connection subscribes to it.
 */
import { EventEmitter } from 'node:events';
import type { Incident } from '../shared/payloads.ts';

export interface RatePoint {
  /** Start of the second, ms. */
  t: number;
  /** Alerts stored in that second, per class. */
  classes: Record<string, number>;
}

export interface HubEvent {
  site: string;
  hub: string;
  state: 'online' | 'degraded' | 'offline' | 'unknown';
  bundle?: string;
  lastSeen: number;
}

export interface TotalsEvent {
  alerts: number;
  classes: Record<string, number>;
  hubsOnline: number;
  hubsOffline: number;
  openIncidents: number;
  invalid: number;
}

export interface LiveEvents {
  rate: [RatePoint];
  incident: [Incident];
  hub: [HubEvent];
  totals: [TotalsEvent];
}

export class LiveBus extends EventEmitter<LiveEvents> {
  private current: RatePoint | undefined;
  private readonly history: RatePoint[] = [];

  constructor(private readonly now: () => number = Date.now, private readonly keepSeconds = 600) {
    super();
    this.setMaxListeners(1000);
  }

  /** Counts stored alerts into the current second. */
  count(classes: Iterable<string>): void {
    const sec = Math.floor(this.now() / 1000) * 1000;
    if (!this.current || this.current.t !== sec) this.roll(sec);
    const c = this.current!.classes;
    for (const k of classes) c[k] = (c[k] ?? 0) + 1;
  }

  /** Closes finished seconds (including empty ones, so the chart shows silence as zero) and emits them. */
  tick(): void {
    const sec = Math.floor(this.now() / 1000) * 1000;
    if (!this.current) this.current = { t: sec, classes: {} };
    else if (this.current.t < sec) this.roll(sec);
  }

  recent(): RatePoint[] {
    return [...this.history];
  }

  private roll(sec: number): void {
    const prev = this.current;
    if (prev) {
      // Emit the finished second and zero-filled gaps up to (not including) the new one.
      const last = this.history.length ? this.history[this.history.length - 1].t : prev.t - 1000;
      for (let t = Math.max(last + 1000, prev.t - this.keepSeconds * 1000); t < prev.t; t += 1000) this.push({ t, classes: {} });
      this.push(prev);
      for (let t = Math.max(prev.t + 1000, sec - this.keepSeconds * 1000); t < sec; t += 1000) this.push({ t, classes: {} });
    }
    this.current = { t: sec, classes: {} };
  }

  private push(p: RatePoint): void {
    this.history.push(p);
    while (this.history.length > this.keepSeconds) this.history.shift();
    this.emit('rate', p);
  }
}
