/**
 * Per-class alert thresholds, the hub's decision rule (shared/manifest.ts `thresholds`): the predicted class is
 * the arg-max, but an attack class whose probability is below its threshold falls back to Normal. A model
 * trained on imbalanced data without class weights leans to the majority; raising a threshold trades that
 * class's recall for Normal's. Thresholds are tuned on the validation split (never the test split) to maximise
 * macro-F1, by coordinate search over a fixed grid, keeping 0.5 unless a higher value does strictly better.
 */
import { computeMetrics } from './metrics.ts';

export const THRESHOLD_GRID: readonly number[] = [
  0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999,
];

/** Decisions under thresholds (index = class; the Normal class's own entry is ignored). */
export function applyThresholds(proba: Float32Array, rows: number, classes: number, normal: number, thr: ArrayLike<number>): Int32Array {
  const out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (proba[i * classes + c] > proba[i * classes + best]) best = c;
    out[i] = best !== normal && proba[i * classes + best] < thr[best] ? normal : best;
  }
  return out;
}

export interface TunedThresholds {
  thresholds: number[];
  /** Validation macro-F1 with plain arg-max and with the tuned thresholds. */
  valMacroF1Argmax: number;
  valMacroF1: number;
}

export function tuneThresholds(
  labels: readonly string[], proba: Float32Array, y: Int32Array, normal: number, passes = 2,
): TunedThresholds {
  const C = labels.length;
  const rows = y.length;
  const thr = new Array<number>(C).fill(0.5);
  const score = () => computeMetrics(labels, y, applyThresholds(proba, rows, C, normal, thr)).macroF1;
  const base = score();
  let best = base;
  if (normal < 0) return { thresholds: thr, valMacroF1Argmax: base, valMacroF1: base };
  for (let p = 0; p < passes; p++) {
    let changed = false;
    for (let c = 0; c < C; c++) {
      if (c === normal) continue;
      const keep = thr[c];
      let bestT = keep;
      for (const t of THRESHOLD_GRID) {
        thr[c] = t;
        const s = score();
        if (s > best + 1e-9) {
          best = s;
          bestT = t;
        }
      }
      thr[c] = bestT;
      if (bestT !== keep) changed = true;
    }
    if (!changed) break;
  }
  return { thresholds: thr, valMacroF1Argmax: base, valMacroF1: best };
}
