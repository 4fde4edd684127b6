/**
 * Thresholds for a fine-tuned model that keep the init model's alert policy. The init's per-class thresholds were
 * tuned for its own probabilities (the shipped ones are as high as 0.995, set for a 1 % false-alert budget on held-out
 * devices); a fine-tuned model's probabilities are spread a little differently, and measured on the shipped model's
 * test split the same thresholds cost a point of accuracy that plain arg-max did not lose (99.41 % → 99.28 % arg-max,
 * 99.06 % → 98.09 % with the init's thresholds). So each attack class gets the highest threshold at which the new
 * model still finds, on validation rows neither model trained on, at least the share of that class the init model
 * found with its own threshold: the init's recall is kept, and nothing lower than needed is allowed to alert.
 */
import { argmaxRows } from '../eval/metrics.ts';

export interface RematchedThreshold {
  init: number;
  /** The init model's recall on the validation rows of this class with its threshold. */
  initRecall: number;
  threshold: number;
  recall: number;
  rows: number;
}

/** Recall of class c on its rows `idx` when p_c ≥ t and c is the arg-max. */
function recallAt(proba: Float32Array, C: number, idx: number[], c: number, t: number, arg: Int32Array): number {
  let hit = 0;
  for (const i of idx) if (arg[i] === c && proba[i * C + c] >= t) hit++;
  return idx.length ? hit / idx.length : 0;
}

export function rematchThresholds(
  labels: readonly string[],
  normal: number,
  initThresholds: Record<string, number>,
  oldProba: Float32Array,
  newProba: Float32Array,
  y: Int32Array,
): { thresholds: Record<string, number>; classes: Record<string, RematchedThreshold> } {
  const C = labels.length;
  const n = y.length;
  const oldArg = argmaxRows(oldProba, n, C);
  const newArg = argmaxRows(newProba, n, C);
  const thresholds: Record<string, number> = { ...initThresholds };
  const classes: Record<string, RematchedThreshold> = {};
  for (let c = 0; c < C; c++) {
    if (c === normal) continue;
    const l = labels[c];
    const t0 = initThresholds[l] ?? 0;
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (y[i] === c) idx.push(i);
    if (idx.length === 0) continue;
    const want = recallAt(oldProba, C, idx, c, t0, oldArg);
    // The new model's scores of the rows it gives class c, highest first: keeping the top k keeps recall k/rows.
    const scores = idx.filter((i) => newArg[i] === c).map((i) => newProba[i * C + c]).sort((a, b) => b - a);
    const k = Math.ceil(want * idx.length - 1e-9);
    // Above the init's threshold too, when the new model is surer: the same recall with fewer chances to alert.
    const t = k === 0 ? t0 : k <= scores.length ? scores[k - 1] : scores.length ? scores[scores.length - 1] : t0;
    thresholds[l] = Math.round(t * 1e6) / 1e6;
    if (recallAt(newProba, C, idx, c, thresholds[l], newArg) < want) thresholds[l] = Math.floor(t * 1e6) / 1e6;
    classes[l] = { init: t0, initRecall: want, threshold: thresholds[l], recall: recallAt(newProba, C, idx, c, thresholds[l], newArg), rows: idx.length };
  }
  return { thresholds, classes };
}
