/**
 * The preprocessing contract between the trainer (which fits it) and the hub (whose wasm applies it):
 * per feature an optional log transform, then min-max to [0,1], clipped. Saved as JSON in every bundle.
 */

export type FeatureTransform = 'none' | 'log1p';

export interface ScalerSpec {
  /** Input features in model order (IoTID20 column names). */
  readonly features: readonly string[];
  /** Per feature; log1p is sign-preserving: sign(x)·ln(1+|x|). */
  readonly transforms: readonly FeatureTransform[];
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

/** Scales one row in place of `out` (length = features). The reference implementation the wasm one is tested against. */
export function scaleRow(spec: ScalerSpec, row: ArrayLike<number>, out: Float32Array, offset = 0): void {
  const n = spec.features.length;
  for (let j = 0; j < n; j++) {
    const v = transformValue(row[j], spec.transforms[j]);
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
  return s;
}
