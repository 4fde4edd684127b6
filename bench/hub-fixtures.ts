/**
 * Bundles for the hub benchmark. `cnnLstmBundle` is the production architecture (the paper's CNN-LSTM, int8 via
 * trainer/export) with seeded random weights: real inference cost, meaningless verdicts. Cached under .tmp/ so
 * repeated bench runs skip the export. `tinyBundle` is the hand-made test model (plumbing cost only).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_CANDIDATE_COLUMNS } from '../shared/features.ts';
import { IOTID20_CATEGORIES } from '../shared/labels.ts';
import { Rng } from '../shared/random.ts';
import type { ScalerSpec } from '../shared/scaler.ts';
import { MANIFEST_FILE, type BundleManifest } from '../shared/manifest.ts';
import { PROJECT_ROOT } from '../test/helpers/shared-data.ts';
import { SHIPPED_BUNDLE } from '../cli/demo-command.ts';
import { buildFixtureBundle, devKeyPair, type KeyPair } from '../test/edge/fixtures/bundle.ts';

export const CACHE = join(PROJECT_ROOT, '.tmp', 'bench-hub');

/**
 * The model's features: the shipped bundle's, so the bench measures the input width that ships (a bundle trained
 * with --prune-correlated is narrower); without it, every candidate but Src_Port (the default port policy).
 */
export const BENCH_FEATURES: readonly string[] = shippedFeatures() ?? MODEL_CANDIDATE_COLUMNS.filter((c) => c !== 'Src_Port');

function shippedFeatures(): readonly string[] | null {
  const p = join(SHIPPED_BUNDLE, MANIFEST_FILE);
  if (!existsSync(p)) return null;
  return (JSON.parse(readFileSync(p, 'utf8')) as BundleManifest).preprocessing.features;
}

function cachedKeys(): KeyPair {
  const p = join(CACHE, 'keys.json');
  if (existsSync(p)) return JSON.parse(readFileSync(p, 'utf8')) as KeyPair;
  const k = devKeyPair();
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(p, JSON.stringify(k));
  return k;
}

export async function tinyBundle(): Promise<{ dir: string; keys: KeyPair }> {
  const keys = cachedKeys();
  const dir = join(CACHE, 'tiny');
  if (!existsSync(join(dir, 'manifest.sig'))) await buildFixtureBundle(dir, keys, 'bench-tiny');
  return { dir, keys };
}

/** Raw (unscaled) ranges for synthetic flows: the scaler maps [0, 1000] of every feature onto [0, 1]. */
export function benchScaler(): ScalerSpec {
  return {
    features: [...BENCH_FEATURES],
    transforms: BENCH_FEATURES.map(() => 'none' as const),
    min: BENCH_FEATURES.map(() => 0),
    max: BENCH_FEATURES.map(() => 1000),
  };
}

export async function cnnLstmBundle(log: (s: string) => void): Promise<{ dir: string; keys: KeyPair }> {
  const keys = cachedKeys();
  // The cache is keyed by the exporter's and quantizer's source (a change to either makes a fresh bundle) and by
  // the features.
  const src = ['onnx-export.ts', 'quantize.ts', 'index.ts'].map((f) => readFileSync(join(PROJECT_ROOT, 'trainer', 'export', f)));
  src.push(Buffer.from(BENCH_FEATURES.join(',')));
  const dir = join(CACHE, `cnn-lstm-${createHash('sha256').update(Buffer.concat(src)).digest('hex').slice(0, 12)}`);
  const bundleDir = join(dir, 'bundle');
  if (existsSync(join(bundleDir, 'manifest.sig'))) return { dir: bundleDir, keys };
  const { buildCnnLstm } = await import('../trainer/model/cnn-lstm.ts');
  const { exportAndBundle } = await import('../trainer/export/index.ts');
  const tf = await import('@tensorflow/tfjs');
  const F = BENCH_FEATURES.length;
  const labels = [...IOTID20_CATEGORIES];
  const model = buildCnnLstm({ features: F, classes: labels.length, seed: 7 });
  const rng = new Rng(5);
  // Peaky random weights so the verdicts spread over the classes (glorot weights give a near-uniform softmax).
  model.setWeights(model.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, () => rng.normal() * 0.35), w.shape)));
  const rows = 512;
  const X = Float32Array.from({ length: rows * F }, () => rng.next());
  const y = Int32Array.from({ length: rows }, () => rng.int(0, labels.length));
  log(`hub bench: exporting a random-weight CNN-LSTM (${F} features) to an int8 bundle in ${dir} (once)`);
  await exportAndBundle({
    model,
    scaler: benchScaler(),
    portPolicy: 'dst',
    labels,
    calibration: X,
    test: { X, y, rows },
    training: { data: ['synthetic'], rows: { train: 0, test: rows }, classCounts: {}, recipe: 'random weights (bench)', seed: 7 },
    outDir: dir,
    privateKeyPem: keys.privateKeyPem,
    skipSpeed: true,
    modelName: 'bench-cnn-lstm',
    log,
  });
  log('hub bench: (random weights: the export\'s int8 quality check means nothing here; this bundle measures speed only)');
  return { dir: bundleDir, keys };
}
