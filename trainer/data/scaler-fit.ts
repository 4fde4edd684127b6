/**
 * Fits the preprocessing contract (shared/scaler.ts ScalerSpec) on training rows only, applies it, and saves /
 * loads it as JSON.
 *
 * `log: 'auto'` rule, per feature, over the finite values of the given rows:
 *   log1p (sign-preserving) when min ≥ −1 and max ≥ 100 · (|p25| + 1)   (p25 = lower quartile).
 * That is: non-negative (CICFlowMeter writes −1 for "not seen", e.g. Init_Fwd_Win_Byts, so −1 is allowed) and
 * plain min-max would squeeze at least a quarter of the rows into the bottom ~1% of [0,1]: durations, IATs,
 * byte and packet rates, byte totals, Dst_Port on CIC-IDS2017. Flags, small counts, Protocol and features whose
 * bulk already spans the range stay linear (the +1 keeps 0/1 flags and single-digit counts out).
 * The lower quartile rather than the median because CIC-IDS2017's Flow_Duration and IAT columns have a median
 * only ~25× below the max yet a quarter of the rows ~10⁵× below it (measured on the shared sample).
 * The quartile is taken over at most 65,536 evenly strided rows, plenty for a threshold this coarse.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import {
  scaleRow, transformValue, validateScalerSpec, type FeatureTransform, type ScalerSpec,
} from '../../shared/scaler.ts';
import { IdsError } from '../../shared/errors.ts';
import type { Dataset } from './dataset.ts';

export type LogPolicy = 'none' | 'auto';

const QUANTILE_SAMPLE = 65536;
const TAIL_QUANTILE = 0.25;
const TAIL_RATIO = 100;

function checkRows(ds: Pick<Dataset, 'X' | 'features'>, rows: Uint32Array): number {
  const w = ds.features.length;
  if (w === 0) throw new IdsError('BAD_OPTION', 'dataset has no features');
  const n = ds.X.length / w;
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] >= n) throw new IdsError('BAD_OPTION', `row index ${rows[i]} past the dataset's ${n} rows`);
  }
  return w;
}

/** The q-quantile (nearest rank) of the finite values of column j over (a stride sample of) the rows, 0 if none. */
function quantileOf(X: Float32Array, w: number, j: number, rows: Uint32Array, q: number): number {
  const step = Math.max(1, Math.ceil(rows.length / QUANTILE_SAMPLE));
  const vals = new Float64Array(Math.ceil(rows.length / step));
  let k = 0;
  for (let i = 0; i < rows.length; i += step) {
    const v = X[rows[i] * w + j];
    if (v - v === 0) vals[k++] = v;
  }
  if (k === 0) return 0;
  const sorted = vals.subarray(0, k).sort();
  return sorted[Math.floor(q * (k - 1))];
}

export function fitScaler(ds: Pick<Dataset, 'X' | 'features'>, rows: Uint32Array, opts: { log: LogPolicy }): ScalerSpec {
  if (opts.log !== 'none' && opts.log !== 'auto') throw new IdsError('BAD_OPTION', `log must be none or auto, got '${opts.log}'`);
  const w = checkRows(ds, rows);
  if (rows.length === 0) throw new IdsError('EMPTY_INPUT', 'cannot fit a scaler on zero rows');
  const X = ds.X;
  // One row-major pass for every column's finite range (column-wise passes would stride through X w times).
  const lo = new Float64Array(w).fill(Infinity);
  const hi = new Float64Array(w).fill(-Infinity);
  for (let i = 0; i < rows.length; i++) {
    const base = rows[i] * w;
    for (let j = 0; j < w; j++) {
      const v = X[base + j];
      if (v - v !== 0) continue; // ±inf and NaN: clipping / MISSING_VALUE handle them, they must not set the range
      if (v < lo[j]) lo[j] = v;
      if (v > hi[j]) hi[j] = v;
    }
  }
  const transforms: FeatureTransform[] = [];
  const min: number[] = [];
  const max: number[] = [];
  for (let j = 0; j < w; j++) {
    if (lo[j] > hi[j]) {
      // No finite value in these rows: everything scales to 0 (or 1 for +inf).
      transforms.push('none');
      min.push(0);
      max.push(0);
      continue;
    }
    let t: FeatureTransform = 'none';
    if (opts.log === 'auto' && lo[j] >= -1 && hi[j] >= TAIL_RATIO * (Math.abs(quantileOf(X, w, j, rows, TAIL_QUANTILE)) + 1)) t = 'log1p';
    transforms.push(t);
    // The transform is monotonic, so the transformed range is the range's transform.
    min.push(transformValue(lo[j], t));
    max.push(transformValue(hi[j], t));
  }
  return { features: [...ds.features], transforms, min, max };
}

/** rows × spec.features in [0,1], with shared/scaler.ts scaleRow (the reference the hub's wasm is tested against). */
export function applyScaler(spec: ScalerSpec, ds: Pick<Dataset, 'X' | 'features'>, rows: Uint32Array): Float32Array {
  const w = checkRows(ds, rows);
  const n = spec.features.length;
  const pos = new Map(ds.features.map((f, i) => [f, i]));
  const missing = spec.features.filter((f) => !pos.has(f));
  if (missing.length > 0) {
    throw new IdsError('BAD_HEADER', `the data lacks ${missing.length} feature(s) the scaler needs: ${missing.join(', ')}`);
  }
  const cols = Int32Array.from(spec.features, (f) => pos.get(f)!);
  const identity = n === w && cols.every((c, i) => c === i);
  const out = new Float32Array(rows.length * n);
  const row = new Float64Array(n);
  for (let i = 0; i < rows.length; i++) {
    const base = rows[i] * w;
    if (identity) for (let j = 0; j < n; j++) row[j] = ds.X[base + j];
    else for (let j = 0; j < n; j++) row[j] = ds.X[base + cols[j]];
    scaleRow(spec, row, out, i * n);
  }
  return out;
}

export function saveScaler(path: string, spec: ScalerSpec): void {
  checkSpec(spec, path);
  const plain = { features: [...spec.features], transforms: [...spec.transforms], min: [...spec.min], max: [...spec.max] };
  writeFileSync(path, JSON.stringify(plain, null, 1) + '\n');
}

export function loadScaler(path: string): ScalerSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new IdsError('BAD_OPTION', `scaler file not found or unreadable: ${path}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new IdsError('BAD_BUNDLE', `${path}: scaler is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return checkSpec(json, path);
}

/** shared validateScalerSpec plus what a loader needs: known transforms, finite min ≤ max, string features. */
function checkSpec(spec: unknown, where: string): ScalerSpec {
  let s: ScalerSpec;
  try {
    s = validateScalerSpec(spec);
  } catch (e) {
    throw new IdsError('BAD_BUNDLE', `${where}: ${(e as Error).message}`, { cause: e });
  }
  s.features.forEach((f, j) => {
    const bad = (why: string) => new IdsError('BAD_BUNDLE', `${where}: scaler feature ${j} ('${f}'): ${why}`);
    if (typeof f !== 'string' || f.length === 0) throw bad('name must be a non-empty string');
    if (s.transforms[j] !== 'none' && s.transforms[j] !== 'log1p') throw bad(`unknown transform '${s.transforms[j]}'`);
    if (!Number.isFinite(s.min[j]) || !Number.isFinite(s.max[j])) throw bad('min and max must be finite numbers');
    if (s.min[j] > s.max[j]) throw bad(`min ${s.min[j]} > max ${s.max[j]}`);
  });
  if (new Set(s.features).size !== s.features.length) throw new IdsError('BAD_BUNDLE', `${where}: scaler features repeat a name`);
  return s;
}
