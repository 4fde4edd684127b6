/**
 * The fused CNN-LSTM step must compute the model's own math: its loss and every gradient are compared with
 * tf.variableGrads through the model on the cpu backend (dropout off, since the masks differ by design).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/backend/index.ts';
import { createFusedStepper, FusedCnnLstmStepper, fillDropoutMask } from '../../trainer/backend/fused-cnn-lstm.ts';
import { TapeStepper } from '../../trainer/backend/stepper.ts';
import { createParallelFusedStepper } from '../../trainer/backend/parallel-fused.ts';
import { predictProba } from '../../trainer/train-loop.ts';
import { buildCnnLstm } from '../../trainer/model/cnn-lstm.ts';
import { Rng } from '../../shared/random.ts';

function batch(n: number, F: number, C: number, seed: number) {
  const rng = new Rng(seed);
  const x = new Float32Array(n * F).map(() => rng.next());
  const y = new Int32Array(n).map(() => rng.int(0, C));
  const w = new Float32Array(n).map(() => 0.5 + rng.next());
  return { x, y, w };
}

async function referenceGrads(model: tf.LayersModel, x: Float32Array, y: Int32Array, w: Float32Array, n: number, F: number, C: number) {
  await tf.setBackend('cpu');
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const out = tf.tidy(() => {
    const xs = tf.tensor3d(x, [n, F, 1]);
    const ys = tf.oneHot(tf.tensor1d(y, 'int32'), C);
    const { value, grads } = tf.variableGrads(() => {
      const p = model.apply(xs, { training: true }) as tf.Tensor;
      const ce = tf.neg(tf.sum(tf.mul(ys, tf.log(p)), -1));
      return tf.div(tf.sum(tf.mul(ce, tf.tensor1d(w))), n) as tf.Scalar;
    }, vars);
    return { loss: value.dataSync()[0] * n, grads: vars.map((v) => grads[v.name].dataSync().slice() as Float32Array) };
  });
  await tf.setBackend('wasm');
  return out;
}

// 70 rows run as three chunks (32 + 32 + 6) whose gradients must add up to the whole batch's.
for (const [F, C, n, denseActivation] of [[13, 3, 5, 'relu'], [78, 5, 8, 'linear'], [9, 2, 3, 'relu'], [11, 3, 70, 'relu']] as const) {
  test(`fused loss and gradients equal tf.grad on cpu (features ${F}, classes ${C}, batch ${n}, dense ${denseActivation})`, async () => {
    await initBackend('wasm');
    const model = buildCnnLstm({ features: F, classes: C, dropout: 0, denseActivation, seed: 3 });
    const fused = createFusedStepper(model, F, C, Math.max(16, n)) as FusedCnnLstmStepper;
    assert.ok(fused instanceof FusedCnnLstmStepper);
    const { x, y, w } = batch(n, F, C, F);
    const got = fused.lossAndGradients(x, y, w, n, 1);
    fused.dispose();
    const ref = await referenceGrads(model, x, y, w, n, F, C);
    assert.ok(Math.abs(got.lossSum - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${got.lossSum} vs ${ref.loss}`);
    const names = model.trainableWeights.map((v) => v.name);
    got.grads.forEach((g, k) => {
      const r = ref.grads[k];
      assert.equal(g.length, r.length);
      let scale = 0;
      for (const v of r) scale = Math.max(scale, Math.abs(v));
      assert.ok(scale > 0, `${names[k]} has a zero reference gradient`);
      for (let i = 0; i < g.length; i++) {
        assert.ok(Math.abs(g[i] - r[i]) <= 1e-5 * scale + 1e-9, `${names[k]}[${i}]: fused ${g[i]} vs cpu ${r[i]} (scale ${scale})`);
      }
    });
  });
}

test('fused path trains to the same weights as the tape path over several Adam steps (dropout off)', async () => {
  await initBackend('wasm');
  const F = 16, C = 3, n = 8;
  const a = buildCnnLstm({ features: F, classes: C, dropout: 0, seed: 4 });
  const b = buildCnnLstm({ features: F, classes: C, dropout: 0, seed: 4 });
  const fused = createFusedStepper(a, F, C, n)!;
  const tape = new TapeStepper(b, F, C);
  for (let s = 0; s < 5; s++) {
    const { x, y } = batch(n, F, C, 100 + s);
    const rf = fused.step(x, y, null, n, 1e-3, s);
    const rt = tape.step(x, y, null, n, 1e-3);
    assert.ok(Math.abs(rf.lossSum - rt.lossSum) < 1e-4 * rt.lossSum, `step ${s}: loss ${rf.lossSum} vs ${rt.lossSum}`);
    assert.equal(rf.correct, rt.correct);
  }
  const wa = fused.getWeights();
  const wb = tape.getWeights();
  wa.forEach((arr, k) => arr.forEach((v, i) => assert.ok(Math.abs(v - wb[k][i]) < 1e-4, `weight ${k}[${i}] ${v} vs ${wb[k][i]}`)));
  fused.syncToModel();
  // After syncing, the model predicts with the fused weights.
  const xs = tf.randomUniform([4, F, 1], 0, 1, 'float32', 2);
  const pa = (a.predict(xs) as tf.Tensor).dataSync();
  const pb = (b.predict(xs) as tf.Tensor).dataSync();
  pa.forEach((v, i) => assert.ok(Math.abs(v - pb[i]) < 1e-4));
  fused.dispose();
});

test('fused step: dropout masks are seeded (same seed same loss, other seed other loss), other models fall back', async () => {
  await initBackend('wasm');
  const F = 20, C = 3, n = 6;
  const m = buildCnnLstm({ features: F, classes: C, seed: 1 });
  const st = createFusedStepper(m, F, C, n) as FusedCnnLstmStepper;
  const { x, y } = batch(n, F, C, 5);
  const l1 = st.lossAndGradients(x, y, null, n, 7).lossSum;
  const l2 = st.lossAndGradients(x, y, null, n, 7).lossSum;
  const l3 = st.lossAndGradients(x, y, null, n, 8).lossSum;
  assert.equal(l1, l2);
  assert.notEqual(l1, l3);
  assert.throws(() => st.lossAndGradients(new Float32Array(7 * F), new Int32Array(7), null, 7, 1), /exceeds/);
  st.dispose();
  // A model that is not the paper architecture gets no fused path.
  const other = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [F, 1] }), tf.layers.dense({ units: C, activation: 'softmax' })] });
  assert.equal(createFusedStepper(other, F, C, n), null);
  assert.equal(createFusedStepper(buildCnnLstm({ features: F, classes: C, kernelSize: 4 }), F, C, n), null);
  await tf.setBackend('cpu');
  assert.equal(createFusedStepper(m, F, C, n), null);
  await tf.setBackend('wasm');
});

test('two-thread step: the summed halves equal the one-thread gradient; the worker stops on dispose', async () => {
  await initBackend('wasm');
  const F = 14, C = 3, n = 40;
  const model = buildCnnLstm({ features: F, classes: C, dropout: 0, seed: 6 });
  const single = createFusedStepper(model, F, C, n) as FusedCnnLstmStepper;
  const par = await createParallelFusedStepper(model, createFusedStepper(model, F, C, n) as FusedCnnLstmStepper, F, C, n);
  assert.ok(par, 'the worker started');
  const { x, y, w } = batch(n, F, C, 21);
  const one = single.lossAndGradients(x, y, w, n, 1);
  const two = par.gradients(x, y, w, n, 1);
  assert.ok(Math.abs(one.lossSum - two.lossSum) <= 1e-5 * one.lossSum);
  assert.equal(one.correct, two.correct);
  const flat = new Float32Array(two.grads.length);
  let at = 0;
  for (const g of one.grads) {
    flat.set(g, at);
    at += g.length;
  }
  let scale = 0;
  for (const v of flat) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < flat.length; i++) assert.ok(Math.abs(flat[i] - two.grads[i]) <= 1e-5 * scale, `grad ${i}: ${flat[i]} vs ${two.grads[i]}`);
  // Steps are deterministic: a second pair of steppers from the same weights ends in the same place.
  const again = await createParallelFusedStepper(model, createFusedStepper(model, F, C, n) as FusedCnnLstmStepper, F, C, n);
  for (let s = 0; s < 3; s++) {
    par.step(x, y, w, n, 1e-3, s);
    again!.step(x, y, w, n, 1e-3, s);
  }
  assert.deepEqual(par.getWeights(), again!.getWeights());
  par.dispose();
  again!.dispose();
  single.dispose();
});

test('dropout masks: values 0 or 1/(1−rate), drop share ≈ rate, mean ≈ 1, seeded', () => {
  for (const rate of [0.25, 0.5, 0.1]) {
    const n = 200_001;
    const m = new Float32Array(n);
    fillDropoutMask(m, n, rate, new Rng(3));
    const keep = Math.fround(1 / (1 - rate));
    let zeros = 0;
    let sum = 0;
    for (const v of m) {
      assert.ok(v === 0 || v === keep, `mask value ${v}`);
      if (v === 0) zeros++;
      sum += v;
    }
    assert.ok(Math.abs(zeros / n - rate) < 0.005, `rate ${rate}: dropped ${zeros / n}`);
    assert.ok(Math.abs(sum / n - 1) < 0.01, `rate ${rate}: mean ${sum / n}`);
    const again = new Float32Array(n);
    fillDropoutMask(again, n, rate, new Rng(3));
    assert.deepEqual(again, m);
  }
  const ones = new Float32Array(10);
  fillDropoutMask(ones, 10, 0, new Rng(1));
  assert.deepEqual(Array.from(ones), new Array(10).fill(1));
});

test('fused inference equals model.predict (several chunks), and predictProba uses it', async () => {
  await initBackend('wasm');
  const F = 78, C = 5, rows = 70;
  const model = buildCnnLstm({ features: F, classes: C, seed: 8 });
  const st = createFusedStepper(model, F, C, 32) as FusedCnnLstmStepper;
  const { x, y } = batch(32, F, C, 4);
  for (let s = 0; s < 3; s++) st.step(x, y, null, 32, 1e-2, s); // move away from the initial weights
  st.syncToModel();
  const X = batch(rows, F, C, 9).x;
  const fused = new Float32Array(rows * C);
  st.predict(X, rows, fused);
  st.dispose();
  const ref = tf.tidy(() => (model.predict(tf.tensor3d(X, [rows, F, 1]), { batchSize: rows }) as tf.Tensor).dataSync());
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(fused[i] - ref[i]) < 1e-5, `p[${i}] fused ${fused[i]} vs predict ${ref[i]}`);
  const viaApi = predictProba(model, X, rows, F);
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(viaApi[i] - ref[i]) < 1e-5);
});

test('one thread and two threads give the same bits (dropout on), so the step may switch between them', async () => {
  await initBackend('wasm');
  const F = 20, C = 3, n = 48;
  const model = buildCnnLstm({ features: F, classes: C, seed: 12 });
  const one = createFusedStepper(model, F, C, n) as FusedCnnLstmStepper;
  const two = await createParallelFusedStepper(model, createFusedStepper(model, F, C, n) as FusedCnnLstmStepper, F, C, n);
  assert.ok(two);
  for (let s = 0; s < 12; s++) {
    const { x, y, w } = batch(n, F, C, 50 + s);
    const a = one.step(x, y, w, n, 1e-3, s);
    const b = two.step(x, y, w, n, 1e-3, s); // the first steps alternate between worker and local on purpose
    assert.equal(a.lossSum, b.lossSum, `step ${s} loss`);
    assert.equal(a.correct, b.correct);
  }
  assert.deepEqual(two.getWeights(), one.getWeights());
  one.dispose();
  two.dispose();
});
