/**
 * The rollout's decision rule, as plain arithmetic on counts (unit-tested in test/aggregator/rollout-decision.test.ts).
 *
 * For each canary, over the watch window W (hub timestamps, model alerts only: rule alerts come from the watchers,
 * which a bundle does not change):
 *   rate      = the canary's model verdicts in W, per hour
 *   baseline  = its own verdicts in the B before the rollout started (B = --baseline, default 1 h), per hour
 *   fleet     = the median, over the other hubs online (or degraded) at the end of W, of their verdicts in W per hour
 *   floor     = --min-alerts verdicts in W, per hour (a quiet hub going from 0 to 2 alerts is not a regression)
 *   limit     = max(ratio × baseline, ratio × fleet, floor)           ratio = --max-rate-ratio (default 2)
 *   fpShare   = alerts in W whose effective mark is false-positive / alerts in W (0 without marks)
 * Roll back when any canary has rate > limit, or fpShare − (the same share in B) > --max-fp-share (default 0.1),
 * or (decided elsewhere, see rollout.ts) a canary refused the bundle, did not report it in time, or went offline,
 * degraded or silent. Otherwise promote. Taking the max means a canary is only called worse when it alerts more than
 * both its own past and its peers allow: a fleet-wide attack during W raises the fleet median too, and a hub that
 * always alerted a lot is compared with itself.
 */

export const HOUR_MS = 3_600_000;

export interface DecisionLimits {
  /** Alert rate allowed, as a multiple of the canary's own baseline and of the fleet median. */
  maxRateRatio: number;
  /** Largest rise allowed in the share of alerts marked false positive (0.1 = 10 points). */
  maxFpShare: number;
  /** Verdicts in the window below which the rate never counts as a regression. */
  minAlerts: number;
}

export const DEFAULT_LIMITS: DecisionLimits = { maxRateRatio: 2, maxFpShare: 0.1, minAlerts: 5 };

export interface WindowCounts {
  /** Model verdicts (sum of alert `count`). */
  verdicts: number;
  /** Alert messages (what operators mark). */
  alerts: number;
  /** Alert messages whose effective mark is false-positive. */
  falsePositives: number;
}

export interface CanaryInput {
  site: string;
  hub: string;
  window: WindowCounts;
  baseline: WindowCounts;
}

export interface DecisionInput {
  windowMs: number;
  baselineMs: number;
  canaries: CanaryInput[];
  /** Verdicts in the window of every other hub seen during it. */
  fleet: { site: string; hub: string; verdicts: number }[];
  limits: DecisionLimits;
}

export interface CanaryVerdict {
  site: string;
  hub: string;
  perHour: number;
  baselinePerHour: number;
  limitPerHour: number;
  fpShare: number;
  baselineFpShare: number;
  window: WindowCounts;
  baseline: WindowCounts;
  ok: boolean;
  reasons: string[];
}

export interface Decision {
  action: 'promote' | 'rollback';
  reasons: string[];
  windowMs: number;
  baselineMs: number;
  limits: DecisionLimits;
  fleetHubs: number;
  fleetMedianPerHour: number | null;
  floorPerHour: number;
  canaries: CanaryVerdict[];
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

export const perHour = (count: number, ms: number): number => (ms > 0 ? (count * HOUR_MS) / ms : 0);

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const share = (c: WindowCounts): number => (c.alerts > 0 ? c.falsePositives / c.alerts : 0);

/** Applies the rule above; every number behind the verdict is in the result (stored with the rollout). */
export function decide(input: DecisionInput): Decision {
  const { windowMs, baselineMs, limits } = input;
  const fleetRates = input.fleet.map((h) => perHour(h.verdicts, windowMs));
  const fleetMedian = median(fleetRates);
  const floor = perHour(limits.minAlerts, windowMs);
  const canaries = input.canaries.map((c): CanaryVerdict => {
    const rate = perHour(c.window.verdicts, windowMs);
    const base = perHour(c.baseline.verdicts, baselineMs);
    const limit = Math.max(limits.maxRateRatio * base, fleetMedian === null ? 0 : limits.maxRateRatio * fleetMedian, floor);
    const fp = share(c.window);
    const fpBase = share(c.baseline);
    const reasons: string[] = [];
    const name = `${c.site}/${c.hub}`;
    if (rate > limit) {
      reasons.push(`${name}: ${r3(rate)} alerts/h > limit ${r3(limit)} (= max(${limits.maxRateRatio} × own baseline ${r3(base)}, ` +
        `${limits.maxRateRatio} × fleet median ${fleetMedian === null ? 'n/a' : r3(fleetMedian)}, floor ${r3(floor)}))`);
    }
    if (fp - fpBase > limits.maxFpShare) {
      reasons.push(`${name}: false-positive share ${r3(fp)} is ${r3(fp - fpBase)} above its baseline ${r3(fpBase)} (max rise ${limits.maxFpShare})`);
    }
    return {
      site: c.site, hub: c.hub, perHour: r3(rate), baselinePerHour: r3(base), limitPerHour: r3(limit), fpShare: r3(fp),
      baselineFpShare: r3(fpBase), window: c.window, baseline: c.baseline, ok: reasons.length === 0, reasons,
    };
  });
  const reasons = canaries.flatMap((c) => c.reasons);
  return {
    action: reasons.length ? 'rollback' : 'promote',
    reasons: reasons.length ? reasons : ['every canary within its limits'],
    windowMs, baselineMs, limits, fleetHubs: input.fleet.length,
    fleetMedianPerHour: fleetMedian === null ? null : r3(fleetMedian), floorPerHour: r3(floor), canaries,
  };
}
