import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildCnnLstm } from '../../trainer/model/cnn-lstm.ts';
import { trainModel, predictProba, updateEma, type TrainSet, type TrainOptions } from '../../trainer/train-loop.ts';
import { initBackend } from '../../trainer/backend/index.ts';
import { Rng } from '../../shared/random.ts';
import { isIdsError } from '../../shared/errors.ts';

const F = 8;
const C = 3;

/** Separable toy data: the label shows up as a raised feature. */
function toySet(rows: number, seed: number): TrainSet {
  const rng = new Rng(seed);
  const X = new Float32Array(rows * F);
  const y = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    y[i] = rng.int(0, C);
    for (let f = 0; f < F; f++) X[i * F + f] = rng.next() * 0.4 + (f % C === y[i] ? 0.6 : 0);
  }
  return { X, y, rows, features: F, classes: C };
}

const weightsOf = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));
const base: TrainOptions = { epochs: 3, batchSize: 16, learningRate: 3e-3, seed: 9, stepper: 'tape' };
const train = toySet(80, 1);
const val = toySet(40, 2);

test('training is deterministic for a seed, differs across seeds, and learns the toy task', async () => {
  await initBackend('wasm');
  const run = async (seed: number) => {
    const m = buildCnnLstm({ features: F, classes: C, seed: 1 });
    const r = await trainModel(m, train, val, { ...base, epochs: 4, seed });
    return { w: weightsOf(m), r };
  };
  const a = await run(9);
  const b = await run(9);
  const c = await run(10);
  assert.deepEqual(a.w, b.w);
  assert.notDeepEqual(a.w, c.w);
  assert.equal(a.r.history.length, 4);
  assert.ok(a.r.history[3].loss < a.r.history[0].loss, `loss fell: ${a.r.history.map((h) => h.loss)}`);
  for (const h of a.r.history) {
    assert.ok(h.samplesPerSec > 0 && h.seconds > 0 && h.valMacroF1! >= 0 && h.valMacroF1! <= 1);
  }
});

for (const stepper of ['tape', 'fused'] as const) {
  test(`memory stays flat over epochs (${stepper} step)`, async () => {
    await initBackend('wasm');
    const m = buildCnnLstm({ features: F, classes: C, seed: 1 });
    const counts: number[] = [];
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const ids = backend.numDataIds();
    await trainModel(m, train, val, { ...base, stepper, epochs: 4, onEpoch: () => counts.push(tf.memory().numTensors) });
    assert.equal(counts.length, 4);
    assert.equal(new Set(counts).size, 1, `tensor counts per epoch: ${counts}`);
    assert.equal(backend.numDataIds(), ids);
  });
}

for (const stepper of ['tape', 'fused'] as const) {
test(`an interrupted run resumed from its checkpoint ends with the same weights as an uninterrupted one (${stepper} step)`, async () => {
  await initBackend('wasm');
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
  try {
    const full = buildCnnLstm({ features: F, classes: C, seed: 1 });
    const fullRes = await trainModel(full, train, val, { ...base, stepper, lrSchedule: 'cosine' });

    // Interrupt mid-epoch: the signal reads "aborted" from its 7th check on (epoch 2, batch 2 of 5).
    let checks = 0;
    const signal = { get aborted() { return ++checks >= 7; } } as AbortSignal;
    const first = buildCnnLstm({ features: F, classes: C, seed: 1 });
    const r1 = await trainModel(first, train, val, { ...base, stepper, lrSchedule: 'cosine', checkpointDir: dir, signal });
    assert.equal(r1.interrupted, true);
    assert.equal(r1.history.length, 1);

    // A fresh process builds the model again (same config: the tape path's dropout seeds live in the layers);
    // scrambled weights prove that resume restores them, with Adam state and position.
    const resumed = buildCnnLstm({ features: F, classes: C, seed: 1 });
    resumed.setWeights(resumed.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 1, 'float32', i)));
    const r2 = await trainModel(resumed, train, val, { ...base, stepper, lrSchedule: 'cosine', checkpointDir: dir, resume: true });
    assert.equal(r2.interrupted, false);
    assert.equal(r2.history.length, 3);
    assert.deepEqual(weightsOf(resumed), weightsOf(full));
    assert.deepEqual(r2.history.map((h) => h.loss), fullRes.history.map((h) => h.loss));

    // Resuming a finished run trains nothing more; resuming with another seed is refused.
    const again = buildCnnLstm({ features: F, classes: C, seed: 1 });
    const r3 = await trainModel(again, train, val, { ...base, stepper, lrSchedule: 'cosine', checkpointDir: dir, resume: true });
    assert.equal(r3.history.length, 3);
    assert.deepEqual(weightsOf(again), weightsOf(full));
    await assert.rejects(
      trainModel(again, train, val, { ...base, stepper, seed: 10, checkpointDir: dir, resume: true }),
      (e: unknown) => isIdsError(e, 'BAD_OPTION'),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
}

test('early stopping stops after `patience` epochs without improvement and restores the best weights', async () => {
  await initBackend('wasm');
  const m = buildCnnLstm({ features: F, classes: C, seed: 1 });
  // A learning rate this small barely moves valMacroF1, so it stalls quickly.
  const r = await trainModel(m, train, val, {
    ...base, epochs: 30, learningRate: 1e-6, lrSchedule: 'plateau',
    earlyStopping: { patience: 2, monitor: 'valMacroF1', restoreBest: true },
  });
  assert.equal(r.stoppedEarly, true);
  assert.ok(r.history.length < 30);
  const bestF1 = Math.max(...r.history.map((h) => h.valMacroF1!));
  assert.equal(r.history[r.bestEpoch - 1].valMacroF1, bestF1);
  assert.equal(r.history.length - r.bestEpoch, 2);
});

test('class weights change the result; bad inputs give IdsErrors', async () => {
  await initBackend('wasm');
  const a = buildCnnLstm({ features: F, classes: C, seed: 1 });
  const b = buildCnnLstm({ features: F, classes: C, seed: 1 });
  await trainModel(a, train, null, { ...base, epochs: 1 });
  await trainModel(b, train, null, { ...base, epochs: 1, classWeights: new Float32Array([1, 5, 1]) });
  assert.notDeepEqual(weightsOf(a), weightsOf(b));
  const m = buildCnnLstm({ features: F, classes: C });
  await assert.rejects(trainModel(m, train, null, { ...base, classWeights: new Float32Array([1, 2]) }), (e: unknown) => isIdsError(e, 'BAD_OPTION'));
  const badY = { ...train, y: train.y.map((v, i) => (i === 5 ? 7 : v)) };
  await assert.rejects(trainModel(m, badY, null, base), (e: unknown) => isIdsError(e, 'BAD_OPTION') && /row 5/.test((e as Error).message));
  await assert.rejects(trainModel(m, { ...train, rows: 0 }, null, base), (e: unknown) => isIdsError(e, 'EMPTY_INPUT'));
});

test('predictProba returns rows×classes probabilities in batches', async () => {
  await initBackend('wasm');
  const m = buildCnnLstm({ features: F, classes: C });
  const p = predictProba(m, val.X, val.rows, F, 7);
  assert.equal(p.length, val.rows * C);
  for (let i = 0; i < val.rows; i++) {
    const s = p[i * C] + p[i * C + 1] + p[i * C + 2];
    assert.ok(Math.abs(s - 1) < 1e-5);
  }
  const whole = predictProba(m, val.X, val.rows, F);
  assert.deepEqual(Array.from(p), Array.from(whole));
  // On cpu the model.predict path runs; it agrees with the fused wasm path.
  await initBackend('cpu');
  const onCpu = predictProba(m, val.X, val.rows, F, 7);
  await initBackend('wasm');
  for (let i = 0; i < p.length; i++) assert.ok(Math.abs(onCpu[i] - p[i]) < 1e-5, `p[${i}] cpu ${onCpu[i]} wasm ${p[i]}`);
});

test('progress bar and onEpoch: one log per epoch with the schedule learning rate', async () => {
  await initBackend('wasm');
  const m = buildCnnLstm({ features: F, classes: C, seed: 1 });
  const logs: number[] = [];
  const r = await trainModel(m, train, val, { ...base, stepper: 'auto', epochs: 2, lrSchedule: 'cosine', progress: true, onEpoch: (l) => logs.push(l.lr) });
  assert.deepEqual(logs, [3e-3, 3e-3 * 0.5 * (1 + Math.cos(Math.PI / 2))]);
  assert.equal(r.history.length, 2);
  assert.equal(r.interrupted, false);
});

test('resume with no checkpoint starts fresh; a corrupt checkpoint is a BAD_MODEL error naming the file', async () => {
  await initBackend('wasm');
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-bad-'));
  try {
    const m = buildCnnLstm({ features: F, classes: C, seed: 1 });
    const r = await trainModel(m, train, null, { ...base, epochs: 1, checkpointDir: dir, resume: true });
    assert.equal(r.history.length, 1);
    await writeFile(join(dir, 'optimizer.bin'), new Uint8Array(10));
    await assert.rejects(
      trainModel(m, train, null, { ...base, epochs: 2, checkpointDir: dir, resume: true }),
      (e: unknown) => isIdsError(e, 'BAD_MODEL') && /optimizer\.bin/.test((e as Error).message),
    );
    await writeFile(join(dir, 'checkpoint.json'), '{"version": 1');
    await assert.rejects(
      trainModel(m, train, null, { ...base, epochs: 2, checkpointDir: dir, resume: true }),
      (e: unknown) => isIdsError(e, 'BAD_MODEL') && /checkpoint\.json/.test((e as Error).message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('updateEma moves the average toward the weights by 1 − decay', () => {
  const ema = [new Float32Array([0, 10]), new Float32Array([4])];
  updateEma(ema, [new Float32Array([10, 0]), new Float32Array([0])], 0.75);
  assert.deepEqual(ema.map((a) => Array.from(a)), [[2.5, 7.5], [3]]);
});

for (const stepper of ['tape', 'fused'] as const) {
  test(`a weight average leaves the training path alone, returns averaged weights and resumes exactly (${stepper} step)`, async () => {
    await initBackend('wasm');
    const opts: TrainOptions = { ...base, stepper, epochs: 3, lrSchedule: 'cosine', earlyStopping: { patience: 5, monitor: 'valLoss', restoreBest: true } };
    const plain = buildCnnLstm({ features: F, classes: C, seed: 1 });
    const p = await trainModel(plain, train, val, opts);
    const averaged = buildCnnLstm({ features: F, classes: C, seed: 1 });
    const a = await trainModel(averaged, train, val, { ...opts, emaDecay: 0.9 });
    // Training continues from the raw weights: the same training losses; validation and the result use the average.
    assert.deepEqual(a.history.map((h) => h.loss), p.history.map((h) => h.loss));
    assert.notDeepEqual(a.history.map((h) => h.valLoss), p.history.map((h) => h.valLoss));
    assert.notDeepEqual(weightsOf(averaged), weightsOf(plain));

    const dir = await mkdtemp(join(tmpdir(), 'ema-'));
    try {
      let checks = 0;
      const signal = { get aborted() { return ++checks >= 7; } } as AbortSignal;
      const first = buildCnnLstm({ features: F, classes: C, seed: 1 });
      assert.equal((await trainModel(first, train, val, { ...opts, emaDecay: 0.9, checkpointDir: dir, signal })).interrupted, true);
      const resumed = buildCnnLstm({ features: F, classes: C, seed: 1 });
      await trainModel(resumed, train, val, { ...opts, emaDecay: 0.9, checkpointDir: dir, resume: true });
      assert.deepEqual(weightsOf(resumed), weightsOf(averaged));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const m = buildCnnLstm({ features: F, classes: C, seed: 1 });
    await assert.rejects(trainModel(m, train, val, { ...opts, emaDecay: 1 }), (e: unknown) => isIdsError(e, 'BAD_OPTION') && /emaDecay/.test((e as Error).message));
  });
}
