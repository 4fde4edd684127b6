/**
 * The training loop: seeded batch order, Adam with optional class weights, a learning-rate schedule, early
 * stopping, checkpoints after every epoch (and on Ctrl-C mid-epoch) that resume to the same weights as an
 * uninterrupted run, and a progress bar on stderr.
 *
 * The per-batch work is a Stepper (backend/stepper.ts): the hand-fused CNN-LSTM step when the model is the
 * paper's architecture on the wasm/cpu backend, otherwise the generic tfjs autograd step.
 */
import * as tf from '@tensorflow/tfjs';
import cliProgress from 'cli-progress';
import { Rng } from '../shared/random.ts';
import { IdsError } from '../shared/errors.ts';
import { TapeStepper, PROB_EPSILON, type Stepper } from './backend/stepper.ts';
import { createFusedStepper, FusedCnnLstmStepper, CHUNK_ROWS } from './backend/fused-cnn-lstm.ts';
import { createParallelFusedStepper, MIN_SPLIT_ROWS } from './backend/parallel-fused.ts';
import { availableParallelism } from 'node:os';
import { writeCheckpoint, readCheckpoint, hasCheckpoint, type LoopState } from './checkpoint.ts';
import { loadModel } from './model/model-io.ts';

export interface TrainSet { X: Float32Array; y: Int32Array; rows: number; features: number; classes: number } // X scaled, rows×features
export interface EpochLog { epoch: number; loss: number; accuracy: number; valLoss?: number; valAccuracy?: number; valMacroF1?: number; lr: number; samplesPerSec: number; seconds: number }
export interface TrainOptions {
  epochs: number; batchSize: number; learningRate: number; seed: number;
  classWeights?: Float32Array | null;            // per class loss weight
  lrSchedule?: 'constant' | 'cosine' | 'plateau';  // plateau: halve after 3 epochs without val improvement
  earlyStopping?: { patience: number; monitor: 'valLoss' | 'valMacroF1'; restoreBest: boolean } | null;
  checkpointDir?: string | null;   // save model + optimizer state + epoch + rng state after each epoch
  resume?: boolean;                // continue from checkpointDir if a checkpoint exists
  progress?: boolean;              // cli-progress bar on stderr: epoch, batch, loss, acc, samples/s, ETA
  onEpoch?: (log: EpochLog) => void;
  signal?: AbortSignal;            // Ctrl-C: finish the batch, checkpoint, return
  /** 'auto' (default): the fused CNN-LSTM step when it applies; 'tape': always the generic tfjs step. */
  stepper?: 'auto' | 'tape' | 'fused';
  /**
   * Threads for the fused step (1 or 2; default 2 when the machine has two cores). With 2, each step goes to a
   * worker for half the batch or stays on this thread, whichever has been faster lately (a busy machine makes
   * the worker a straggler). Both give the same bits, so results do not depend on the thread count or the load.
   */
  threads?: number;
  /**
   * Exponential moving average of the weights, updated after every step with this decay (warm-up: the decay
   * used at step t is min(decay, (1+t)/(10+t))). Validation, best-epoch selection and the returned weights use
   * the average; training continues from the raw weights. null/undefined = off.
   */
  emaDecay?: number | null;
}
export interface TrainResult { history: EpochLog[]; bestEpoch: number; stoppedEarly: boolean; interrupted: boolean }

const PLATEAU_PATIENCE = 3;

/** A deterministic 32-bit seed from the run seed and a position (epoch, batch), so resuming needs no RNG state. */
export function mixSeed(seed: number, a: number, b = 0): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (a + 0x7f4a7c15), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13) ^ (b + 0x165667b1), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function checkSet(name: string, s: TrainSet): void {
  if (s.rows <= 0) throw new IdsError('EMPTY_INPUT', `${name} set has no rows`);
  if (s.X.length < s.rows * s.features) throw new IdsError('BAD_OPTION', `${name} set: X has ${s.X.length} values, rows×features needs ${s.rows * s.features}`);
  if (s.y.length < s.rows) throw new IdsError('BAD_OPTION', `${name} set: y has ${s.y.length} labels for ${s.rows} rows`);
  for (let i = 0; i < s.rows; i++) {
    if (!(s.y[i] >= 0 && s.y[i] < s.classes)) throw new IdsError('BAD_OPTION', `${name} set row ${i}: label ${s.y[i]} outside [0, ${s.classes})`);
  }
}

/**
 * Class probabilities (rows×classes). The paper CNN-LSTM on wasm runs through the fused forward pass (same
 * numbers as model.predict within float rounding, ~2-3× faster); anything else through model.predict in batches.
 */
export function predictProba(model: tf.LayersModel, X: Float32Array, rows: number, features: number, batchSize = 1024): Float32Array {
  const classes = (model.outputs[0].shape[model.outputs[0].shape.length - 1] ?? 0) as number;
  const out = new Float32Array(rows * classes);
  const fused = rows > 0 ? createFusedStepper(model, features, classes, CHUNK_ROWS) : null;
  if (fused?.predict) {
    try {
      fused.predict(X, rows, out);
      return out;
    } finally {
      fused.dispose();
    }
  }
  for (let at = 0; at < rows; at += batchSize) {
    const n = Math.min(batchSize, rows - at);
    const p = tf.tidy(() => {
      const x = tf.tensor3d(X.subarray(at * features, (at + n) * features), [n, features, 1]);
      // predict() would cut the batch into 32-row pieces by default (thousands of tiny kernels).
      return (model.predict(x, { batchSize: n }) as tf.Tensor).dataSync() as Float32Array;
    });
    out.set(p, at * classes);
  }
  return out;
}

interface Eval { loss: number; accuracy: number; macroF1: number }

function evaluate(model: tf.LayersModel, set: TrainSet, stepper: Stepper): Eval {
  const C = set.classes;
  let p: Float32Array;
  if (stepper.predict) {
    p = new Float32Array(set.rows * C);
    stepper.predict(set.X, set.rows, p);
  } else {
    p = predictProba(model, set.X, set.rows, set.features);
  }
  const tp = new Float64Array(C);
  const fp = new Float64Array(C);
  const fn = new Float64Array(C);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < set.rows; i++) {
    const row = p.subarray(i * C, (i + 1) * C);
    let arg = 0;
    for (let c = 1; c < C; c++) if (row[c] > row[arg]) arg = c;
    const y = set.y[i];
    loss -= Math.log(Math.min(1, Math.max(PROB_EPSILON, row[y])));
    if (arg === y) {
      correct++;
      tp[y]++;
    } else {
      fp[arg]++;
      fn[y]++;
    }
  }
  let f1Sum = 0;
  let present = 0;
  for (let c = 0; c < C; c++) {
    if (tp[c] + fn[c] === 0 && fp[c] === 0) continue; // a class absent from both truth and predictions
    present++;
    const d = 2 * tp[c] + fp[c] + fn[c];
    f1Sum += d === 0 ? 0 : (2 * tp[c]) / d;
  }
  return { loss: loss / set.rows, accuracy: correct / set.rows, macroF1: present ? f1Sum / present : 0 };
}

async function chooseStepper(model: tf.LayersModel, train: TrainSet, opts: TrainOptions): Promise<Stepper> {
  const want = opts.stepper ?? 'auto';
  if (want !== 'tape') {
    const fused = createFusedStepper(model, train.features, train.classes, opts.batchSize);
    const threads = opts.threads ?? Math.min(2, availableParallelism());
    if (fused && threads >= 2 && Math.min(opts.batchSize, train.rows) >= MIN_SPLIT_ROWS) {
      const par = await createParallelFusedStepper(model, fused as FusedCnnLstmStepper, train.features, train.classes, opts.batchSize);
      if (par) return par;
    }
    if (fused) return fused;
    if (want === 'fused') throw new IdsError('BAD_OPTION', 'stepper "fused": the model is not the paper CNN-LSTM or the backend is not wasm/cpu');
  }
  return new TapeStepper(model, train.features, train.classes);
}

function freshState(): LoopState {
  return {
    epoch: 0, batch: 0, partial: { lossSum: 0, correct: 0, seen: 0, seconds: 0 }, history: [],
    bestEpoch: 0, bestScore: null, badEpochs: 0, plateauBest: null, plateauBad: 0, lrScale: 1,
    stoppedEarly: false, finished: false,
  };
}

function lrFor(opts: TrainOptions, st: LoopState): number {
  if (opts.lrSchedule === 'cosine') return opts.learningRate * 0.5 * (1 + Math.cos((Math.PI * st.epoch) / opts.epochs));
  return opts.learningRate * st.lrScale;
}

export async function trainModel(model: tf.LayersModel, train: TrainSet, val: TrainSet | null, opts: TrainOptions): Promise<TrainResult> {
  checkSet('training', train);
  if (val) checkSet('validation', val);
  if (!(opts.batchSize >= 1) || !(opts.epochs >= 0) || !(opts.learningRate > 0)) {
    throw new IdsError('BAD_OPTION', `batchSize ${opts.batchSize}, epochs ${opts.epochs}, learningRate ${opts.learningRate}: need ≥1, ≥0, >0`);
  }
  if (opts.classWeights && opts.classWeights.length !== train.classes) {
    throw new IdsError('BAD_OPTION', `classWeights has ${opts.classWeights.length} entries for ${train.classes} classes`);
  }
  if (opts.emaDecay != null && !(opts.emaDecay > 0 && opts.emaDecay < 1)) {
    throw new IdsError('BAD_OPTION', `emaDecay ${opts.emaDecay}: must be in (0, 1)`);
  }
  if (opts.threads !== undefined && !(opts.threads === 1 || opts.threads === 2)) {
    throw new IdsError('BAD_OPTION', `threads ${opts.threads}: must be 1 or 2`);
  }
  const stepper = await chooseStepper(model, train, opts);
  try {
    return await runLoop(model, train, val, opts, stepper);
  } finally {
    stepper.dispose();
  }
}

/** ema ← d·ema + (1−d)·w, in place. */
export function updateEma(ema: Float32Array[], w: readonly Float32Array[], d: number): void {
  const e = 1 - d;
  for (let i = 0; i < ema.length; i++) {
    const a = ema[i];
    const b = w[i];
    for (let j = 0; j < a.length; j++) a[j] = d * a[j] + e * b[j];
  }
}

async function runLoop(model: tf.LayersModel, train: TrainSet, val: TrainSet | null, opts: TrainOptions, stepper: Stepper): Promise<TrainResult> {
  const { rows, features: F } = train;
  const B = Math.min(opts.batchSize, rows);
  let st = freshState();
  let best: Float32Array[] | null = null;
  const emaDecay = opts.emaDecay ?? null;
  let ema: Float32Array[] | null = emaDecay !== null ? stepper.getWeights() : null;
  const dir = opts.checkpointDir ?? null;

  if (dir && opts.resume && (await hasCheckpoint(dir))) {
    const ck = await readCheckpoint(dir);
    const m = ck.meta;
    if (m.seed !== opts.seed || m.batchSize !== opts.batchSize || m.rows !== rows || m.features !== F || m.classes !== train.classes) {
      throw new IdsError('BAD_OPTION', `checkpoint in ${dir} was made with seed ${m.seed}, batch ${m.batchSize}, ${m.rows}×${m.features} rows, ${m.classes} classes; this run differs, so it cannot resume exactly`);
    }
    const saved = await loadModel(ck.modelDir);
    stepper.setWeights(saved.trainableWeights.map((w) => (w.read().dataSync() as Float32Array).slice()));
    saved.dispose();
    stepper.setOptimizerState(ck.adam);
    best = ck.best;
    if (emaDecay !== null) {
      if (!ck.ema) throw new IdsError('BAD_OPTION', `checkpoint in ${dir} has no weight average; this run uses one, so it cannot resume exactly`);
      ema = ck.ema;
    }
    st = m.state;
  }

  const history = st.history as EpochLog[];
  const monitor = opts.earlyStopping?.monitor ?? 'valLoss';
  const xb = new Float32Array(B * F);
  const yb = new Int32Array(B);
  const wb = opts.classWeights ? new Float32Array(B) : null;
  const batches = Math.ceil(rows / B);
  let interrupted = false;

  const save = async () => {
    if (!dir) return;
    stepper.syncToModel();
    await writeCheckpoint(dir, model, { seed: opts.seed, batchSize: opts.batchSize, rows, features: F, classes: train.classes, state: st }, stepper.getOptimizerState(), best, ema);
  };

  const bar = opts.progress
    ? new cliProgress.SingleBar({
        stream: process.stderr,
        format: 'epoch {ep} |{bar}| {value}/{total} batches | loss {loss} acc {acc} | {sps} samples/s | ETA {eta_formatted}',
        hideCursor: null,
        etaBuffer: 50,
      }, cliProgress.Presets.shades_classic)
    : null;

  while (!st.finished && st.epoch < opts.epochs) {
    const lr = lrFor(opts, st);
    const order = new Int32Array(rows);
    for (let i = 0; i < rows; i++) order[i] = i;
    new Rng(mixSeed(opts.seed, st.epoch)).shuffle(order);
    bar?.start(batches, st.batch, { ep: `${st.epoch + 1}/${opts.epochs}`, loss: '-', acc: '-', sps: '-' });
    const t0 = performance.now() - st.partial.seconds * 1000;
    for (; st.batch < batches; ) {
      const from = st.batch * B;
      const n = Math.min(B, rows - from);
      for (let i = 0; i < n; i++) {
        const r = order[from + i];
        xb.set(train.X.subarray(r * F, (r + 1) * F), i * F);
        yb[i] = train.y[r];
        if (wb) wb[i] = opts.classWeights![yb[i]];
      }
      const res = stepper.step(xb, yb, wb, n, lr, mixSeed(opts.seed, st.epoch, st.batch + 1));
      if (!Number.isFinite(res.lossSum)) throw new IdsError('BAD_MODEL', `training diverged: loss is ${res.lossSum} at epoch ${st.epoch + 1}, batch ${st.batch + 1} (lower the learning rate)`);
      if (ema) updateEma(ema, stepper.getWeights(), Math.min(emaDecay!, (1 + st.epoch * batches + st.batch) / (10 + st.epoch * batches + st.batch)));
      st.partial.lossSum += res.lossSum;
      st.partial.correct += res.correct;
      st.partial.seen += n;
      st.batch++;
      if (bar) {
        const secs = (performance.now() - t0) / 1000;
        bar.update(st.batch, {
          loss: (st.partial.lossSum / st.partial.seen).toFixed(4),
          acc: (st.partial.correct / st.partial.seen).toFixed(4),
          sps: Math.round(st.partial.seen / Math.max(secs, 1e-9)),
        });
      }
      if (opts.signal?.aborted && st.batch < batches) {
        st.partial.seconds = (performance.now() - t0) / 1000;
        interrupted = true;
        break;
      }
    }
    bar?.stop();
    if (interrupted) break;

    const trainSeconds = (performance.now() - t0) / 1000;
    stepper.syncToModel();
    const log: EpochLog = {
      epoch: st.epoch + 1,
      loss: st.partial.lossSum / st.partial.seen,
      accuracy: st.partial.correct / st.partial.seen,
      lr,
      samplesPerSec: st.partial.seen / Math.max(trainSeconds, 1e-9),
      seconds: 0,
    };
    let score: number | null = null;
    // With a weight average, validation looks at the average (what would be kept); training goes on from raw.
    const raw = ema && val ? stepper.getWeights() : null;
    if (raw) {
      stepper.setWeights(ema!);
      stepper.syncToModel();
    }
    if (val) {
      const ev = evaluate(model, val, stepper);
      log.valLoss = ev.loss;
      log.valAccuracy = ev.accuracy;
      log.valMacroF1 = ev.macroF1;
      score = monitor === 'valLoss' ? -ev.loss : ev.macroF1; // higher is better
    }
    log.seconds = (performance.now() - t0) / 1000;
    history.push(log);

    if (score === null) {
      st.bestEpoch = log.epoch;
    } else {
      if (st.bestScore === null || score > st.bestScore) {
        st.bestScore = score;
        st.bestEpoch = log.epoch;
        st.badEpochs = 0;
        if (opts.earlyStopping?.restoreBest) best = stepper.getWeights();
      } else {
        st.badEpochs++;
        if (opts.earlyStopping && st.badEpochs >= opts.earlyStopping.patience) st.stoppedEarly = true;
      }
      if (opts.lrSchedule === 'plateau') {
        if (st.plateauBest === null || score > st.plateauBest) {
          st.plateauBest = score;
          st.plateauBad = 0;
        } else if (++st.plateauBad >= PLATEAU_PATIENCE) {
          st.lrScale *= 0.5;
          st.plateauBad = 0;
        }
      }
    }
    if (raw) {
      stepper.setWeights(raw);
      stepper.syncToModel();
    }
    st.epoch++;
    st.batch = 0;
    st.partial = { lossSum: 0, correct: 0, seen: 0, seconds: 0 };
    if (st.stoppedEarly || st.epoch >= opts.epochs) st.finished = true;
    opts.onEpoch?.(log);
    if (st.finished && best && opts.earlyStopping?.restoreBest) stepper.setWeights(best);
    else if (st.finished && ema) stepper.setWeights(ema);
    await save();
    if (opts.signal?.aborted && !st.finished) {
      interrupted = true;
      break;
    }
  }
  if (interrupted) await save();
  stepper.syncToModel();
  return { history, bestEpoch: st.bestEpoch, stoppedEarly: st.stoppedEarly, interrupted };
}
