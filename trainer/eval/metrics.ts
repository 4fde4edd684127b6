/**
 * Classification metrics from a confusion matrix. Every ratio with a zero denominator is 0 (never NaN), so a
 * class that is never predicted or never present still yields numbers a JSON report and a table can hold.
 * F1 is the harmonic mean 2·P·R/(P+R); the paper's F1 row printed P·R/(P+R), half of it.
 */
import { IdsError } from '../../shared/errors.ts';

export interface ClassReport {
  /** One-vs-rest accuracy: (TP + TN) / all. */
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Metrics {
  labels: string[];
  /** confusion[true][predicted], counts. */
  confusion: number[][];
  accuracy: number;
  macroF1: number;
  weightedF1: number;
  macroPrecision: number;
  macroRecall: number;
  perClass: Record<string, ClassReport>;
  total: number;
}

const ratio = (a: number, b: number): number => (b > 0 ? a / b : 0);

export function confusionMatrix(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, classes: number): number[][] {
  if (yTrue.length !== yPred.length) {
    throw new IdsError('BAD_OPTION', `metrics: ${yTrue.length} true labels but ${yPred.length} predictions`);
  }
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i];
    const p = yPred[i];
    if (!(t >= 0 && t < classes) || !(p >= 0 && p < classes)) {
      throw new IdsError('BAD_OPTION', `metrics: row ${i} has class ${t}/${p} outside 0..${classes - 1}`);
    }
    m[t][p]++;
  }
  return m;
}

export function metricsFromConfusion(labels: readonly string[], confusion: number[][]): Metrics {
  const k = labels.length;
  let total = 0;
  let correct = 0;
  const rowSum = new Array<number>(k).fill(0);
  const colSum = new Array<number>(k).fill(0);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const v = confusion[i][j];
      total += v;
      rowSum[i] += v;
      colSum[j] += v;
      if (i === j) correct += v;
    }
  }
  const perClass: Record<string, ClassReport> = {};
  let macroF1 = 0;
  let macroP = 0;
  let macroR = 0;
  let weightedF1 = 0;
  for (let c = 0; c < k; c++) {
    const tp = confusion[c][c];
    const fp = colSum[c] - tp;
    const fn = rowSum[c] - tp;
    const tn = total - tp - fp - fn;
    const precision = ratio(tp, tp + fp);
    const recall = ratio(tp, tp + fn);
    const f1 = ratio(2 * precision * recall, precision + recall);
    perClass[labels[c]] = { accuracy: ratio(tp + tn, total), precision, recall, f1, support: rowSum[c] };
    macroF1 += f1 / k;
    macroP += precision / k;
    macroR += recall / k;
    weightedF1 += f1 * ratio(rowSum[c], total);
  }
  return {
    labels: [...labels],
    confusion: confusion.map((r) => [...r]),
    accuracy: ratio(correct, total),
    macroF1,
    weightedF1,
    macroPrecision: macroP,
    macroRecall: macroR,
    perClass,
    total,
  };
}

export function computeMetrics(labels: readonly string[], yTrue: ArrayLike<number>, yPred: ArrayLike<number>): Metrics {
  return metricsFromConfusion(labels, confusionMatrix(yTrue, yPred, labels.length));
}

/** Arg-max of each row of a rows×classes probability matrix. */
export function argmaxRows(proba: Float32Array, rows: number, classes: number): Int32Array {
  const out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0;
    let bv = -Infinity;
    for (let c = 0; c < classes; c++) {
      const v = proba[i * classes + c];
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}
