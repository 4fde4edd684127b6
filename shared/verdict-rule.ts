/**
 * How a bundle's output becomes a verdict, the one rule the hub (edge/classifier.ts) and checks away from it
 * (shared/score.ts, a rollout's pre-flight) must share: the first largest probability wins, and only at or above
 * its class's threshold (manifest `thresholds`); below it the row falls back to Normal, or to -1, "unsure", when the
 * model has no Normal class.
 */
import { NORMAL_LABEL } from './labels.ts';
import type { BundleManifest } from './manifest.ts';

export interface VerdictRule {
  /** Per label index, the minimum probability for that class (0 where the manifest names none). */
  readonly thresholds: Float32Array;
  /** Index of Normal, -1 when the model has none. */
  readonly normal: number;
}

export function verdictRule(m: Pick<BundleManifest, 'labels' | 'thresholds'>): VerdictRule {
  return { thresholds: Float32Array.from(m.labels, (l) => m.thresholds[l] ?? 0), normal: m.labels.indexOf(NORMAL_LABEL) };
}

/**
 * Decides `rows` rows of `probs` (row-major, thresholds.length classes per row) into `classIdx[at + i]`, and their
 * top probability into `confidence[at + i]` when given.
 */
export function decideRows(
  rule: VerdictRule, probs: Float32Array, rows: number, classIdx: Int32Array, at = 0, confidence?: Float32Array,
): void {
  const c = rule.thresholds.length;
  for (let i = 0; i < rows; i++) {
    const o = i * c;
    let best = 0;
    let bp = probs[o];
    for (let k = 1; k < c; k++) {
      if (probs[o + k] > bp) {
        bp = probs[o + k];
        best = k;
      }
    }
    if (confidence) confidence[at + i] = bp;
    classIdx[at + i] = bp >= rule.thresholds[best] ? best : rule.normal;
  }
}
