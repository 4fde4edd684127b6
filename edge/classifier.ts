/**
 * Batch inference: raw rows (in the hub's raw column layout, see edge/raw-columns.ts) → wasm scaling → one
 * onnxruntime-web run → argmax, confidence and per-class thresholds. Results land in typed arrays reused from
 * batch to batch: no per-row objects.
 */
import * as ort from 'onnxruntime-web';
import { IdsError } from '../shared/errors.ts';
import type { BundleManifest } from '../shared/manifest.ts';
import { decideRows, verdictRule, type VerdictRule } from '../shared/verdict-rule.ts';
import type { LoadedBundle } from './bundle-loader.ts';
import { WasmScaler } from './preprocess.ts';
import { RAW_COLUMNS, columnMapFor } from './raw-columns.ts';

/** One batch's results; arrays are valid until the next classify() call. */
export interface Verdicts {
  rows: number;
  /** Final class per row after thresholds; -1 = below threshold with no Normal class to fall back to. */
  classIdx: Int32Array;
  /** Probability of the argmax class. */
  confidence: Float32Array;
  /** Row-major [rows × labels.length]. */
  probs: Float32Array;
}

/** What the batcher needs from a classifier (tests substitute a slow fake to provoke backpressure). */
export interface BatchClassifier {
  readonly labels: readonly string[];
  readonly version: string;
  /** Raw columns per row in input(). */
  readonly inputs: number;
  /** Most rows per classify() call. */
  readonly maxRows: number;
  /** Model feature j ← raw column columns[j] (the manifest's feature order); absent on test doubles. */
  readonly columns?: Int32Array;
  /** The raw input block [maxRows × inputs]; row i at i × inputs. Re-fetch after each classify(). */
  input(): Float64Array;
  classify(rows: number): Promise<Verdicts>;
  release(): Promise<void>;
}

export class Classifier implements BatchClassifier {
  readonly labels: readonly string[];
  readonly version: string;
  readonly inputs = RAW_COLUMNS.length;
  readonly maxRows: number;
  readonly manifest: BundleManifest;
  readonly columns: Int32Array;
  private readonly scaler: WasmScaler;
  private readonly session: ort.InferenceSession;
  private readonly features: number;
  private readonly rule: VerdictRule;
  private readonly classIdx: Int32Array;
  private readonly confidence: Float32Array;

  constructor(bundle: LoadedBundle, maxRows = 256) {
    const m = bundle.manifest;
    this.manifest = m;
    this.labels = m.labels;
    this.version = m.model.version;
    this.maxRows = maxRows;
    this.session = bundle.session;
    this.features = m.preprocessing.features.length;
    this.columns = columnMapFor(m.preprocessing.features);
    this.scaler = new WasmScaler(bundle.preprocess, m.preprocessing, this.columns, this.inputs);
    this.scaler.reserve(maxRows);
    this.rule = verdictRule(m);
    this.classIdx = new Int32Array(maxRows);
    this.confidence = new Float32Array(maxRows);
  }

  input(): Float64Array {
    return this.scaler.input();
  }

  async classify(rows: number): Promise<Verdicts> {
    if (rows > this.maxRows) throw new IdsError('BAD_OPTION', `classify(${rows}) exceeds the batch size ${this.maxRows}`);
    const x = this.scaler.scale(rows);
    const { inputName, outputName } = this.manifest.model;
    let out: ort.Tensor;
    try {
      const res = await this.session.run({ [inputName]: new ort.Tensor('float32', x, [rows, this.features, 1]) });
      out = res[outputName];
    } catch (e) {
      throw new IdsError('BAD_MODEL', `model ${this.version}: inference failed: ${(e as Error).message}`, { cause: e });
    }
    const probs = out.data as Float32Array;
    const c = this.labels.length;
    if (probs.length !== rows * c) {
      throw new IdsError('BAD_MODEL', `model ${this.version}: output has ${probs.length} values, want ${rows} × ${c}`);
    }
    decideRows(this.rule, probs, rows, this.classIdx, 0, this.confidence);
    return { rows, classIdx: this.classIdx, confidence: this.confidence, probs };
  }

  async release(): Promise<void> {
    await this.session.release().catch(() => undefined);
  }
}
