/**
 * From a trained tfjs model to a verified hub bundle: ONNX export (with a parity check against tfjs on both
 * runtimes), calibrated int8 QDQ quantization (both calibration methods tried; the one closer to fp32 on the
 * calibration rows is shipped), an fp32-vs-int8 comparison on the test split, the signed bundle, and export.md.
 *
 * Picking the calibration method by agreement with fp32 on calibration rows (not by test accuracy) keeps the
 * test split untouched by any choice made here.
 */
import type * as tf from '@tensorflow/tfjs';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { IdsError } from '../../shared/errors.ts';
import type { PortPolicy } from '../../shared/features.ts';
import type { ScalerSpec } from '../../shared/scaler.ts';
import {
  BUNDLE_SCHEMA_VERSION,
  FP32_MODEL_FILE,
  MODEL_FILE,
  PREPROCESS_WASM_FILE,
  type BundleManifest,
} from '../../shared/manifest.ts';
import { sha256Hex, verifyBundle } from '../../shared/bundle-verify.ts';
import { computeMetrics } from '../eval/metrics.ts';
import { buildBundle } from '../bundle/build.ts';
import { readDevPrivateKey, warnDevKey } from '../bundle/dev-key.ts';
import { exportOnnx } from './onnx-export.ts';
import { decodeModel, encodeModel, opCounts } from './onnx-model.ts';
import { calibrate, CALIBRATION_METHODS, type CalibrationMethod } from './calibrate.ts';
import { DEFAULT_LSTM_MODE, quantizeQdq, quantizableTensors, type LstmMode } from './quantize.ts';
import { argmaxRows, measureThroughput, openSession, type Session } from './runtimes.ts';
import { renderExportReport } from './report.ts';

export const DEFAULT_WASM_PATH = fileURLToPath(new URL('../../asm/build/preprocess.wasm', import.meta.url));
/** Calibration uses at most this many rows: ranges settle long before, and calibration runs every intermediate. */
export const MAX_CALIBRATION_ROWS = 2048;
export const DEFAULT_THRESHOLD = 0.5;

export interface ExportArgs {
  model: tf.LayersModel;
  scaler: ScalerSpec;
  portPolicy: PortPolicy;
  labels: string[];
  /** Scaled training rows (rows × features) for calibration. */
  calibration: Float32Array;
  /** The scaled test split. */
  test: { X: Float32Array; y: Int32Array; rows: number };
  training: BundleManifest['training'];
  outDir: string;
  /** Ed25519 PKCS#8 PEM; default: the demo key (with a warning on stderr). */
  privateKeyPem?: string;
  /** Default asm/build/preprocess.wasm (`npm run build:asm`). */
  wasmPath?: string;
  /** Per-class alert thresholds; default 0.5 for every class (see export.md). */
  thresholds?: Record<string, number>;
  /** LSTM treatment in the int8 model (default DEFAULT_LSTM_MODE; see quantize.ts). */
  lstm?: LstmMode;
  /** Leave the first Conv in fp32 (its input is the raw [0,1] features; default true). */
  keepFirstConvFp32?: boolean;
  /** Default 'cnn-lstm'. */
  modelName?: string;
  /** Skip the throughput measurement (tests). */
  skipSpeed?: boolean;
  /** Refuse features the hub's flow meter cannot compute (default true; false marks the bundle notForHubs). */
  hubCheck?: boolean;
  log?: (line: string) => void;
}

export interface VariantReport {
  name: string;
  precision: 'fp32' | 'int8';
  calibration?: CalibrationMethod;
  bytes: number;
  accuracy: number;
  macroF1: number;
  perClassRecall: Record<string, number>;
  /** Share of test rows whose argmax equals the fp32 model's. */
  agreementWithFp32: number;
  /** Agreement with fp32 on the calibration rows (what picks the calibration method). */
  calibrationAgreement?: number;
  ortWebFlowsPerSec?: number;
  ortNodeFlowsPerSec?: number;
}

export interface ExportComparison {
  fp32: VariantReport;
  int8: VariantReport;
  candidates: VariantReport[];
  chosenCalibration: CalibrationMethod;
  lstm: LstmMode;
  parity: { rows: number; ortNodeMaxAbsDiff: number; ortWebMaxAbsDiff: number };
  /** Op counts of onnxruntime-node's optimised int8 graph (QLinearConv present = the QDQ fusion happened). */
  optimizedOps: Record<string, number>;
  checks: { accuracyDropPts: number; maxRecallDropPts: number; maxRecallDropClass: string; sizeRatio: number; pass: boolean };
}

export interface ExportResult {
  bundleDir: string;
  fp32Path: string;
  reportPath: string;
  manifest: BundleManifest;
  comparison: ExportComparison;
}

function tfPredict(model: tf.LayersModel, X: Float32Array, rows: number, F: number, tfm: typeof tf): Float32Array {
  const parts: Float32Array[] = [];
  for (let r = 0; r < rows; r += 512) {
    const n = Math.min(512, rows - r);
    parts.push(
      tfm.tidy(() => (model.predict(tfm.tensor3d(X.subarray(r * F, (r + n) * F), [n, F, 1])) as tf.Tensor).dataSync() as Float32Array),
    );
  }
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const agreement = (a: Int32Array, b: Int32Array): number => {
  let k = 0;
  for (let i = 0; i < a.length; i++) k += +(a[i] === b[i]);
  return a.length ? k / a.length : 1;
};

function evaluate(
  name: string,
  precision: 'fp32' | 'int8',
  P: Float32Array,
  labels: string[],
  y: Int32Array,
  ref: Int32Array | undefined,
  bytes: number,
): VariantReport & { pred: Int32Array } {
  const pred = argmaxRows(P, labels.length);
  const m = computeMetrics(labels, y, pred);
  return {
    name,
    precision,
    bytes,
    accuracy: m.accuracy,
    macroF1: m.macroF1,
    perClassRecall: Object.fromEntries(labels.map((l) => [l, m.perClass[l].recall])),
    agreementWithFp32: ref ? agreement(pred, ref) : 1,
    pred,
  };
}

/**
 * At most `max` rows picked evenly across X (rows × F). Training arrays are often in file order (one class per
 * file in CIC-IDS2017), so a prefix would calibrate on one class only.
 */
export function spreadRows(X: Float32Array, F: number, max: number): Float32Array {
  const rows = Math.floor(X.length / F);
  if (rows <= max) return X.subarray(0, rows * F);
  const out = new Float32Array(max * F);
  for (let i = 0; i < max; i++) {
    const r = Math.floor((i * rows) / max);
    out.set(X.subarray(r * F, (r + 1) * F), i * F);
  }
  return out;
}

/** Model version shown in every alert: date, then the int8 model's hash prefix. */
export const modelVersion = (createdAt: Date, int8: Uint8Array): string =>
  `${createdAt.toISOString().slice(0, 10)}.1-${sha256Hex(int8).slice(0, 8)}`;

export async function exportAndBundle(args: ExportArgs): Promise<ExportResult> {
  const log = args.log ?? ((s: string) => process.stderr.write(s + '\n'));
  for (const k of ['model', 'scaler', 'labels', 'calibration', 'test', 'training', 'outDir'] as const) {
    if (!args || args[k] === undefined) {
      throw new IdsError(
        'BAD_OPTION',
        `exportAndBundle: missing "${k}"; it takes { model, scaler, portPolicy, labels, calibration (scaled train rows), ` +
          `test: { X, y, rows } (scaled), training, outDir } (got: ${Object.keys(args ?? {}).join(', ')})`,
      );
    }
  }
  const tfm = await import('@tensorflow/tfjs');
  const F = args.scaler.features.length;
  const C = args.labels.length;
  const { test } = args;
  if (test.rows < 1 || test.X.length !== test.rows * F || test.y.length !== test.rows) {
    throw new IdsError('BAD_OPTION', `export: test split must be rows×${F} scaled values with one label per row`);
  }
  const calX = spreadRows(args.calibration, F, MAX_CALIBRATION_ROWS);
  const calRows = calX.length / F;
  if (calRows < 1) throw new IdsError('EMPTY_INPUT', 'export: no calibration rows');
  const wasmPath = args.wasmPath ?? DEFAULT_WASM_PATH;
  if (!existsSync(wasmPath)) {
    throw new IdsError('BAD_OPTION', `export: preprocessing wasm not found at ${wasmPath} (run \`npm run build:asm\`)`);
  }
  let keyPem = args.privateKeyPem;
  if (!keyPem) {
    warnDevKey('signing', (s) => log(s.trimEnd()));
    keyPem = readDevPrivateKey();
  }
  const lstm = args.lstm ?? DEFAULT_LSTM_MODE;
  const outDir = resolve(args.outDir);
  mkdirSync(outDir, { recursive: true });

  // 1. fp32 ONNX, checked against tfjs on both runtimes.
  const ex = exportOnnx(args.model, { metadata: { labels: JSON.stringify(args.labels) } });
  if (ex.inputShape[1] !== F) {
    throw new IdsError('BAD_MODEL', `export: the model takes ${ex.inputShape[1]} features, the scaler has ${F}`);
  }
  if (ex.outputShape[1] !== C) throw new IdsError('BAD_MODEL', `export: the model has ${ex.outputShape[1]} outputs for ${C} labels`);
  const fp32Path = join(outDir, FP32_MODEL_FILE);
  writeFileSync(fp32Path, ex.bytes);
  const parityX = spreadRows(test.X, F, 512);
  const parityRows = parityX.length / F;
  const want = tfPredict(args.model, parityX, parityRows, F, tfm);
  const sessions: Session[] = [];
  const open = async (rt: 'ort-node' | 'ort-web', bytes: Uint8Array, o = {}) => {
    const s = await openSession(rt, bytes, o);
    sessions.push(s);
    return s;
  };
  try {
    const fpNode = await open('ort-node', ex.bytes);
    const fpWeb = await open('ort-web', ex.bytes);
    const parity = {
      rows: parityRows,
      ortNodeMaxAbsDiff: maxAbsDiff((await fpNode.run(parityX, parityRows)).probabilities, want),
      ortWebMaxAbsDiff: maxAbsDiff((await fpWeb.run(parityX, parityRows)).probabilities, want),
    };
    if (parity.ortNodeMaxAbsDiff > 1e-4 || parity.ortWebMaxAbsDiff > 1e-4) {
      throw new IdsError('BAD_MODEL', `export: ONNX differs from tfjs by ${Math.max(parity.ortNodeMaxAbsDiff, parity.ortWebMaxAbsDiff)} (> 1e-4)`);
    }
    log(`export: fp32 ONNX ${ex.bytes.length} bytes, parity with tfjs ${parity.ortNodeMaxAbsDiff.toExponential(1)} (node) ${parity.ortWebMaxAbsDiff.toExponential(1)} (web)`);

    // 2. Calibrate and quantize with each method; keep the one that agrees best with fp32 on calibration rows.
    const calRef = argmaxRows((await fpNode.run(calX, calRows)).probabilities, C);
    const cal = await calibrate(ex.model, quantizableTensors(ex.model), calX, calRows);
    const firstConv = ex.model.graph!.node!.find((n) => n.opType === 'Conv')?.name;
    const keepFp32 = args.keepFirstConvFp32 !== false && firstConv ? [firstConv] : [];
    const fpTest = (await fpWeb.run(test.X, test.rows)).probabilities;
    const fp32 = evaluate('fp32', 'fp32', fpTest, args.labels, test.y, undefined, ex.bytes.length);
    const candidates: (VariantReport & { pred: Int32Array; bytes8: Uint8Array })[] = [];
    for (const method of CALIBRATION_METHODS) {
      const q = encodeModel(quantizeQdq(ex.model, { ranges: cal.ranges[method], lstm, keepFp32 }));
      const s = await open('ort-web', q);
      const calAgree = agreement(argmaxRows((await s.run(calX, calRows)).probabilities, C), calRef);
      const v = evaluate(`int8-${method}`, 'int8', (await s.run(test.X, test.rows)).probabilities, args.labels, test.y, fp32.pred, q.length);
      candidates.push({ ...v, calibration: method, calibrationAgreement: calAgree, bytes8: q });
      log(`export: int8 (${method}) calibration agreement ${(calAgree * 100).toFixed(2)}%, test accuracy ${(v.accuracy * 100).toFixed(2)}%`);
    }
    const chosen = candidates.reduce((a, b) => (b.calibrationAgreement! > a.calibrationAgreement! ? b : a));
    const int8Bytes = chosen.bytes8;

    // 3. Did onnxruntime fuse the QDQ pattern? Read back the graph it optimised.
    const optPath = join(outDir, '.optimized.int8.onnx');
    await open('ort-node', int8Bytes, { optimizedModelFilePath: optPath });
    const optimizedOps = existsSync(optPath) ? opCounts(decodeModel(new Uint8Array(readFileSync(optPath)))) : {};
    rmSync(optPath, { force: true });

    // 4. Speed (onnxruntime-web, 1 thread, batch 256), both precisions.
    if (!args.skipSpeed) {
      const benchX = test.rows >= 256 ? test.X : calX;
      if (benchX.length >= 256 * F) {
        // Interleaved rounds, medians: a shared machine's load shifts between measurements.
        const int8Web = await open('ort-web', int8Bytes);
        const int8Node = await open('ort-node', int8Bytes);
        const runs: Record<string, number[]> = { fw: [], iw: [], fn: [], in: [] };
        for (let r = 0; r < 3; r++) {
          runs.fw.push((await measureThroughput(fpWeb, benchX, F, { runs: 7 })).flowsPerSec);
          runs.iw.push((await measureThroughput(int8Web, benchX, F, { runs: 7 })).flowsPerSec);
          runs.fn.push((await measureThroughput(fpNode, benchX, F, { runs: 7 })).flowsPerSec);
          runs.in.push((await measureThroughput(int8Node, benchX, F, { runs: 7 })).flowsPerSec);
        }
        const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
        fp32.ortWebFlowsPerSec = med(runs.fw);
        chosen.ortWebFlowsPerSec = med(runs.iw);
        fp32.ortNodeFlowsPerSec = med(runs.fn);
        chosen.ortNodeFlowsPerSec = med(runs.in);
      }
    }

    const recallDrops = args.labels.map((l) => [l, (fp32.perClassRecall[l] - chosen.perClassRecall[l]) * 100] as const);
    const worst = recallDrops.reduce((a, b) => (b[1] > a[1] ? b : a));
    const checks = {
      accuracyDropPts: (fp32.accuracy - chosen.accuracy) * 100,
      maxRecallDropPts: worst[1],
      maxRecallDropClass: worst[0],
      sizeRatio: int8Bytes.length / ex.bytes.length,
      pass: false,
    };
    checks.pass = checks.accuracyDropPts <= 0.5 && checks.maxRecallDropPts <= 1 && checks.sizeRatio <= 0.5;
    const strip = ({ pred: _p, bytes8: _b, ...v }: VariantReport & { pred?: Int32Array; bytes8?: Uint8Array }) => v as VariantReport;
    const comparison: ExportComparison = {
      fp32: strip(fp32),
      int8: strip(chosen),
      candidates: candidates.map(strip),
      chosenCalibration: chosen.calibration!,
      lstm,
      parity,
      optimizedOps,
      checks,
    };

    // 5. The bundle: int8 metrics on the test split, thresholds, preprocessing, signed; verified at the end.
    const m = computeMetrics(args.labels, test.y, chosen.pred);
    const thresholds = Object.fromEntries(args.labels.map((l) => [l, args.thresholds?.[l] ?? DEFAULT_THRESHOLD]));
    const createdAt = new Date();
    const manifest: Omit<BundleManifest, 'files'> = {
      schemaVersion: BUNDLE_SCHEMA_VERSION,
      model: {
        name: args.modelName ?? 'cnn-lstm',
        version: modelVersion(createdAt, int8Bytes),
        createdAt: createdAt.toISOString(),
        opset: ex.opset,
        precision: 'int8',
        inputName: ex.inputName,
        outputName: ex.outputName,
        inputShape: ex.inputShape,
      },
      training: args.training,
      preprocessing: {
        features: [...args.scaler.features],
        transforms: [...args.scaler.transforms],
        ...(args.scaler.lookups ? { lookups: [...args.scaler.lookups] } : {}),
        min: [...args.scaler.min],
        max: [...args.scaler.max],
        portPolicy: args.portPolicy,
      },
      labels: [...args.labels],
      thresholds,
      metrics: {
        accuracy: m.accuracy,
        macroF1: m.macroF1,
        perClass: Object.fromEntries(
          args.labels.map((l) => {
            const c = m.perClass[l];
            return [l, { precision: c.precision, recall: c.recall, f1: c.f1, support: c.support }];
          }),
        ),
      },
    };
    const bundleDir = await buildBundle({
      outDir: join(outDir, 'bundle'),
      files: { [MODEL_FILE]: int8Bytes, [PREPROCESS_WASM_FILE]: wasmPath },
      manifest,
      privateKeyPem: keyPem,
      hubCheck: args.hubCheck,
    });
    const publicKeyPem = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'pem' }).toString();
    const verified = await verifyBundle(bundleDir, { publicKeyPem });
    const reportPath = join(outDir, 'export.md');
    writeFileSync(reportPath, renderExportReport(comparison, verified.manifest, args.labels));
    log(
      `export: bundle ${bundleDir} verified; int8 ${int8Bytes.length} B (${(checks.sizeRatio * 100).toFixed(0)}% of fp32), ` +
        `accuracy ${(fp32.accuracy * 100).toFixed(2)}% → ${(chosen.accuracy * 100).toFixed(2)}%` +
        (checks.pass ? '' : ' — WARNING: int8 quality/size checks FAILED, see export.md'),
    );
    return { bundleDir, fp32Path, reportPath, manifest: verified.manifest, comparison };
  } finally {
    for (const s of sessions) await s.release().catch(() => undefined);
  }
}


