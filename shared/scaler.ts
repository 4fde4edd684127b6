/**
 * The preprocessing contract between the trainer (which fits it) and the hub (whose wasm applies it):
 * per feature an optional transform (log1p, or a lookup table), then min-max to [0,1], clipped. Saved as JSON in
 * every bundle.
 */

export type FeatureTransform = 'none' | 'log1p' | 'lookup';

/**
 * A value → code table for a categorical column such as a port: exact matches of the raw value map to their code,
 * anything else to `fallback`. `keys` ascend strictly (the hub binary-searches them).
 */
export interface LookupTable {
  readonly keys: readonly number[];
  readonly values: readonly number[];
  readonly fallback: number;
}

export interface ScalerSpec {
  /** Input features in model order (IoTID20 column names). */
  readonly features: readonly string[];
  /** Per feature; log1p is sign-preserving: sign(x)·ln(1+|x|). */
  readonly transforms: readonly FeatureTransform[];
  /** Per feature: the table of a 'lookup' transform, null for the others. Absent when no feature uses one. */
  readonly lookups?: readonly (LookupTable | null)[];
  /** Per feature, after the transform, fitted on the training split only. */
  readonly min: readonly number[];
  readonly max: readonly number[];
}

/**
 * What a NaN or empty cell becomes. ±Infinity is kept: CICFlowMeter writes inf for rates over a zero duration,
 * meaning "as fast as it gets", and clipping sends it to 1 (or 0). Fitting ignores non-finite values.
 */
export const MISSING_VALUE = 0;

export function transformValue(x: number, t: FeatureTransform): number {
  if (Number.isNaN(x)) x = MISSING_VALUE;
  if (t === 'log1p') return Math.sign(x) * Math.log1p(Math.abs(x));
  return x;
}

/** The code of `x` in `t` (exact match, else the fallback). */
export function lookupValue(x: number, t: LookupTable): number {
  if (Number.isNaN(x)) x = MISSING_VALUE;
  const k = t.keys;
  let lo = 0;
  let hi = k.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (k[mid] < x) lo = mid + 1;
    else if (k[mid] > x) hi = mid - 1;
    else return t.values[mid];
  }
  return t.fallback;
}

/** Scales one row in place of `out` (length = features). The reference implementation the wasm one is tested against. */
export function scaleRow(spec: ScalerSpec, row: ArrayLike<number>, out: Float32Array, offset = 0): void {
  const n = spec.features.length;
  for (let j = 0; j < n; j++) {
    const t = spec.transforms[j];
    const v = t === 'lookup' ? lookupValue(row[j], spec.lookups![j]!) : transformValue(row[j], t);
    const lo = spec.min[j];
    const range = spec.max[j] - lo;
    let s = range > 0 ? (v - lo) / range : v > lo ? 1 : 0;
    if (!(s >= 0)) s = 0;
    else if (s > 1) s = 1;
    out[offset + j] = s;
  }
}

export function validateScalerSpec(spec: unknown): ScalerSpec {
  const s = spec as ScalerSpec;
  const n = s?.features?.length;
  if (!Array.isArray(s?.features) || n === 0) throw new Error('scaler: features must be a non-empty array');
  for (const k of ['transforms', 'min', 'max'] as const) {
    if (!Array.isArray(s[k]) || s[k].length !== n) throw new Error(`scaler: ${k} must have ${n} entries`);
  }
  if (s.lookups !== undefined && (!Array.isArray(s.lookups) || s.lookups.length !== n)) throw new Error(`scaler: lookups must have ${n} entries`);
  s.transforms.forEach((t, j) => {
    if (t !== 'none' && t !== 'log1p' && t !== 'lookup') throw new Error(`scaler: feature ${j}: unknown transform '${t}'`);
    const table = s.lookups?.[j];
    if (t !== 'lookup') {
      if (table) throw new Error(`scaler: feature ${j} has a lookup table but transform '${t}'`);
      return;
    }
    const ok =
      table && Array.isArray(table.keys) && Array.isArray(table.values) && table.keys.length === table.values.length &&
      Number.isFinite(table.fallback) && table.values.every(Number.isFinite) &&
      table.keys.every((x, i) => Number.isFinite(x) && (i === 0 || x > table.keys[i - 1]));
    if (!ok) throw new Error(`scaler: feature ${j}: a lookup needs { keys (finite, strictly ascending), values (as many, finite), fallback (finite) }`);
  });
  return s;
}
