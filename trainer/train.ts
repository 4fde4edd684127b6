/**
 * The training pipeline as one function: load → split (70/30, optional validation from train) → fit the scaler
 * on training rows → train the CNN-LSTM → evaluate on the test split → baseline on the same split → write the
 * run folder (report.json/.md, SVG plots, model/, scaler.json, checkpoints/). The CLI (train-command.ts), tests
 * and other stages call this; it never exits the process.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LabelMap } from '../shared/labels.ts';
import type { PortPolicy } from '../shared/features.ts';
import type { ScalerSpec } from '../shared/scaler.ts';
import { IdsError } from '../shared/errors.ts';
import { resolveRecipe, recipeLabel, classWeightsFor, batchFor, type Recipe, type RecipeOverrides } from './recipes.ts';
import { argmaxRows, computeMetrics, type Metrics } from './eval/metrics.ts';
import { writeReport, type TrainReport } from './eval/report.ts';
import { tuneThresholds, applyThresholds, type TunedThresholds } from './eval/thresholds.ts';
import { NORMAL_LABEL } from '../shared/labels.ts';
import { runBaseline, type BaselineResult } from './baseline/run.ts';
import type { ForestOptions } from './baseline/random-forest.ts';
import type { BackendChoice } from './backend/index.ts';
import type { TrainSet } from './train-loop.ts';
import type { Dataset } from './data/dataset.ts';
import type { PrunedFeature } from './data/feature-select.ts';
import type { ExportArgs } from './export/index.ts';

export interface RunOptions extends RecipeOverrides {
  data: string[];
  label?: string;
  map?: LabelMap;
  /** How the map was given ('cicids2017', 'binary', a file path, 'inline'), for the report. */
  mapSource?: string;
  recipe?: string;
  seed?: number;
  ports?: PortPolicy;
  dedupe?: boolean;
  drop?: string[];
  maxRows?: number;
  out?: string;
  resume?: boolean;
  backend?: BackendChoice;
  baseline?: boolean;
  forest?: ForestOptions;
  export?: boolean;
  /**
   * Flows of benign devices kept out of training (a device-split corpus's benign-validation.csv): thresholds are
   * raised until at most `benignAlertTarget` of them alert (eval/benign-calibration.ts).
   */
  benignVal?: string[];
  benignAlertTarget?: number;
  /** The most validation recall (absolute) an attack class may give up to the benign calibration (default 0.02). */
  benignMaxRecallDrop?: number;
  /** Feature columns: default the IoTID20/CICFlowMeter schema's; a list, or every numeric column (data/dataset.ts). */
  features?: readonly string[] | 'all-numeric';
  /** With export: refuse features the hub cannot compute (default true; false: a cloud-only bundle). */
  hubCheck?: boolean;
  progress?: boolean;
  signal?: AbortSignal;
  /** Status lines (loading, split sizes, results); default: none. */
  log?: (line: string) => void;
}

export interface RunResult {
  outDir: string;
  /** Present when the run finished; absent when it was interrupted (a checkpoint is left for --resume). */
  report?: TrainReport;
  interrupted: boolean;
}

export const DEFAULT_SEED = 1;

export function defaultOutDir(now = new Date()): string {
  const ts = now.toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
  return join('runs', ts);
}

function subset(ds: Dataset, X: Float32Array, rows: Uint32Array, classes: number): TrainSet {
  const y = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) y[i] = ds.y[rows[i]];
  return { X, y, rows: rows.length, features: ds.features.length, classes };
}

function countClasses(ds: Dataset, rows: Uint32Array): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(ds.labels.map((l) => [l, 0]));
  for (let i = 0; i < rows.length; i++) counts[ds.labels[ds.y[rows[i]]]]++;
  return counts;
}

export async function runTraining(opts: RunOptions): Promise<RunResult> {
  const log = opts.log ?? (() => {});
  if (!opts.data || opts.data.length === 0) throw new IdsError('BAD_OPTION', '--data: give at least one CSV file or folder');
  const seed = opts.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new IdsError('BAD_OPTION', `--seed ${seed}: expected an integer in [0, 2^32)`);
  const recipe: Recipe = resolveRecipe(opts.recipe, opts);
  const outDir = resolve(opts.out ?? defaultOutDir());
  if (opts.resume && !existsSync(join(outDir, 'checkpoints'))) {
    throw new IdsError('BAD_OPTION', `--resume: no checkpoints/ in ${outDir} (give the --out of the interrupted run)`);
  }
  await mkdir(outDir, { recursive: true });
  const timings: Record<string, number> = {};
  const tStart = performance.now();
  const lap = (name: string, t0: number) => (timings[name] = (performance.now() - t0) / 1000);

  // tfjs and the backend load only when a run starts, so importing this module stays cheap.
  const [{ initBackend }, { loadDataset }, { stratifiedSplit }, scalerFit, { buildCnnLstm }, loop, { saveModel }] = await Promise.all([
    import('./backend/index.ts'),
    import('./data/dataset.ts'),
    import('./data/split.ts'),
    import('./data/scaler-fit.ts'),
    import('./model/cnn-lstm.ts'),
    import('./train-loop.ts'),
    import('./model/model-io.ts'),
  ]);
  const backend = await initBackend(opts.backend ?? 'auto');
  log(`backend: ${backend}`);

  let t0 = performance.now();
  let ds = await loadDataset({
    files: opts.data,
    labelColumn: opts.label,
    labelMap: opts.map,
    drop: opts.drop,
    ports: opts.ports,
    dedupe: opts.dedupe,
    maxRows: opts.maxRows,
    features: opts.features,
  });
  lap('load', t0);
  if (opts.features) {
    const notes = ds.report.ignoredColumns;
    log(`features (${opts.features === 'all-numeric' ? 'all numeric columns' : 'as listed'}): ${ds.features.join(', ')}` +
      (notes.length ? `; ignored: ${notes.join(', ')}` : '') + (ds.report.constantColumns.length ? `; constant, dropped: ${ds.report.constantColumns.join(', ')}` : ''));
  }
  if (opts.export && opts.hubCheck !== false) {
    // Before any training: the export's bundle build would refuse these features anyway.
    const { featuresHubLacks } = await import('../shared/features.ts');
    const missing = featuresHubLacks(ds.features);
    if (missing.length) {
      throw new IdsError('BAD_OPTION', `--export: the hub's flow meter cannot compute ${missing.join(', ')}; drop them (--features LIST) or add --no-hub-check for a cloud-only evaluation bundle`);
    }
  }
  const C = ds.labels.length;
  if (ds.rows === 0) throw new IdsError('EMPTY_INPUT', `no usable rows in ${opts.data.join(', ')} (see skipped counts)`);
  if (C < 2) throw new IdsError('BAD_OPTION', `only one class (${ds.labels.join(', ')}) after the label map: a classifier needs ≥ 2`);
  log(`data: ${ds.rows} rows × ${ds.features.length} features, classes ${ds.labels.map((l) => `${l} ${ds.report.classCounts[l]}`).join(', ')}`);

  const split = stratifiedSplit(ds.y, C, recipe.testFraction, seed);
  let fitRows = split.train;
  let valRows: Uint32Array | null = null;
  if (recipe.valFraction > 0) {
    const v = stratifiedSplit(ds.y, C, recipe.valFraction, seed + 1, split.train);
    fitRows = v.train;
    valRows = v.test;
  }
  recipe.batchSize = batchFor(recipe, fitRows.length);
  log(`split: train ${fitRows.length}${valRows ? `, validation ${valRows.length}` : ''}, test ${split.test.length} (seed ${seed})`);

  t0 = performance.now();
  const fitOpts = { log: recipe.log, ports: recipe.portEncoding, y: ds.y, normal: ds.labels.indexOf(NORMAL_LABEL) };
  let scaler: ScalerSpec = scalerFit.fitScaler(ds, fitRows, fitOpts);
  let pruned: PrunedFeature[] = [];
  if (recipe.pruneCorrelated !== null) {
    const { selectUncorrelated, keepColumns } = await import('./data/feature-select.ts');
    const sel = selectUncorrelated(scalerFit.applyScaler(scaler, ds, fitRows), ds.features.length, fitRows.length, ds.features, recipe.pruneCorrelated);
    pruned = sel.dropped;
    ds = keepColumns(ds, sel.keep);
    // Per-feature fits do not depend on the other columns: refitting gives the kept features' specs unchanged.
    scaler = scalerFit.fitScaler(ds, fitRows, fitOpts);
    log(`features: ${ds.features.length} kept, ${pruned.length} dropped as copies (|r| ≥ ${recipe.pruneCorrelated}): ` +
      pruned.map((p) => `${p.feature}~${p.like}`).join(', '));
  }
  const train = subset(ds, scalerFit.applyScaler(scaler, ds, fitRows), fitRows, C);
  const val = valRows ? subset(ds, scalerFit.applyScaler(scaler, ds, valRows), valRows, C) : null;
  const test = subset(ds, scalerFit.applyScaler(scaler, ds, split.test), split.test, C);
  scalerFit.saveScaler(join(outDir, 'scaler.json'), scaler);
  lap('scale', t0);

  const model = buildCnnLstm({ features: ds.features.length, classes: C, seed });
  const classWeights = classWeightsFor(train.y, C, recipe.classWeights);
  t0 = performance.now();
  const result = await loop.trainModel(model, train, val, {
    epochs: recipe.epochs,
    batchSize: recipe.batchSize,
    learningRate: recipe.learningRate,
    seed,
    classWeights,
    lrSchedule: recipe.lrSchedule,
    earlyStopping: recipe.earlyStopping,
    emaDecay: recipe.emaDecay,
    checkpointDir: join(outDir, 'checkpoints'),
    resume: opts.resume,
    progress: opts.progress,
    signal: opts.signal,
    onEpoch: (e) => {
      log(
        `epoch ${e.epoch}: loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(4)}` +
          (e.valLoss !== undefined ? ` | val loss ${e.valLoss.toFixed(4)} acc ${e.valAccuracy!.toFixed(4)} macro-F1 ${e.valMacroF1!.toFixed(4)}` : '') +
          ` | lr ${e.lr.toExponential(2)} | ${Math.round(e.samplesPerSec)} samples/s`,
      );
    },
  });
  lap('train', t0);
  if (result.interrupted) {
    model.dispose();
    log(`interrupted: checkpoint saved in ${join(outDir, 'checkpoints')}; continue with --resume --out ${outDir}`);
    return { outDir, interrupted: true };
  }

  t0 = performance.now();
  const proba = loop.predictProba(model, test.X, test.rows, test.features);
  const argmaxMetrics: Metrics = computeMetrics(ds.labels, test.y, argmaxRows(proba, test.rows, C));
  let metrics = argmaxMetrics;
  let tuned: TunedThresholds | null = null;
  const normal = ds.labels.indexOf(NORMAL_LABEL);
  let benignCalibration: TrainReport['benignCalibration'];
  if (recipe.tuneThresholds && val && normal >= 0) {
    const valProba = loop.predictProba(model, val.X, val.rows, val.features);
    tuned = tuneThresholds(ds.labels, valProba, val.y, normal);
    log(`thresholds (tuned on validation, macro-F1 ${tuned.valMacroF1Argmax.toFixed(4)} → ${tuned.valMacroF1.toFixed(4)}): ${ds.labels.map((l, i) => (i === normal ? '' : `${l} ${tuned!.thresholds[i]}`)).filter(Boolean).join(', ')}`);
    if (opts.benignVal?.length) {
      const { loadBenignRows } = await import('./data/benign-rows.ts');
      const { calibrateOnBenign } = await import('./eval/benign-calibration.ts');
      const b = await loadBenignRows(opts.benignVal, ds.features, scaler, opts.ports);
      const cal = calibrateOnBenign(C, normal, tuned.thresholds, opts.benignAlertTarget ?? 0.01, loop.predictProba(model, b.X, b.rows, ds.features.length), valProba, val.y, opts.benignMaxRecallDrop ?? 0.02);
      tuned = { ...tuned, thresholds: cal.thresholds };
      benignCalibration = { files: opts.benignVal, ...cal, thresholds: Object.fromEntries(ds.labels.map((l, i) => [l, cal.thresholds[i]])) };
      log(`thresholds raised for held-out benign devices (${b.rows} flows, target ${(100 * cal.target).toFixed(2)} %, each class's validation recall within ${cal.maxRecallDrop}): alerted ${(100 * cal.before).toFixed(2)} % → ${(100 * cal.after).toFixed(2)} %, validation accuracy ${cal.validationCorrectBefore.toFixed(4)} → ${cal.validationCorrectAfter.toFixed(4)}: ${ds.labels.map((l, i) => (i === normal ? '' : `${l} ${cal.thresholds[i]}`)).filter(Boolean).join(', ')}`);
    }
    metrics = computeMetrics(ds.labels, test.y, applyThresholds(proba, test.rows, C, normal, tuned.thresholds));
  }
  lap('evaluate', t0);
  const thresholds = tuned ? Object.fromEntries(ds.labels.map((l, i) => [l, tuned!.thresholds[i]])) : null;
  await saveModel(model, join(outDir, 'model'), { labels: ds.labels, features: ds.features, recipe: recipeLabel(recipe), seed });
  log(
    `CNN-LSTM on test: accuracy ${metrics.accuracy.toFixed(4)}, macro-F1 ${metrics.macroF1.toFixed(4)}` +
      (tuned ? ` (plain arg-max: ${argmaxMetrics.accuracy.toFixed(4)}, ${argmaxMetrics.macroF1.toFixed(4)})` : ''),
  );

  let baseline: BaselineResult | null = null;
  if (opts.baseline !== false) {
    t0 = performance.now();
    // Same training rows as the CNN-LSTM saw, validation included (a forest needs no early stopping).
    baseline = runBaseline(
      { X: ds.X, features: ds.features.length, y: ds.y, labels: ds.labels, train: split.train, test: split.test },
      { seed, ...opts.forest },
    );
    lap('baseline', t0);
    log(`baseline ${baseline.description}: accuracy ${baseline.accuracy.toFixed(4)}, macro-F1 ${baseline.macroF1.toFixed(4)} (trained in ${baseline.trainSeconds.toFixed(1)} s)`);
  }
  timings.total = (performance.now() - tStart) / 1000;

  const report: TrainReport = {
    ...metricsForReport(metrics),
    decision: tuned ? 'thresholds tuned on validation' : 'argmax',
    thresholds,
    ...(benignCalibration ? { benignCalibration } : {}),
    argmax: { accuracy: argmaxMetrics.accuracy, macroF1: argmaxMetrics.macroF1, weightedF1: argmaxMetrics.weightedF1, perClass: argmaxMetrics.perClass, confusion: argmaxMetrics.confusion },
    baseline: baseline ? baselineForReport(baseline) : null,
    model: { name: 'cnn-lstm', backend, features: ds.features, pruned, trainSamplesPerSec: median(result.history.map((h) => h.samplesPerSec)) },
    data: {
      files: opts.data,
      labelColumn: opts.label ?? 'Cat',
      labelMap: opts.mapSource ?? (opts.map ? 'inline' : 'none'),
      ports: opts.ports ?? 'dst',
      dedupe: !!opts.dedupe,
      report: ds.report,
    },
    split: {
      testFraction: recipe.testFraction,
      valFraction: recipe.valFraction,
      rows: { train: fitRows.length, validation: valRows?.length ?? 0, test: split.test.length },
      classCounts: { train: countClasses(ds, fitRows), validation: valRows ? countClasses(ds, valRows) : {}, test: countClasses(ds, split.test) },
    },
    recipe,
    classWeights: classWeights ? Object.fromEntries(ds.labels.map((l, i) => [l, classWeights[i]])) : null,
    seed,
    timings,
    history: result.history,
    bestEpoch: result.bestEpoch,
    stoppedEarly: result.stoppedEarly,
    createdAt: new Date().toISOString(),
  };
  await writeReport(outDir, report);
  log(`report: ${join(outDir, 'report.md')}`);

  try {
    if (opts.export) {
      report.export = await exportRun({
        model, scaler, portPolicy: opts.ports ?? 'dst', labels: ds.labels, calibration: train.X,
        test: { X: test.X, y: test.y, rows: test.rows },
        training: {
          data: opts.data, rows: { train: split.train.length, test: split.test.length },
          classCounts: ds.report.classCounts, recipe: recipeLabel(recipe), seed,
        },
        outDir,
        ...(thresholds ? { thresholds } : {}),
        hubCheck: opts.hubCheck,
        log,
      });
      await writeReport(outDir, report);
    }
  } finally {
    model.dispose();
  }
  return { outDir, report, interrupted: false };
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function metricsForReport(m: Metrics) {
  return {
    labels: m.labels,
    accuracy: m.accuracy,
    macroF1: m.macroF1,
    weightedF1: m.weightedF1,
    macroPrecision: m.macroPrecision,
    macroRecall: m.macroRecall,
    perClass: m.perClass,
    confusion: m.confusion,
  };
}

function baselineForReport(b: BaselineResult): NonNullable<TrainReport['baseline']> {
  return {
    name: b.name,
    description: b.description,
    ...metricsForReport(b),
    trainSeconds: b.trainSeconds,
    predictSeconds: b.predictSeconds,
  };
}

/**
 * --export: ONNX fp32 + int8 and a signed hub bundle in OUT/bundle, by the export stage's module, loaded only
 * when asked for (it pulls in the ONNX tooling and runtimes).
 */
async function exportRun(args: ExportArgs): Promise<TrainReport['export']> {
  let mod: typeof import('./export/index.ts');
  try {
    mod = await import('./export/index.ts');
  } catch (e) {
    throw new IdsError('BAD_MODEL', `--export: the export module trainer/export/index.ts cannot be loaded (${(e as Error).message}); the trained model is in ${args.outDir}/model`, { cause: e });
  }
  const res = await mod.exportAndBundle(args);
  const c = res.comparison;
  args.log?.(`bundle: ${res.bundleDir} (int8 accuracy ${c.int8.accuracy.toFixed(4)}, macro-F1 ${c.int8.macroF1.toFixed(4)}; checks ${c.checks.pass ? 'pass' : 'FAIL'})`);
  return {
    bundleDir: res.bundleDir,
    fp32: { accuracy: c.fp32.accuracy, macroF1: c.fp32.macroF1, bytes: c.fp32.bytes },
    int8: { accuracy: c.int8.accuracy, macroF1: c.int8.macroF1, bytes: c.int8.bytes },
    checksPass: c.checks.pass,
  };
}
