/**
 * `train --init-from MODEL --data FLEET.csv --data ORIGINAL.csv …`: continue training the running model on the
 * fleet's labelled flows (dataset export: operators' marks and sampled Normal flows) with a replay of its original
 * corpus mixed in, so the classes the fleet did not mark are not forgotten.
 *
 * - The first --data is the fleet's; every further --data is replay (the original corpus). Replay rows are split
 *   with the init model's seed and test fraction, which reproduces the init model's own test split when they are
 *   its corpus: that split stays unseen and is where "did it forget?" is measured.
 * - The fleet rows are split too (stratified, --fleet-test-fraction, default 0.3): the held-out part is where
 *   "did it learn the marks?" is measured. Neither test part is trained on.
 * - Features, scaler, labels and thresholds are the init model's: the hubs' flow meter, wasm scaler and alert
 *   policy stay as they are, and the init weights keep their meaning. --refit-scaler refits the scaler on the
 *   training rows (the report says so and shows how many fleet values fell outside the init scaler's range,
 *   the reason to do it); the weights then see shifted inputs for a while.
 * - Defaults for fine-tuning (recipes.ts has the from-scratch ones): 3 epochs, Adam lr 1e-4 constant (a twentieth
 *   of the default recipe's 2e-3: large steps undo what the init model learned before the replay can hold it),
 *   batch 32, the fleet's rows ×3 (marked rows are few; they are what the fine-tune is for), 3 replay rows per
 *   weighted fleet row, the init model's class weights (fineTuneClassWeights), thresholds re-matched to the init
 *   model's recall (rematch-thresholds.ts), no early stopping (3 epochs leave nothing to stop, and no validation
 *   rows are taken from the small fleet data).
 *   Measured 2026-12-04 (shipped bundle; fleet = 131 flows of MAXGateway, a held-out device the model partly calls
 *   Scan, + 589 other held-out benign flows, all Normal; replay = the shipped model's 30,120-flow corpus, whose test
 *   split the init reproduces: 99.06 % accuracy as in its report), fleet held-out Normal alerted / original test
 *   accuracy: init 3.24 % / 99.06 % (int8 98.94 %); fleet ×1, replay 3, lr 1e-4, init thresholds, no class
 *   weights: 0 % / 97.78 % (arg-max 99.28 %: the init's thresholds no longer fit, MITM recall 97.8 → 89.8 %); with
 *   the init's class weights 0 % / 98.09 %; with re-matched thresholds 3.70 % / 98.92 %; fleet ×3 (the default):
 *   0 % / 98.68 %; fleet ×5: 0.46 % / 98.89 %; fleet ×3 at lr 3e-4: 0.46 % / 98.87 %.
 * - The training rows: the fleet's training part repeated --fleet-weight times (a fraction takes a seeded random
 *   share of one more copy), plus --replay-ratio × that many replay rows drawn per class in proportion from the
 *   replay's training part (seeded; every class keeps at least MIN_REPLAY_PER_CLASS rows when it has them).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { IdsError } from '../../shared/errors.ts';
import { Rng } from '../../shared/random.ts';
import type { LabelMap } from '../../shared/labels.ts';
import { NORMAL_LABEL } from '../../shared/labels.ts';
import { transformValue, type ScalerSpec } from '../../shared/scaler.ts';
import type { BackendChoice } from '../backend/index.ts';
import type { Dataset } from '../data/dataset.ts';
import { defaultOutDir } from '../train.ts';
import { comparisonMarkdown, decide, score, type Comparison } from './compare.ts';
import { CLASS_WEIGHTINGS, classWeightsFor, type ClassWeighting } from '../recipes.ts';
import type { InitModel } from './init-model.ts';

export const FINE_TUNE_DEFAULTS = { epochs: 3, learningRate: 1e-4, batchSize: 32, fleetWeight: 3, replayRatio: 3, fleetTestFraction: 0.3, replayTestFraction: 0.3 } as const;
export const MIN_REPLAY_PER_CLASS = 50;
/** The default recipe's validation share (recipes.ts), for the threshold re-match rows. */
export const VALIDATION_FRACTION = 0.15;

export interface FineTuneOptions {
  initFrom: string;
  fleet: string[];
  replay: string[];
  label?: string;
  map?: LabelMap;
  mapSource?: string;
  seed?: number;
  epochs?: number;
  learningRate?: number;
  batchSize?: number;
  fleetWeight?: number;
  replayRatio?: number;
  fleetTestFraction?: number;
  refitScaler?: boolean;
  /**
   * Per-class loss weights: 'init' (default) the init model's own, from its recipe's weighting over its training
   * class counts, so the classes keep the balance they were trained with; or a weighting over the fine-tuning rows.
   */
  classWeights?: 'init' | ClassWeighting;
  /**
   * 'rematch' (default with replay data): per-class thresholds re-fitted to keep the init model's recall on the
   * replay's validation rows (rematch-thresholds.ts); 'init': the init model's thresholds unchanged.
   */
  thresholds?: 'rematch' | 'init';
  out?: string;
  backend?: BackendChoice;
  export?: boolean;
  progress?: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface FineTuneReport {
  kind: 'fine-tune';
  initFrom: { dir: string; source: InitModel['source']; version: string | null; release: number | null; seed: number; recipe: string };
  data: { fleet: string[]; replay: string[]; labelColumn: string; labelMap: string; dropped: Record<string, Record<string, number>>; ports: string };
  rows: { fleetTrain: number; fleetTest: number; replayTrain: number; replayValidation: number; replayTest: number; replayUsed: number; trainTotal: number };
  /** The features the model reads (the init model's), and whether the scaler was refit. */
  scaler: { refit: boolean; reason: string; fleetValuesOutsideRange: Record<string, number> };
  settings: {
    epochs: number; learningRate: number; batchSize: number; fleetWeight: number; replayRatio: number; fleetTestFraction: number;
    replayTestFraction: number; seed: number; classWeights: string; classWeightValues: Record<string, number> | null;
  };
  /** The training class counts the init's class weights come from (carried on, so a chain of fine-tunes keeps them). */
  trainClassCounts: Record<string, number> | null;
  comparisons: Comparison[];
  /** The fine-tuned model's per-class alert thresholds (into its bundle); the init model is scored with its own. */
  thresholds: Record<string, number> | null;
  initThresholds: Record<string, number> | null;
  /** Present when the thresholds were re-matched to the init model's recall (rematch-thresholds.ts). */
  thresholdRematch: { rows: number; classes: Record<string, import('./rematch-thresholds.ts').RematchedThreshold> } | null;
  seed: number;
  timings: Record<string, number>;
  history: { epoch: number; loss: number; accuracy: number; seconds: number }[];
  createdAt: string;
  export?: { bundleDir: string; int8: { accuracy: number; macroF1: number }; checksPass: boolean };
}

export interface FineTuneResult {
  outDir: string;
  report?: FineTuneReport;
  interrupted: boolean;
}

function check(name: string, v: number, ok: boolean, want: string): void {
  if (!ok) throw new IdsError('BAD_OPTION', `--${name} ${v}: must be ${want}`);
}

/** Rows of `ds` whose class the init model knows, as init-label indices; the rest counted by label. */
function toInitLabels(ds: Dataset, labels: readonly string[]): { y: Int32Array; keep: Uint32Array; dropped: Record<string, number> } {
  const map = ds.labels.map((l) => labels.indexOf(l));
  const keep: number[] = [];
  const dropped: Record<string, number> = {};
  for (let i = 0; i < ds.rows; i++) {
    if (map[ds.y[i]] >= 0) keep.push(i);
    else dropped[ds.labels[ds.y[i]]] = (dropped[ds.labels[ds.y[i]]] ?? 0) + 1;
  }
  const y = new Int32Array(ds.rows).fill(-1);
  for (const i of keep) y[i] = map[ds.y[i]];
  return { y, keep: Uint32Array.from(keep), dropped };
}

/** `rows` (indices into y) with labels remapped: a compact label array for stratifiedSplit over kept rows only. */
function compactLabels(y: Int32Array, rows: Uint32Array): Int32Array {
  return Int32Array.from(rows, (r) => y[r]);
}

/** Replay rows drawn per class in proportion from `pool` (indices), seeded; at least `minPerClass` per class. */
export function sampleReplay(y: Int32Array, pool: Uint32Array, want: number, classes: number, seed: number, minPerClass = MIN_REPLAY_PER_CLASS): Uint32Array {
  if (want >= pool.length) return pool;
  if (want <= 0) return new Uint32Array(0);
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (const r of pool) byClass[y[r]].push(r);
  const rng = new Rng(seed);
  const out: number[] = [];
  for (const rows of byClass) {
    if (rows.length === 0) continue;
    const k = Math.min(rows.length, Math.max(minPerClass, Math.round((want * rows.length) / pool.length)));
    rng.shuffle(rows);
    out.push(...rows.slice(0, k));
  }
  return Uint32Array.from(out).sort();
}

/** The fleet's training rows repeated `weight` times (the fraction: a seeded random share of one more copy). */
export function weightRows(rows: Uint32Array, weight: number, seed: number): Uint32Array {
  const whole = Math.floor(weight);
  const out: number[] = [];
  for (let k = 0; k < whole; k++) out.push(...rows);
  const frac = weight - whole;
  if (frac > 0) {
    const rng = new Rng(seed);
    for (const r of rows) if (rng.next() < frac) out.push(r);
  }
  return Uint32Array.from(out);
}

/** Share of finite values per feature that the scaler clips (outside its fitted range), over `rows` of ds. */
function outsideRange(scaler: ScalerSpec, ds: Dataset, rows: Uint32Array): Record<string, number> {
  const W = ds.features.length;
  const out: Record<string, number> = {};
  scaler.features.forEach((f, j) => {
    if (scaler.transforms[j] === 'lookup' || rows.length === 0) return;
    const col = ds.features.indexOf(f);
    let n = 0;
    for (const r of rows) {
      const v = ds.X[r * W + col];
      if (v - v !== 0) continue;
      const t = transformValue(v, scaler.transforms[j]);
      if (t < scaler.min[j] || t > scaler.max[j]) n++;
    }
    if (n > 0) out[f] = n / rows.length;
  });
  return out;
}

type Modules = {
  loadDataset: typeof import('../data/dataset.ts').loadDataset;
  stratifiedSplit: typeof import('../data/split.ts').stratifiedSplit;
  scalerFit: typeof import('../data/scaler-fit.ts');
};

/** The fleet's and the replay's rows with their splits (indices into each dataset; labels as init-label indices). */
interface Parts {
  fleetDs: Dataset;
  fleet: ReturnType<typeof toInitLabels>;
  fleetSplit: { train: Uint32Array; test: Uint32Array };
  replayDs?: Dataset;
  replay?: ReturnType<typeof toInitLabels>;
  replaySplit?: { train: Uint32Array; test: Uint32Array };
  /** Replay validation rows for the threshold re-match (empty when not re-matching). */
  replayVal: Uint32Array;
  dropped: Record<string, Record<string, number>>;
}

async function loadParts(o: FineTuneOptions, init: InitModel, fleetTestFraction: number, rematch: boolean, m: Modules, log: (l: string) => void): Promise<Parts> {
  const labels = init.labels;
  const C = labels.length;
  const load = (files: string[]) =>
    m.loadDataset({ files, labelColumn: o.label, labelMap: o.map, ports: init.portPolicy, features: [...init.scaler.features] });
  const fleetDs = await load(o.fleet);
  const replayDs = o.replay.length ? await load(o.replay) : undefined;
  const fleet = toInitLabels(fleetDs, labels);
  const replay = replayDs ? toInitLabels(replayDs, labels) : undefined;
  if (fleet.keep.length === 0) throw new IdsError('EMPTY_INPUT', `--data ${o.fleet.join(', ')}: no row has a class the init model knows (${labels.join(', ')})`);
  const dropped: Record<string, Record<string, number>> = {};
  if (Object.keys(fleet.dropped).length) dropped.fleet = fleet.dropped;
  if (replay && Object.keys(replay.dropped).length) dropped.replay = replay.dropped;
  for (const [k, v] of Object.entries(dropped)) log(`${k}: rows of classes the init model does not know, dropped: ${JSON.stringify(v)}`);

  const splitKept = (y: Int32Array, keep: Uint32Array, frac: number, s: number): { train: Uint32Array; test: Uint32Array } => {
    const sp = m.stratifiedSplit(compactLabels(y, keep), C, frac, s);
    return { train: Uint32Array.from(sp.train, (i) => keep[i]), test: Uint32Array.from(sp.test, (i) => keep[i]) };
  };
  const fleetSplit = splitKept(fleet.y, fleet.keep, fleetTestFraction, o.seed ?? 1);
  const replaySplit = replay ? splitKept(replay.y, replay.keep, FINE_TUNE_DEFAULTS.replayTestFraction, init.seed) : undefined;
  // Validation rows for the thresholds, carved from the replay's training part as the trainer carves its own
  // (seed + 1, 15 %): with the original corpus these are the rows the init model's thresholds were tuned on.
  let replayVal: Uint32Array = new Uint32Array(0);
  if (rematch && replay && replaySplit) {
    const v = m.stratifiedSplit(replay.y, C, VALIDATION_FRACTION, init.seed + 1, replaySplit.train);
    replaySplit.train = v.train;
    replayVal = v.test;
  }
  return { fleetDs, fleet, fleetSplit, replayDs, replay, replaySplit, replayVal, dropped };
}

/** The init model's scaler, or with --refit-scaler one fitted on the training rows of both parts; and why. */
function chooseScaler(o: FineTuneOptions, init: InitModel, p: Parts, scalerFit: Modules['scalerFit']): FineTuneReport['scaler'] & { spec: ScalerSpec } {
  const fleetValuesOutsideRange = outsideRange(init.scaler, p.fleetDs, p.fleetSplit.train);
  if (!o.refitScaler) {
    return { spec: init.scaler, refit: false, reason: 'kept: the init model\'s scaler (the hubs\' wasm scaler and the init weights assume it)', fleetValuesOutsideRange };
  }
  const fitDs = concatRows(p.fleetDs, p.fleetSplit.train, p.replayDs, p.replaySplit?.train);
  const yAll = Int32Array.from([...p.fleetSplit.train].map((r) => p.fleet.y[r]).concat(p.replaySplit ? [...p.replaySplit.train].map((r) => p.replay!.y[r]) : []));
  const spec = scalerFit.fitScaler(fitDs, Uint32Array.from({ length: yAll.length }, (_, i) => i), {
    log: init.scaler.transforms.some((x) => x === 'log1p') ? 'auto' : 'none',
    ports: init.scaler.transforms.some((x) => x === 'lookup') ? 'benign-rate' : 'value',
    y: yAll,
    normal: init.labels.indexOf(NORMAL_LABEL),
  });
  const n = Object.keys(fleetValuesOutsideRange).length;
  return { spec, refit: true, reason: `refit on the fine-tuning rows (--refit-scaler); ${n} feature(s) had fleet values outside the init scaler's range`, fleetValuesOutsideRange };
}

const ys = (y: Int32Array, rows: Uint32Array) => Int32Array.from(rows, (r) => y[r]);

/** The training set: the fleet's training rows × fleetWeight, then replay rows in proportion. */
function trainingSet(p: Parts, scaler: ScalerSpec, fleetWeight: number, replayRatio: number, C: number, seed: number, scalerFit: Modules['scalerFit']) {
  const F = scaler.features.length;
  const fleetRows = weightRows(p.fleetSplit.train, fleetWeight, seed + 17);
  const replayRows = p.replaySplit ? sampleReplay(p.replay!.y, p.replaySplit.train, Math.round(replayRatio * fleetRows.length), C, seed + 29) : new Uint32Array(0);
  const X = new Float32Array((fleetRows.length + replayRows.length) * F);
  X.set(scalerFit.applyScaler(scaler, p.fleetDs, fleetRows), 0);
  if (replayRows.length) X.set(scalerFit.applyScaler(scaler, p.replayDs!, replayRows), fleetRows.length * F);
  const y = Int32Array.from([...ys(p.fleet.y, fleetRows), ...(replayRows.length ? ys(p.replay!.y, replayRows) : [])]);
  return { set: { X, y, rows: y.length, features: F, classes: C }, fleetRows: fleetRows.length, replayRows: replayRows.length };
}

/** One evaluation set: its rows scaled both ways, and the init model's probabilities (tfjs and, if any, int8). */
interface EvalSet {
  name: string;
  ds: Dataset;
  rows: Uint32Array;
  y: Int32Array;
  X: Float32Array;
  old: Float32Array;
  int8?: Float32Array;
}

/** The init model's probabilities on the evaluation sets, before any training step (the model trains in place). */
async function scoreInit(init: InitModel, sets: Omit<EvalSet, 'old' | 'int8'>[], predict: (X: Float32Array, n: number) => Float32Array): Promise<EvalSet[]> {
  const out: EvalSet[] = sets.map((s) => ({ ...s, old: predict(s.X, s.rows.length) }));
  if (!init.int8) return out;
  const { openSession } = await import('../export/runtimes.ts');
  const session = await openSession('ort-node', init.int8);
  try {
    for (const s of out) if (s.rows.length) s.int8 = (await session.run(s.X, s.rows.length, ['probabilities'], 256)).probabilities;
  } finally {
    await session.release();
  }
  return out;
}

export async function runFineTune(o: FineTuneOptions): Promise<FineTuneResult> {
  const log = o.log ?? (() => {});
  const d = FINE_TUNE_DEFAULTS;
  const seed = o.seed ?? 1;
  const epochs = o.epochs ?? d.epochs;
  const learningRate = o.learningRate ?? d.learningRate;
  const batchSize = o.batchSize ?? d.batchSize;
  const fleetWeight = o.fleetWeight ?? d.fleetWeight;
  const replayRatio = o.replayRatio ?? d.replayRatio;
  const fleetTestFraction = o.fleetTestFraction ?? d.fleetTestFraction;
  check('fleet-weight', fleetWeight, fleetWeight > 0 && fleetWeight <= 100, 'in (0, 100]');
  check('replay-ratio', replayRatio, replayRatio >= 0 && replayRatio <= 1000, 'in [0, 1000]');
  check('fleet-test-fraction', fleetTestFraction, fleetTestFraction > 0 && fleetTestFraction < 1, 'in (0, 1)');
  if (o.fleet.length === 0) throw new IdsError('BAD_OPTION', '--init-from needs --data FLEET.csv (the first --data is the fleet\'s)');
  const outDir = resolve(o.out ?? defaultOutDir());
  await mkdir(outDir, { recursive: true });
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  const lap = (name: string, t: number) => (timings[name] = (performance.now() - t) / 1000);

  const [{ initBackend }, { loadDataset }, { stratifiedSplit }, scalerFit, loop, { saveModel }, { loadInitModel }] = await Promise.all([
    import('../backend/index.ts'),
    import('../data/dataset.ts'),
    import('../data/split.ts'),
    import('../data/scaler-fit.ts'),
    import('../train-loop.ts'),
    import('../model/model-io.ts'),
    import('./init-model.ts'),
  ]);
  const backend = await initBackend(o.backend ?? 'auto');
  let t = performance.now();
  const init = await loadInitModel(o.initFrom, seed);
  lap('init', t);
  const labels = init.labels;
  const C = labels.length;
  const F = init.scaler.features.length;
  log(`init: ${init.version ?? init.dir} (${init.source}), ${F} features, classes ${labels.join(', ')}; backend ${backend}`);

  t = performance.now();
  const rematch = (o.thresholds ?? 'rematch') === 'rematch' && o.replay.length > 0 && !!init.thresholds;
  const p = await loadParts(o, init, fleetTestFraction, rematch, { loadDataset, stratifiedSplit, scalerFit }, log);
  lap('load', t);
  const sc = chooseScaler(o, init, p, scalerFit);
  const scaler = sc.spec;
  log(`scaler: ${sc.reason}`);

  t = performance.now();
  const predict = (X: Float32Array, n: number) => loop.predictProba(init.model, X, n, F);
  const sets = await scoreInit(init, [
    ...(p.fleetSplit.test.length ? [{ name: `fleet data, held-out ${Math.round(fleetTestFraction * 100)} % (stratified, seed ${seed})`, ds: p.fleetDs, rows: p.fleetSplit.test, y: ys(p.fleet.y, p.fleetSplit.test), X: scalerFit.applyScaler(init.scaler, p.fleetDs, p.fleetSplit.test) }] : []),
    ...(p.replaySplit?.test.length ? [{ name: `original data, test split (${Math.round(d.replayTestFraction * 100)} %, the init model's seed ${init.seed})`, ds: p.replayDs!, rows: p.replaySplit.test, y: ys(p.replay!.y, p.replaySplit.test), X: scalerFit.applyScaler(init.scaler, p.replayDs!, p.replaySplit.test) }] : []),
  ], predict);
  const valX = p.replayVal.length ? scalerFit.applyScaler(init.scaler, p.replayDs!, p.replayVal) : undefined;
  const oldVal = valX ? predict(valX, p.replayVal.length) : undefined;
  lap('evaluateInit', t);

  const ts = trainingSet(p, scaler, fleetWeight, replayRatio, C, seed, scalerFit);
  const train = ts.set;
  log(`rows: fleet ${p.fleetSplit.train.length} train (×${fleetWeight} = ${ts.fleetRows}) / ${p.fleetSplit.test.length} held out; ` +
    `replay ${ts.replayRows} of ${p.replaySplit?.train.length ?? 0} train / ${p.replayVal.length} validation / ${p.replaySplit?.test.length ?? 0} test (the init model's split, seed ${init.seed})`);
  const cw = fineTuneClassWeights(o.classWeights ?? 'init', init, labels, train.y);
  if (cw.weights) log(`class weights (${cw.label}): ${labels.map((l, i) => `${l} ${cw.weights![i].toFixed(2)}`).join(', ')}`);

  t = performance.now();
  const result = await loop.trainModel(init.model, train, null, {
    epochs, batchSize, learningRate, seed, lrSchedule: 'constant', earlyStopping: null, classWeights: cw.weights,
    checkpointDir: null, progress: o.progress, signal: o.signal,
    onEpoch: (e) => log(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(4)} | ${Math.round(e.samplesPerSec)} samples/s`),
  });
  lap('train', t);
  log(`fine-tune: ${train.rows} rows × ${result.history.length} epochs in ${timings.train.toFixed(1)} s`);
  if (result.interrupted) {
    init.model.dispose();
    return { outDir, interrupted: true };
  }

  t = performance.now();
  const rescaled = (ds: Dataset, rows: Uint32Array, X: Float32Array) => (scaler === init.scaler ? X : scalerFit.applyScaler(scaler, ds, rows));
  let thr = init.thresholds;
  let rematched: FineTuneReport['thresholdRematch'] = null;
  if (rematch && valX) {
    const { rematchThresholds } = await import('./rematch-thresholds.ts');
    const newVal = predict(rescaled(p.replayDs!, p.replayVal, valX), p.replayVal.length);
    const r = rematchThresholds(labels, labels.indexOf(NORMAL_LABEL), init.thresholds!, oldVal!, newVal, ys(p.replay!.y, p.replayVal));
    thr = r.thresholds;
    rematched = { rows: p.replayVal.length, classes: r.classes };
    log(`thresholds re-matched to the init model's recall on ${p.replayVal.length} replay validation rows: ` +
      Object.entries(r.classes).map(([l, c]) => `${l} ${c.init} → ${c.threshold}`).join(', '));
  }
  const comparisons: Comparison[] = sets.map((s) => {
    const n = s.rows.length;
    const newP = predict(rescaled(s.ds, s.rows, s.X), n);
    return {
      name: s.name,
      old: score(labels, s.y, decide(s.old, n, labels, init.thresholds), s.old),
      ...(s.int8 ? { oldInt8: score(labels, s.y, decide(s.int8, n, labels, init.thresholds), s.int8) } : {}),
      new: score(labels, s.y, decide(newP, n, labels, thr), newP),
    };
  });
  lap('evaluate', t);
  for (const c of comparisons) {
    log(`${c.name}: accuracy ${c.old.accuracy.toFixed(4)} → ${c.new.accuracy.toFixed(4)}, macro-F1 ${c.old.macroF1.toFixed(4)} → ${c.new.macroF1.toFixed(4)}` +
      (c.old.normalFalseAlertRate !== null ? `, Normal alerted ${(100 * c.old.normalFalseAlertRate).toFixed(2)} % → ${(100 * c.new.normalFalseAlertRate!).toFixed(2)} %` : ''));
  }

  const recipe = `fine-tune (epochs ${epochs}, lr ${learningRate}, fleet-weight ${fleetWeight}, replay-ratio ${replayRatio}, classWeights ${cw.mode}${o.refitScaler ? ', scaler refit' : ''})`;
  await saveModel(init.model, join(outDir, 'model'), { labels, features: [...init.scaler.features], recipe, seed, initFrom: init.version ?? init.dir });
  scalerFit.saveScaler(join(outDir, 'scaler.json'), scaler);
  timings.total = (performance.now() - t0) / 1000;
  const report: FineTuneReport = {
    kind: 'fine-tune',
    initFrom: { dir: init.dir, source: init.source, version: init.version, release: init.release, seed: init.seed, recipe: init.recipe },
    data: { fleet: o.fleet, replay: o.replay, labelColumn: o.label ?? 'Cat', labelMap: o.mapSource ?? (o.map ? 'inline' : 'none'), dropped: p.dropped, ports: init.portPolicy },
    rows: {
      fleetTrain: p.fleetSplit.train.length, fleetTest: p.fleetSplit.test.length, replayTrain: p.replaySplit?.train.length ?? 0,
      replayValidation: p.replayVal.length, replayTest: p.replaySplit?.test.length ?? 0, replayUsed: ts.replayRows, trainTotal: train.rows,
    },
    scaler: { refit: sc.refit, reason: sc.reason, fleetValuesOutsideRange: sc.fleetValuesOutsideRange },
    settings: {
      epochs, learningRate, batchSize, fleetWeight, replayRatio, fleetTestFraction, replayTestFraction: d.replayTestFraction, seed,
      classWeights: cw.label, classWeightValues: cw.weights ? Object.fromEntries(labels.map((l, i) => [l, cw.weights![i]])) : null,
    },
    trainClassCounts: init.classCounts,
    comparisons,
    thresholds: thr,
    initThresholds: init.thresholds,
    thresholdRematch: rematched,
    seed,
    timings,
    history: result.history.map((h) => ({ epoch: h.epoch, loss: h.loss, accuracy: h.accuracy, seconds: h.seconds })),
    createdAt: new Date().toISOString(),
  };

  try {
    if (o.export) {
      // The bundle's own test figures: the original test split (the fleet's held-out rows without replay).
      const s = sets[sets.length - 1];
      if (!s) throw new IdsError('EMPTY_INPUT', '--export: no held-out rows to score the bundle on (give replay data, or more fleet rows)');
      const { exportAndBundle } = await import('../export/index.ts');
      const res = await exportAndBundle({
        model: init.model, scaler, portPolicy: init.portPolicy, labels, calibration: train.X,
        test: { X: rescaled(s.ds, s.rows, s.X), y: s.y, rows: s.rows.length },
        training: {
          data: [...o.fleet, ...o.replay],
          rows: { train: train.rows, test: s.rows.length },
          classCounts: Object.fromEntries(labels.map((l, i) => [l, train.y.reduce((n, v) => n + (v === i ? 1 : 0), 0)])),
          recipe,
          seed,
          initFrom: { version: init.version, release: init.release, source: init.source },
          fleetData: o.fleet,
          replayData: o.replay,
          ...(cw.weights ? { classWeights: Object.fromEntries(labels.map((l, i) => [l, cw.weights![i]])) } : {}),
        },
        outDir,
        ...(thr ? { thresholds: thr } : {}),
        skipSpeed: true,
        log,
      });
      report.export = { bundleDir: res.bundleDir, int8: { accuracy: res.comparison.int8.accuracy, macroF1: res.comparison.int8.macroF1 }, checksPass: res.comparison.checks.pass };
      log(`bundle: ${res.bundleDir} (${res.manifest.model.version}, release ${res.manifest.model.release})`);
    }
  } finally {
    init.model.dispose();
  }
  await writeFile(join(outDir, 'report.json'), JSON.stringify(report, null, 1) + '\n');
  await writeFile(join(outDir, 'report.md'), fineTuneMarkdown(report));
  log(`report: ${join(outDir, 'report.md')}`);
  return { outDir, report, interrupted: false };
}

/**
 * The loss weights of a fine-tune. 'init': the weighting the init model's recipe names (`classWeights X` in its
 * label; the default recipe's is 'rare', the paper's none) over the init's training class counts, so that a
 * fine-tune does not quietly change the balance the init model was trained for (measured: without them, the
 * shipped model, trained with balanced weights, lost 8 points of MITM recall on its test split in 3 epochs).
 */
export function fineTuneClassWeights(choice: 'init' | ClassWeighting, init: Pick<InitModel, 'recipe' | 'classCounts' | 'classWeights'>, labels: readonly string[], trainY: Int32Array): { mode: ClassWeighting; label: string; weights: Float32Array | null } {
  if (choice !== 'init') return { mode: choice, label: `${choice}, over the fine-tuning rows`, weights: classWeightsFor(trainY, labels.length, choice) };
  const named = /classWeights (\w+)/.exec(init.recipe)?.[1] as ClassWeighting | undefined;
  const mode: ClassWeighting = named && CLASS_WEIGHTINGS.includes(named) ? named : init.recipe.startsWith('default') ? 'rare' : 'none';
  // A fine-tuned init recorded the weights it trained with: the same ones again, not a weighting of its own mix.
  const w = init.classWeights;
  if (w && labels.every((l) => typeof w[l] === 'number')) {
    return { mode, label: 'the init model\'s: the weights it was fine-tuned with', weights: Float32Array.from(labels, (l) => w[l]) };
  }
  const counts = init.classCounts;
  if (mode === 'none' || !counts) return { mode, label: `the init model's (${mode}${counts ? '' : '; its class counts are unknown'})`, weights: null };
  const y = Int32Array.from(labels.flatMap((l, i) => new Array<number>(counts[l] ?? 0).fill(i)));
  return { mode, label: `the init model's: ${mode} over its training class counts`, weights: classWeightsFor(y, labels.length, mode) };
}

/** Rows of two datasets with the same features as one matrix (for a scaler refit). */
function concatRows(a: Dataset, ra: Uint32Array, b: Dataset | undefined, rb: Uint32Array | undefined): Pick<Dataset, 'X' | 'features'> {
  const W = a.features.length;
  const n = ra.length + (rb?.length ?? 0);
  const X = new Float32Array(n * W);
  let o = 0;
  for (const r of ra) X.set(a.X.subarray(r * W, (r + 1) * W), (o++) * W);
  if (b && rb) {
    const cols = a.features.map((f) => b.features.indexOf(f));
    const Wb = b.features.length;
    for (const r of rb) {
      for (let j = 0; j < W; j++) X[o * W + j] = b.X[r * Wb + cols[j]];
      o++;
    }
  }
  return { X, features: a.features };
}

const thresholdList = (t: Record<string, number>) => Object.entries(t).filter(([l]) => l !== NORMAL_LABEL).map(([l, v]) => `${l} ${v}`).join(', ');

export function fineTuneMarkdown(r: FineTuneReport): string {
  const s = r.settings;
  const i = r.initFrom;
  const lines = [
    `# Fine-tune of ${i.version ?? i.dir}`,
    '',
    `Init: ${i.version ? `model ${i.version}, release ${i.release}` : i.dir} — weights from the ${i.source}; trained with ${i.recipe}, seed ${i.seed}.`,
    '',
    `Data: fleet ${r.data.fleet.map((f) => `\`${f}\``).join(', ')} (${r.rows.fleetTrain} rows trained on, ${r.rows.fleetTest} held out); ` +
      `replay ${r.data.replay.map((f) => `\`${f}\``).join(', ') || 'none'} (${r.rows.replayUsed} of its ${r.rows.replayTrain} training rows mixed in, ${r.rows.replayTest} test rows). ` +
      `Training rows in all: ${r.rows.trainTotal}.` +
      (Object.keys(r.data.dropped).length ? ` Dropped, class unknown to the init model: ${JSON.stringify(r.data.dropped)}.` : ''),
    '',
    `Settings: ${s.epochs} epochs, Adam lr ${s.learningRate} constant, batch ${s.batchSize}, fleet weight ${s.fleetWeight}, replay ratio ${s.replayRatio}, seed ${s.seed}; ` +
      `class weights ${s.classWeights}${s.classWeightValues ? ` (${Object.entries(s.classWeightValues).map(([l, v]) => `${l} ${v.toFixed(2)}`).join(', ')})` : ''}.`,
    '',
    `Scaler: ${r.scaler.reason}.` +
      (Object.keys(r.scaler.fleetValuesOutsideRange).length
        ? ` Fleet training values outside the init scaler's range (clipped): ${Object.entries(r.scaler.fleetValuesOutsideRange).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([f, v]) => `${f} ${(100 * v).toFixed(1)} %`).join(', ')}.`
        : ' No fleet training value fell outside the init scaler\'s range.'),
    '',
    `Decisions as a hub makes them: ${r.initThresholds ? `the init model with its per-class thresholds (${thresholdList(r.initThresholds)})` : 'plain arg-max'}; ` +
      (r.thresholdRematch
        ? `the fine-tuned model with thresholds re-matched to the init model's recall on ${r.thresholdRematch.rows} replay validation rows (${thresholdList(r.thresholds!)}; ` +
          `init recall → new: ${Object.entries(r.thresholdRematch.classes).map(([l, c]) => `${l} ${(100 * c.initRecall).toFixed(1)} → ${(100 * c.recall).toFixed(1)} %`).join(', ')}).`
        : `the fine-tuned model with the same thresholds.`),
    '',
    ...r.comparisons.flatMap((c) => [comparisonMarkdown(c), '']),
    `Timings (s): ${Object.entries(r.timings).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}.`,
  ];
  if (r.export) lines.push('', `Bundle: \`${r.export.bundleDir}\` (int8 on the test rows: accuracy ${r.export.int8.accuracy.toFixed(4)}, macro-F1 ${r.export.int8.macroF1.toFixed(4)}; export checks ${r.export.checksPass ? 'pass' : 'FAIL'}).`);
  return lines.join('\n') + '\n';
}
