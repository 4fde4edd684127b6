/**
 * Activation-range calibration for static int8 quantization: runs the fp32 model on a sample of (scaled)
 * training rows with the wanted intermediate tensors exposed as extra graph outputs (onnxruntime-node), and
 * derives per-tensor ranges two ways:
 *  - minmax: the observed min and max (every calibration value representable, coarser steps);
 *  - percentile: the p-th and (100-p)-th percentiles (p = 99.99 by default; clips rare outliers for finer steps).
 * Two passes: the first finds each tensor's min/max, the second fills a histogram over it for the percentiles.
 */
import { IdsError } from '../../shared/errors.ts';
import { decodeModel, encodeModel, valueInfo, type ModelProto } from './onnx-model.ts';
import { openSession } from './runtimes.ts';

export type CalibrationMethod = 'minmax' | 'percentile';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile'];

export interface TensorRange {
  min: number;
  max: number;
}

export type RangeTable = Record<string, TensorRange>;

export interface CalibrationOptions {
  percentile?: number;
  batch?: number;
  bins?: number;
}

export interface Calibration {
  rows: number;
  percentile: number;
  ranges: Record<CalibrationMethod, RangeTable>;
}

/** A copy of the model with `tensors` added as graph outputs. */
function exposing(model: ModelProto, tensors: readonly string[]): Uint8Array {
  const m = decodeModel(encodeModel(model));
  const have = new Set(m.graph!.output!.map((o) => o.name));
  for (const t of tensors) if (!have.has(t)) m.graph!.output!.push(valueInfo(t));
  return encodeModel(m);
}

export async function calibrate(
  model: ModelProto,
  tensors: readonly string[],
  X: Float32Array,
  rows: number,
  opts: CalibrationOptions = {},
): Promise<Calibration> {
  const p = opts.percentile ?? 99.99;
  const bins = opts.bins ?? 8192;
  const batch = opts.batch ?? 256;
  if (rows < 1 || X.length % rows !== 0) throw new IdsError('BAD_OPTION', `calibration: ${X.length} values do not form ${rows} rows`);
  if (!(p > 50 && p <= 100)) throw new IdsError('BAD_OPTION', `calibration: percentile ${p} must be in (50, 100]`);
  const F = X.length / rows;
  const s = await openSession('ort-node', exposing(model, tensors), { threads: 1 });
  const names = [...tensors];
  const lo = new Float64Array(names.length).fill(Infinity);
  const hi = new Float64Array(names.length).fill(-Infinity);
  const hist = names.map(() => new Float64Array(bins));
  const counts = new Float64Array(names.length);
  try {
    for (let pass = 0; pass < 2; pass++) {
      for (let r = 0; r < rows; r += batch) {
        const n = Math.min(batch, rows - r);
        const out = await s.run(X.subarray(r * F, (r + n) * F), n, names, n);
        names.forEach((name, k) => {
          const v = out[name];
          if (pass === 0) {
            let a = lo[k];
            let b = hi[k];
            for (let i = 0; i < v.length; i++) {
              const x = v[i];
              if (x < a) a = x;
              if (x > b) b = x;
            }
            lo[k] = a;
            hi[k] = b;
            counts[k] += v.length;
          } else {
            const h = hist[k];
            const w = hi[k] - lo[k];
            if (!(w > 0)) {
              h[0] += v.length;
              return;
            }
            const f = (bins - 1) / w;
            for (let i = 0; i < v.length; i++) h[Math.round((v[i] - lo[k]) * f)]++;
          }
        });
      }
    }
  } finally {
    await s.release();
  }
  const minmax: RangeTable = {};
  const percentile: RangeTable = {};
  names.forEach((name, k) => {
    if (!Number.isFinite(lo[k]) || !Number.isFinite(hi[k])) {
      throw new IdsError('BAD_MODEL', `calibration: tensor ${name} produced non-finite values (${lo[k]}..${hi[k]})`);
    }
    minmax[name] = { min: lo[k], max: hi[k] };
    const h = hist[k];
    const w = (hi[k] - lo[k]) / (bins - 1);
    const tail = counts[k] * (1 - p / 100);
    let acc = 0;
    let a = 0;
    while (a < bins - 1 && acc + h[a] <= tail) acc += h[a++];
    acc = 0;
    let b = bins - 1;
    while (b > 0 && acc + h[b] <= tail) acc += h[b--];
    percentile[name] = { min: lo[k] + a * w, max: lo[k] + b * w };
  });
  return { rows, percentile: p, ranges: { minmax, percentile } };
}
