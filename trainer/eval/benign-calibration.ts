/**
 * Thresholds for a false-alert budget: after the macro-F1 tuning on the validation split (thresholds.ts), raise
 * per-class alert thresholds until the model alerts on at most `target` of the flows of benign devices kept out of
 * training (a corpus's benign-validation.csv). The validation split comes from the same devices as the training
 * rows and cannot see what an unseen device costs; held-out devices can. Each step raises one class's threshold to
 * the next grid value, the one that removes the most benign alerts per validation row it turns wrong (+1, so a free
 * step is taken first), so the attack recall given up is the least the greedy search finds.
 */
import { THRESHOLD_GRID, applyThresholds } from './thresholds.ts';

export interface BenignCalibration {
  target: number;
  rows: number;
  /** Share of the held-out benign rows alerted with the tuned thresholds, and after this calibration. */
  before: number;
  after: number;
  /** Validation-split rows decided correctly before and after (what the raise cost). */
  validationCorrectBefore: number;
  validationCorrectAfter: number;
  thresholds: number[];
}

function alerts(pred: Int32Array, normal: number): number {
  let n = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] !== normal) n++;
  return n;
}

function correct(pred: Int32Array, y: Int32Array): number {
  let n = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) n++;
  return n;
}

/**
 * `benign`: class probabilities of the held-out benign rows; `val`/`valY`: of the validation split. Returns the
 * raised thresholds (never lower than `start`); stops when the budget is met or every class is at the grid's top.
 */
export function calibrateOnBenign(
  classes: number, normal: number, start: readonly number[], target: number,
  benign: Float32Array, val: Float32Array, valY: Int32Array,
): BenignCalibration {
  const nb = benign.length / classes;
  const thr = [...start];
  const benignAlerts = () => alerts(applyThresholds(benign, nb, classes, normal, thr), normal);
  const valCorrect = () => correct(applyThresholds(val, valY.length, classes, normal, thr), valY);
  let a = benignAlerts();
  let v = valCorrect();
  const first = { a, v };
  while (nb > 0 && a > target * nb) {
    let best = -1;
    let bestT = 0;
    let bestScore = -Infinity;
    let bestA = a;
    let bestV = v;
    for (let c = 0; c < classes; c++) {
      if (c === normal) continue;
      const next = THRESHOLD_GRID.find((t) => t > thr[c]);
      if (next === undefined) continue;
      const keep = thr[c];
      thr[c] = next;
      const a2 = benignAlerts();
      const v2 = valCorrect();
      thr[c] = keep;
      const score = (a - a2) / (Math.max(0, v - v2) + 1);
      if (score > bestScore) [best, bestT, bestScore, bestA, bestV] = [c, next, score, a2, v2];
    }
    if (best < 0) break;
    thr[best] = bestT;
    a = bestA;
    v = bestV;
  }
  return {
    target, rows: nb,
    before: nb ? first.a / nb : 0, after: nb ? a / nb : 0,
    validationCorrectBefore: first.v / Math.max(1, valY.length), validationCorrectAfter: v / Math.max(1, valY.length),
    thresholds: thr,
  };
}
