/**
 * Optional burst summarising (`--burst-ms`): a flood yields thousands of identical verdicts. The first verdict
 * of a (class, src, dst, dport, proto) key is published at once (no added latency); further ones within the
 * window are only counted, and when the window closes one alert with `count` = that number stands for them.
 * The source port is left out of the key (floods randomise it); the summary carries the last one seen.
 * A caller may key windows itself: the hub keys flows of a host flagged by a watcher by (class, host), so one
 * alert per finding per window stands for all of them (edge/verdicts.ts).
 * The table is bounded: past `maxKeys` open windows, verdicts are published individually (never dropped).
 * With features on (hub --attach-features) a fold also copies the flow's raw vector into its window (one
 * Float32Array per window that folds, reused for every fold), so the summary carries the vector of the flow
 * whose key and source port it shows: the last one.
 */
import type { AlertInput } from '../shared/payloads.ts';

interface Window {
  opened: number;
  count: number;
  last: AlertInput | undefined;
  /** The last folded flow's raw features (only when offered with them). */
  vec: Float32Array | undefined;
}

export class BurstSummariser {
  private readonly windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly windowMs: number,
    /** Called with each summary when its window closes (and the last folded flow's features, if offered). */
    private readonly emit: (a: AlertInput, features: Float32Array | undefined) => void,
    private readonly maxKeys = 10_000,
  ) {}

  /**
   * True when `a` should be published now; false when it was folded into an open window. `features` (the flow's
   * raw vector, a reused view) is copied only when the alert is folded.
   */
  offer(a: AlertInput, key?: string, features?: Float32Array): boolean {
    const f = a.flow;
    key ??= `${a.class}|${f.src}|${f.dst}|${f.dport}|${f.proto}|${a.source ?? 'model'}`;
    const w = this.windows.get(key);
    const now = performance.now();
    if (w && now - w.opened < this.windowMs) {
      w.count++;
      w.last = a;
      if (features) {
        if (w.vec?.length !== features.length) w.vec = new Float32Array(features.length);
        w.vec.set(features);
      } else w.vec = undefined;
      return false;
    }
    if (w) this.close(key, w);
    if (this.windows.size >= this.maxKeys) return true;
    this.windows.set(key, { opened: now, count: 0, last: undefined, vec: undefined });
    this.timer ??= setInterval(() => this.sweep(false), Math.max(10, this.windowMs / 2)).unref();
    return true;
  }

  private close(key: string, w: Window): void {
    this.windows.delete(key);
    if (w.count > 0 && w.last) this.emit({ ...w.last, count: w.count }, w.vec);
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
