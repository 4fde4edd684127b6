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
 *
 * `ports: 'benign-rate'` replaces each port column's number by a lookup of how benign that port is in the training
 * rows: (Normal flows on it + M · overall Normal share) / (flows on it + M), M = PORT_PRIOR_ROWS. A port is a
 * category, not a quantity: on the 1% IoTID20 sample 78% of Normal flows go to port 49784, which no attack uses,
 * yet min-max puts attack ports within 0.002 of it, a bump a Conv1D over scaled features learns slowly and not on
 * every seed (trees split it off at once). The smoothing pulls rarely seen ports towards the overall share; ports
 * with fewer than PORT_MIN_ROWS flows and unseen ones get the overall share itself.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import {
  scaleRow, transformValue, validateScalerSpec, type FeatureTransform, type LookupTable, type ScalerSpec,
} from '../../shared/scaler.ts';
import { PORT_COLUMNS } from '../../shared/features.ts';
import { IdsError } from '../../shared/errors.ts';
import type { Dataset } from './dataset.ts';

export type LogPolicy = 'none' | 'auto';
/** How port columns are scaled: as numbers ('value') or by a fitted lookup of each port's benign share. */
export type PortEncoding = 'value' | 'benign-rate';

export const PORT_PRIOR_ROWS = 10;
export const PORT_MIN_ROWS = 3;
/** Table size bound: the most frequent ports are kept (a full IoTID20 scan touches tens of thousands). */
export const PORT_MAX_KEYS = 4096;

export interface FitOptions {
  log: LogPolicy;
  ports?: PortEncoding;
  /** With ports 'benign-rate': the labels of the dataset's rows and the index of the Normal class. */
  y?: ArrayLike<number>;
  normal?: number;
}

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

/** The benign-rate table of column j over the given rows (see the header). */
export function fitPortTable(X: Float32Array, w: number, j: number, rows: Uint32Array, y: ArrayLike<number>, normal: number): LookupTable {
  const seen = new Map<number, [number, number]>(); // port → [flows, normal flows]
  let normals = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    const isNormal = y[r] === normal ? 1 : 0;
    normals += isNormal;
    const v = X[r * w + j];
    if (!Number.isFinite(v)) continue;
    const c = seen.get(v);
    if (c) {
      c[0]++;
      c[1] += isNormal;
    } else seen.set(v, [1, isNormal]);
  }
  const prior = rows.length > 0 ? normals / rows.length : 0;
  const kept = [...seen].filter(([, [n]]) => n >= PORT_MIN_ROWS).sort((a, b) => b[1][0] - a[1][0]).slice(0, PORT_MAX_KEYS);
  kept.sort((a, b) => a[0] - b[0]);
  return {
    keys: kept.map(([k]) => k),
    values: kept.map(([, [n, b]]) => (b + PORT_PRIOR_ROWS * prior) / (n + PORT_PRIOR_ROWS)),
    fallback: prior,
  };
}

export function fitScaler(ds: Pick<Dataset, 'X' | 'features'>, rows: Uint32Array, opts: FitOptions): ScalerSpec {
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
  const ports = opts.ports ?? 'value';
  if (ports !== 'value' && ports !== 'benign-rate') throw new IdsError('BAD_OPTION', `ports must be value or benign-rate, got '${ports}'`);
  const byRate = ports === 'benign-rate' && opts.y !== undefined && opts.normal !== undefined && opts.normal >= 0;
  const transforms: FeatureTransform[] = [];
  const lookups: (LookupTable | null)[] = [];
  const min: number[] = [];
  const max: number[] = [];
  for (let j = 0; j < w; j++) {
    lookups.push(null);
    if (byRate && (PORT_COLUMNS as readonly string[]).includes(ds.features[j])) {
      transforms.push('lookup');
      lookups[j] = fitPortTable(X, w, j, rows, opts.y!, opts.normal!);
      // Codes are shares in [0, 1]: min-max over that fixed range keeps them comparable across fits.
      min.push(0);
      max.push(1);
      continue;
    }
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
  const spec: ScalerSpec = { features: [...ds.features], transforms, min, max };
  return lookups.some((t) => t) ? { ...spec, lookups } : spec;
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
  const plain = {
    features: [...spec.features],
    transforms: [...spec.transforms],
    ...(spec.lookups ? { lookups: [...spec.lookups] } : {}),
    min: [...spec.min],
    max: [...spec.max],
  };
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

/** shared validateScalerSpec (lengths, known transforms, lookup tables) plus what a loader needs: finite min ≤ max, string features. */
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
    if (!Number.isFinite(s.min[j]) || !Number.isFinite(s.max[j])) throw bad('min and max must be finite numbers');
    if (s.min[j] > s.max[j]) throw bad(`min ${s.min[j]} > max ${s.max[j]}`);
  });
  if (new Set(s.features).size !== s.features.length) throw new IdsError('BAD_BUNDLE', `${where}: scaler features repeat a name`);
  return s;
}
