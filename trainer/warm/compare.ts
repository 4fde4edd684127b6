/**
 * The fine-tune report's core: the init model and the fine-tuned model scored side by side on the same rows, as a
 * hub decides (the init model's per-class thresholds for both, so a change in the figures is the weights' doing).
 */
import { NORMAL_LABEL } from '../../shared/labels.ts';
import { argmaxRows, computeMetrics } from '../eval/metrics.ts';
import { applyThresholds } from '../eval/thresholds.ts';

export interface Scores {
  rows: number;
  accuracy: number;
  /** Mean F1 over the classes these rows hold (a class with no row here has no F1 to average). */
  macroF1: number;
  perClassRecall: Record<string, number>;
  support: Record<string, number>;
  /** Share of the Normal rows given another class (a hub's false alerts); null without Normal rows. */
  normalFalseAlertRate: number | null;
  /** Accuracy by plain arg-max (no thresholds): tells a weight change from a threshold that no longer fits. */
  accuracyArgmax: number;
  confusion: number[][];
}

export function decide(proba: Float32Array, rows: number, labels: readonly string[], thresholds: Record<string, number> | null): Int32Array {
  const C = labels.length;
  const normal = labels.indexOf(NORMAL_LABEL);
  const thr = labels.map((l) => thresholds?.[l] ?? 0);
  return applyThresholds(proba, rows, C, normal, thr);
}

export function score(labels: readonly string[], y: ArrayLike<number>, pred: ArrayLike<number>, proba: Float32Array): Scores {
  const m = computeMetrics(labels, y, pred);
  const present = labels.filter((l) => m.perClass[l].support > 0);
  const normal = labels.indexOf(NORMAL_LABEL);
  let nRows = 0;
  let nAlerts = 0;
  for (let i = 0; i < y.length; i++) {
    if (y[i] !== normal) continue;
    nRows++;
    if (pred[i] !== normal) nAlerts++;
  }
  return {
    rows: y.length,
    accuracy: m.accuracy,
    macroF1: present.length ? present.reduce((s, l) => s + m.perClass[l].f1, 0) / present.length : 0,
    perClassRecall: Object.fromEntries(present.map((l) => [l, m.perClass[l].recall])),
    support: Object.fromEntries(present.map((l) => [l, m.perClass[l].support])),
    normalFalseAlertRate: normal >= 0 && nRows > 0 ? nAlerts / nRows : null,
    accuracyArgmax: computeMetrics(labels, y, argmaxRows(proba, y.length, labels.length)).accuracy,
    confusion: m.confusion,
  };
}

export interface Comparison {
  /** What the rows are, e.g. "fleet held-out 30 %". */
  name: string;
  old: Scores;
  /** The init bundle's int8 model on the same rows (what hubs run today), when the init was a bundle. */
  oldInt8?: Scores;
  new: Scores;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(2)} %`);

/** A markdown table: one row per figure, one column per model. */
export function comparisonMarkdown(c: Comparison): string {
  const cols: [string, Scores][] = [['init (tfjs, float)', c.old], ...(c.oldInt8 ? [['init (int8, as hubs run it)', c.oldInt8] as [string, Scores]] : []), ['fine-tuned', c.new]];
  const lines = [
    `### ${c.name} (${c.old.rows} rows)`,
    '',
    `| | ${cols.map(([n]) => n).join(' | ')} |`,
    `| --- |${cols.map(() => ' ---: |').join('')}`,
    `| accuracy |${cols.map(([, s]) => ` ${pct(s.accuracy)} |`).join('')}`,
    `| macro-F1 (classes present) |${cols.map(([, s]) => ` ${pct(s.macroF1)} |`).join('')}`,
    `| accuracy, plain arg-max |${cols.map(([, s]) => ` ${pct(s.accuracyArgmax)} |`).join('')}`,
    `| Normal rows alerted (false-alert rate) |${cols.map(([, s]) => ` ${pct(s.normalFalseAlertRate)} |`).join('')}`,
  ];
  for (const l of Object.keys(c.old.perClassRecall)) {
    lines.push(`| recall ${l} (${c.old.support[l]}) |${cols.map(([, s]) => ` ${pct(s.perClassRecall[l])} |`).join('')}`);
  }
  return lines.join('\n');
}
