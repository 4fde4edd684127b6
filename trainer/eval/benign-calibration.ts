/**
 * Thresholds for a false-alert budget: after the macro-F1 tuning on the validation split (thresholds.ts), raise
 * per-class alert thresholds until the model alerts on at most `target` of the flows of benign devices kept out of
 * training (a corpus's benign-validation.csv). The validation split comes from the same devices as the training
 * rows and cannot see what an unseen device costs; held-out devices can.
 *
 * Attacks must stay caught, so a raise is allowed only while every attack class keeps its validation-split recall
 * within `maxRecallDrop` of where it started: the budget may be missed (reported), a class is never given up. Each
 * step moves one class's threshold to any higher grid value (a plateau that removes nothing is jumped), choosing
 * the step that removes the most benign alerts per validation row it turns wrong (+1).
 */
import { THRESHOLD_GRID, applyThresholds } from './thresholds.ts';

export interface BenignCalibration {
  target: number;
  maxRecallDrop: number;
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

/** Per class: validation rows of that class decided right; and all rows decided right. */
function validationHits(pred: Int32Array, y: Int32Array, classes: number): { perClass: number[]; correct: number } {
  const perClass = new Array<number>(classes).fill(0);
  let correct = 0;
  for (let i = 0; i < y.length; i++) {
    if (pred[i] !== y[i]) continue;
    perClass[y[i]]++;
    correct++;
  }
  return { perClass, correct };
}

/**
 * `benign`: class probabilities of the held-out benign rows; `val`/`valY`: of the validation split. Returns the
 * raised thresholds (never lower than `start`).
 */
export function calibrateOnBenign(
  classes: number, normal: number, start: readonly number[], target: number,
  benign: Float32Array, val: Float32Array, valY: Int32Array, maxRecallDrop = 0.02,
): BenignCalibration {
  const nb = benign.length / classes;
  const thr = [...start];
  const support = new Array<number>(classes).fill(0);
  for (const c of valY) support[c]++;
  const benignAlerts = () => alerts(applyThresholds(benign, nb, classes, normal, thr), normal);
  const hits = () => validationHits(applyThresholds(val, valY.length, classes, normal, thr), valY, classes);
  const first = { a: benignAlerts(), h: hits() };
  // The least validation hits each attack class may keep.
  const floor = first.h.perClass.map((h, c) => (c === normal ? 0 : h - maxRecallDrop * support[c]));
  let a = first.a;
  let h = first.h;
  while (nb > 0 && a > target * nb) {
    let best: { c: number; t: number; a: number; h: typeof h; score: number } | undefined;
    for (let c = 0; c < classes; c++) {
      if (c === normal) continue;
      const keep = thr[c];
      for (const t of THRESHOLD_GRID) {
        if (t <= keep) continue;
        thr[c] = t;
        const h2 = hits();
        if (h2.perClass.some((x, k) => x < floor[k])) break; // higher values only cost more
        const a2 = benignAlerts();
        const score = (a - a2) / (Math.max(0, h.correct - h2.correct) + 1);
        if (a2 < a && (!best || score > best.score)) best = { c, t, a: a2, h: h2, score };
      }
      thr[c] = keep;
    }
    if (!best) break;
    thr[best.c] = best.t;
    a = best.a;
    h = best.h;
  }
  return {
    target, maxRecallDrop, rows: nb,
    before: nb ? first.a / nb : 0, after: nb ? a / nb : 0,
    validationCorrectBefore: first.h.correct / Math.max(1, valY.length), validationCorrectAfter: h.correct / Math.max(1, valY.length),
    thresholds: thr,
  };
}
