/**
 * `train --init-from DIR`: the model to continue from, with everything that defines what it computes (features,
 * scaler, labels, thresholds). DIR is a trainer run folder (model/ with the float weights, scaler.json,
 * report.json) or a bundle folder (manifest.json + model.int8.onnx). A bundle that a run folder exported (DIR is
 * RUN/bundle, or its model file is byte for byte RUN/bundle's) starts from that run's float weights, which are
 * what the int8 model was quantized from; any other bundle starts from its int8 weights dequantized
 * (onnx-weights.ts).
 *
 * The bundle's signature is not checked here: the engineer names the folder on their own machine, and what a
 * hub will trust is decided when the new bundle is signed. Its model file must still match the manifest's sha256.
 */
import type * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { IdsError } from '../../shared/errors.ts';
import { MANIFEST_FILE, MODEL_FILE, bundleRelease, type BundleManifest } from '../../shared/manifest.ts';
import { sha256Hex, modelFileFor } from '../../shared/bundle-verify.ts';
import type { PortPolicy } from '../../shared/features.ts';
import type { ScalerSpec } from '../../shared/scaler.ts';
import { loadScaler } from '../data/scaler-fit.ts';
import { loadModel, MODEL_JSON } from '../model/model-io.ts';
import { cnnLstmFromOnnx } from './onnx-weights.ts';

export interface InitModel {
  /** What the weights came from. */
  source: 'run' | 'bundle (int8 weights dequantized)' | 'bundle (float weights of the run that exported it)';
  dir: string;
  model: tf.LayersModel;
  scaler: ScalerSpec;
  portPolicy: PortPolicy;
  labels: string[];
  /** Per-class alert thresholds (the bundle's or the run's); null = plain arg-max. */
  thresholds: Record<string, number> | null;
  /** The bundle's model version and release (a run folder has them when it exported a bundle). */
  version: string | null;
  release: number | null;
  /** The seed and recipe the init model was trained with (its split is reproduced from the seed). */
  seed: number;
  recipe: string;
  /** The init model's training rows per class (manifest training.classCounts, or the run report's). */
  classCounts: Record<string, number> | null;
  /** The per-class loss weights a fine-tuned init model trained with (reused by the next fine-tune), if recorded. */
  classWeights: Record<string, number> | null;
  /** The int8 model as hubs run it (when there is a bundle). */
  int8?: Uint8Array;
}

const readJson = <T>(path: string, what: string): T => {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new IdsError('BAD_OPTION', `--init-from: cannot read ${what} ${path} (${(e as Error).message})`, { cause: e });
  }
};

interface RunReportPart {
  thresholds?: Record<string, number> | null;
  split?: { classCounts?: { train?: Record<string, number> } };
  settings?: { classWeightValues?: Record<string, number> | null };
  trainClassCounts?: Record<string, number>;
  seed?: number;
  recipe?: { name?: string };
  data?: { ports?: PortPolicy };
}

async function fromRun(dir: string, bundle?: { manifest: BundleManifest; int8: Uint8Array }): Promise<InitModel> {
  const scaler = loadScaler(join(dir, 'scaler.json'));
  const model = await loadModel(join(dir, 'model'));
  const meta = readJson<{ userDefinedMetadata?: { labels?: string[]; features?: string[]; recipe?: string; seed?: number } }>(join(dir, 'model', MODEL_JSON), 'model');
  const report = existsSync(join(dir, 'report.json')) ? readJson<RunReportPart>(join(dir, 'report.json'), 'report') : {};
  const labels = bundle?.manifest.labels ?? meta.userDefinedMetadata?.labels;
  if (!labels) throw new IdsError('BAD_OPTION', `--init-from ${dir}: the model carries no labels (not a trainer run folder?)`);
  const m = bundle?.manifest;
  return {
    source: m ? 'bundle (float weights of the run that exported it)' : 'run',
    dir,
    model,
    scaler: m ? m.preprocessing : scaler,
    portPolicy: m?.preprocessing.portPolicy ?? report.data?.ports ?? 'dst',
    labels,
    thresholds: m?.thresholds ?? report.thresholds ?? null,
    version: m?.model.version ?? null,
    release: m ? bundleRelease(m) : null,
    seed: m?.training.seed ?? report.seed ?? meta.userDefinedMetadata?.seed ?? 1,
    recipe: m?.training.recipe ?? meta.userDefinedMetadata?.recipe ?? report.recipe?.name ?? 'unknown',
    classCounts: m?.training.classCounts ?? report.split?.classCounts?.train ?? report.trainClassCounts ?? null,
    classWeights: m?.training.classWeights ?? report.settings?.classWeightValues ?? null,
    ...(bundle ? { int8: bundle.int8 } : {}),
  };
}

/** The run folder that exported this bundle, if it is there: DIR/.. when DIR is RUN/bundle with the same model file. */
function exportingRun(bundleDir: string, int8: Uint8Array): string | undefined {
  const run = dirname(bundleDir);
  const twin = join(run, 'bundle', MODEL_FILE);
  if (!existsSync(join(run, 'model', MODEL_JSON)) || !existsSync(join(run, 'scaler.json')) || !existsSync(twin)) return undefined;
  return sha256Hex(new Uint8Array(readFileSync(twin))) === sha256Hex(int8) ? run : undefined;
}

export async function loadInitModel(path: string, seed = 1): Promise<InitModel> {
  const dir = resolve(path);
  if (existsSync(join(dir, 'model', MODEL_JSON))) {
    const b = existsSync(join(dir, 'bundle', MANIFEST_FILE)) ? readBundle(join(dir, 'bundle')) : undefined;
    const init = await fromRun(dir, b);
    // A run's own folder: its weights are the run's, whatever bundle sits beside them.
    return { ...init, source: 'run' };
  }
  if (!existsSync(join(dir, MANIFEST_FILE))) {
    throw new IdsError('BAD_OPTION', `--init-from ${path}: neither a trainer run folder (model/${MODEL_JSON}) nor a bundle (${MANIFEST_FILE})`);
  }
  const b = readBundle(dir);
  const run = exportingRun(dir, b.int8);
  if (run) return fromRun(run, b);
  const m = b.manifest;
  const model = cnnLstmFromOnnx(b.int8, seed);
  const F = model.inputs[0].shape[1];
  if (F !== m.preprocessing.features.length) {
    throw new IdsError('BAD_BUNDLE', `--init-from ${path}: the model reads ${F} features, the manifest lists ${m.preprocessing.features.length}`);
  }
  return {
    source: 'bundle (int8 weights dequantized)',
    dir,
    model,
    scaler: m.preprocessing,
    portPolicy: m.preprocessing.portPolicy,
    labels: m.labels,
    thresholds: m.thresholds ?? null,
    version: m.model.version,
    release: bundleRelease(m),
    seed: m.training.seed,
    recipe: m.training.recipe,
    classCounts: m.training.classCounts ?? null,
    classWeights: m.training.classWeights ?? null,
    int8: b.int8,
  };
}

function readBundle(dir: string): { manifest: BundleManifest; int8: Uint8Array } {
  const manifest = readJson<BundleManifest>(join(dir, MANIFEST_FILE), 'bundle manifest');
  const file = modelFileFor(manifest);
  const path = join(dir, file);
  if (!existsSync(path)) throw new IdsError('BAD_BUNDLE', `--init-from ${dir}: no ${file}`);
  const int8 = new Uint8Array(readFileSync(path));
  const want = manifest.files?.[file]?.sha256;
  if (want && sha256Hex(int8) !== want) throw new IdsError('BAD_BUNDLE', `--init-from ${dir}: ${file} does not match the manifest's sha256`);
  return { manifest, int8 };
}
