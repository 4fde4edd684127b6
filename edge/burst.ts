/**
 * Optional burst summarising (`--burst-ms`): a flood yields thousands of identical verdicts. The first verdict
 * of a (class, src, dst, dport, proto) key is published at once (no added latency); further ones within the
 * window are only counted, and when the window closes one alert with `count` = that number stands for them.
 * The source port is left out of the key (floods randomise it); the summary carries the last one seen.
 * A caller may key windows itself: the hub keys flows of a host flagged by a watcher by (class, host), so one
 * alert per finding per window stands for all of them (edge/verdicts.ts).
 * The table is bounded: past `maxKeys` open windows, verdicts are published individually (never dropped).
 */
import type { AlertInput } from '../shared/payloads.ts';

interface Window {
  opened: number;
  count: number;
  last: AlertInput | undefined;
}

export class BurstSummariser {
  private readonly windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly windowMs: number,
    /** Called with each summary when its window closes. */
    private readonly emit: (a: AlertInput) => void,
    private readonly maxKeys = 10_000,
  ) {}

  /** True when `a` should be published now; false when it was folded into an open window. */
  offer(a: AlertInput, key?: string): boolean {
    const f = a.flow;
    key ??= `${a.class}|${f.src}|${f.dst}|${f.dport}|${f.proto}|${a.source ?? 'model'}`;
    const w = this.windows.get(key);
    const now = performance.now();
    if (w && now - w.opened < this.windowMs) {
      w.count++;
      w.last = a;
      return false;
    }
    if (w) this.close(key, w);
    if (this.windows.size >= this.maxKeys) return true;
    this.windows.set(key, { opened: now, count: 0, last: undefined });
    this.timer ??= setInterval(() => this.sweep(false), Math.max(10, this.windowMs / 2)).unref();
    return true;
  }

  private close(key: string, w: Window): void {
    this.windows.delete(key);
    if (w.count > 0 && w.last) this.emit({ ...w.last, count: w.count });
  }

  /** Emits every window past its end (or all, when flushing at shutdown). */
  sweep(all: boolean): void {
    const now = performance.now();
    for (const [k, w] of this.windows) if (all || now - w.opened >= this.windowMs) this.close(k, w);
    if (this.windows.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get open(): number {
    return this.windows.size;
  }
}
