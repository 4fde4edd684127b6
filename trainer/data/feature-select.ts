/**
 * Redundant-feature pruning (opt-in, `--prune-correlated R`): CICFlowMeter's columns come in near-copies
 * (Flow_IAT_Max and Fwd_IAT_Max, Pkt_Len_Mean and Pkt_Size_Avg, Subflow_* and Tot_*, ...). A Conv1D over the
 * feature axis pays for every column at every layer, so each dropped copy makes the hub's model cheaper by
 * about 1/F, while a copy adds nothing a classifier can use.
 *
 * The rule is greedy in schema order: a feature is kept unless |Pearson r| with an already kept feature is ≥ R,
 * measured on the training rows after the scaler's transform (log1p or port lookup), which is what the model
 * sees. Schema order keeps the plainer column of a pair (Tot_Fwd_Pkts before Subflow_Fwd_Pkts).
 */
import { IdsError } from '../../shared/errors.ts';
import type { Dataset } from './dataset.ts';

export interface PrunedFeature {
  feature: string;
  /** The kept feature it copies. */
  like: string;
  r: number;
}

export interface FeatureSelection {
  /** Column indices kept, ascending. */
  keep: number[];
  dropped: PrunedFeature[];
}

/**
 * Which columns of the row-major `X` (`w` columns; only `rows` are read) to keep at threshold `threshold`.
 * A column with no variance on these rows counts as a copy of nothing and is kept (the dataset loader already
 * drops constant columns; the scaler maps them to 0).
 */
export function selectUncorrelated(X: Float32Array, w: number, rows: number, features: readonly string[], threshold: number): FeatureSelection {
  if (!(threshold > 0 && threshold <= 1)) throw new IdsError('BAD_OPTION', `--prune-correlated ${threshold}: must be in (0, 1]`);
  if (features.length !== w) throw new IdsError('BAD_OPTION', `feature selection: ${features.length} names for ${w} columns`);
  const mean = new Float64Array(w);
  for (let i = 0; i < rows; i++) for (let j = 0; j < w; j++) mean[j] += X[i * w + j];
  for (let j = 0; j < w; j++) mean[j] /= Math.max(rows, 1);
  // Centered cross products, upper triangle; 78 columns × 30k rows is ~90M multiply-adds.
  const cov = new Float64Array(w * w);
  const d = new Float64Array(w);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < w; j++) d[j] = X[i * w + j] - mean[j];
    for (let a = 0; a < w; a++) {
      const da = d[a];
      if (da === 0) continue;
      const base = a * w;
      for (let b = a; b < w; b++) cov[base + b] += da * d[b];
    }
  }
  const keep: number[] = [];
  const dropped: PrunedFeature[] = [];
  for (let j = 0; j < w; j++) {
    let copyOf = -1;
    let best = 0;
    const vj = cov[j * w + j];
    if (vj > 0) {
      for (const k of keep) {
        const vk = cov[k * w + k];
        if (vk === 0) continue;
        const r = cov[k * w + j] / Math.sqrt(vj * vk);
        if (Math.abs(r) >= threshold && Math.abs(r) > Math.abs(best)) {
          best = r;
          copyOf = k;
        }
      }
    }
    if (copyOf < 0) keep.push(j);
    else dropped.push({ feature: features[j], like: features[copyOf], r: +best.toFixed(4) });
  }
  return { keep, dropped };
}

/** The dataset with only the `keep` columns, compacted in place (the old X must not be used afterwards). */
export function keepColumns(ds: Dataset, keep: readonly number[]): Dataset {
  const w = ds.features.length;
  const k = keep.length;
  for (let i = 1; i < k; i++) if (!(keep[i] > keep[i - 1])) throw new IdsError('BAD_OPTION', 'feature selection: kept columns must ascend');
  if (k === 0 || keep[k - 1] >= w) throw new IdsError('BAD_OPTION', `feature selection: columns out of range 0..${w - 1}`);
  // Row i's kept cells move to [i*k, i*k+k), never past where they are read from (k ≤ w), so one forward pass works.
  const X = ds.X;
  for (let i = 0; i < ds.rows; i++) {
    const from = i * w;
    const to = i * k;
    for (let c = 0; c < k; c++) X[to + c] = X[from + keep[c]];
  }
  return { ...ds, X: X.subarray(0, ds.rows * k), features: keep.map((j) => ds.features[j]) };
}
