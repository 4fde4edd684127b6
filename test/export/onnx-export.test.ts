import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportOnnx } from '../../trainer/export/onnx-export.ts';
import { decodeModel, opCounts } from '../../trainer/export/onnx-model.ts';
import { argmaxRows, openSession } from '../../trainer/export/runtimes.ts';
import { buildCnnLstm } from '../../trainer/model/cnn-lstm.ts';
import { isIdsError } from '../../shared/errors.ts';
import { onnxChecker, randomCnnLstm, randomizeWeights, randomRows, tfPredict } from './export-fixture.ts';

const F = 78;
const C = 5;
const ROWS = 300;

function compare(name: string, got: Float32Array, want: Float32Array, classes: number): number {
  assert.equal(got.length, want.length, `${name}: output size`);
  let maxDiff = 0;
  for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
  assert.ok(maxDiff <= 1e-4, `${name}: max |Δp| ${maxDiff} > 1e-4`);
  assert.deepEqual([...argmaxRows(got, classes)], [...argmaxRows(want, classes)], `${name}: argmax differs`);
  return maxDiff;
}

test('CNN-LSTM export matches tfjs on onnxruntime-node and onnxruntime-web (1e-4, same argmax on every row)', async () => {
  const model = randomCnnLstm(F, C);
  const X = randomRows(ROWS, F);
  const want = tfPredict(model, X, ROWS);
  // The test can only fail if outputs are far from uniform and classes vary between rows.
  const winners = new Set(argmaxRows(want, C));
  assert.ok(winners.size >= 2, `reference predicts ${winners.size} class(es) only`);
  assert.ok(Math.max(...want) > 0.5, 'reference probabilities are all near uniform');

  const ex = exportOnnx(model);
  assert.equal(ex.inputName, 'flow_features');
  assert.equal(ex.outputName, 'probabilities');
  assert.deepEqual(ex.inputShape, [-1, F, 1]);
  assert.deepEqual(ex.outputShape, [-1, C]);
  const m = decodeModel(ex.bytes);
  assert.equal(Number(m.irVersion), 8);
  assert.deepEqual(m.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', 17]]);
  assert.equal(m.graph?.input?.[0].type?.tensorType?.shape?.dim?.[0].dimParam, 'N');
  assert.deepEqual(opCounts(m), { Transpose: 2, Conv: 4, Relu: 5, MaxPool: 2, Reshape: 2, Gemm: 2, LSTM: 1, Squeeze: 1, Softmax: 1, Identity: 1 });

  for (const rt of ['ort-node', 'ort-web'] as const) {
    const s = await openSession(rt, ex.bytes);
    const got = (await s.run(X, ROWS, undefined, 128)).probabilities;
    const d = compare(rt, got, want, C);
    // Dynamic batch: one row and an odd batch size give the same numbers.
    const one = (await s.run(X.subarray(0, F), 1)).probabilities;
    compare(`${rt} batch 1`, one, want.subarray(0, C), C);
    await s.release();
    console.log(`# ${rt}: max |Δp| = ${d.toExponential(2)} over ${ROWS} rows`);
  }
});

test('a gate-order mistake would be caught: swapping LSTM gates changes outputs beyond 1e-4', async () => {
  const model = randomCnnLstm(16, 3, 5);
  const X = randomRows(64, 16, 2);
  const want = tfPredict(model, X, 64);
  const ex = exportOnnx(model);
  const m = decodeModel(ex.bytes);
  const W = m.graph!.initializer!.find((t) => t.name === 'lstm.W')!;
  const raw = W.rawData!;
  const block = raw.length / 4;
  const swapped = new Uint8Array(raw.length);
  swapped.set(raw.subarray(block, 2 * block), 0); // o ↔ i
  swapped.set(raw.subarray(0, block), block);
  swapped.set(raw.subarray(2 * block), 2 * block);
  W.rawData = swapped;
  const { onnx } = await import('../../trainer/export/onnx-model.ts');
  const s = await openSession('ort-node', onnx.ModelProto.encode(m).finish());
  const got = (await s.run(X, 64)).probabilities;
  let maxDiff = 0;
  for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
  assert.ok(maxDiff > 1e-3, `swapped gates gave max |Δp| ${maxDiff}: the parity test would be blind`);
});

test('the exported model passes the ONNX reference checker (full_check)', async (t) => {
  const check = onnxChecker();
  if (!check) {
    t.skip('python3-onnx not available at /usr/bin/python3 (apt-get install -y python3-onnx): checker skipped');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-onnx-'));
  const path = join(dir, 'model.fp32.onnx');
  writeFileSync(path, exportOnnx(randomCnnLstm(F, C)).bytes);
  const r = check(path);
  assert.ok(r.ok, `onnx.checker failed: ${r.output}`);
  // The checker must be able to fail: a Conv with a missing weight is refused.
  const bad = decodeModel(exportOnnx(randomCnnLstm(8, 2)).bytes);
  bad.graph!.initializer = bad.graph!.initializer!.filter((x) => x.name !== 'conv1_1.W');
  const { encodeModel } = await import('../../trainer/export/onnx-model.ts');
  writeFileSync(path, encodeModel(bad));
  assert.equal(check(path).ok, false, 'checker accepted a graph with a dangling input');
});

test('other layer options export correctly: valid/strided conv, average pooling, returnSequences, flatten', async () => {
  const input = tf.input({ shape: [20, 1] });
  let x = tf.layers.conv1d({ filters: 6, kernelSize: 5, strides: 2, padding: 'valid', activation: 'tanh' }).apply(input);
  x = tf.layers.conv1d({ filters: 4, kernelSize: 4, padding: 'same', activation: 'linear', useBias: false }).apply(x);
  x = tf.layers.averagePooling1d({ poolSize: 2, strides: 2 }).apply(x);
  x = tf.layers.dense({ units: 5, activation: 'sigmoid' }).apply(x);
  x = tf.layers.lstm({ units: 3, recurrentActivation: 'sigmoid', returnSequences: true }).apply(x);
  x = tf.layers.flatten().apply(x);
  const out = tf.layers.dense({ units: 4, activation: 'softmax' }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  randomizeWeights(model, 9, 0.8);
  const X = randomRows(50, 20, 4);
  const want = tfPredict(model, X, 50);
  const s = await openSession('ort-node', exportOnnx(model).bytes);
  compare('variant model', (await s.run(X, 50)).probabilities, want, 4);
});

test('unsupported layers and activations are refused with BAD_MODEL naming them', () => {
  const input = tf.input({ shape: [8, 1] });
  const y = tf.layers.gru({ units: 2, name: 'my_gru' }).apply(input) as tf.SymbolicTensor;
  assert.throws(
    () => exportOnnx(tf.model({ inputs: input, outputs: y })),
    (e: unknown) => isIdsError(e, 'BAD_MODEL') && /my_gru.*GRU/.test((e as Error).message),
  );
  const i2 = tf.input({ shape: [8, 1] });
  const c = tf.layers.conv1d({ filters: 2, kernelSize: 3, activation: 'selu', name: 'odd_conv' }).apply(i2) as tf.SymbolicTensor;
  assert.throws(
    () => exportOnnx(tf.model({ inputs: i2, outputs: c })),
    (e: unknown) => isIdsError(e, 'BAD_MODEL') && /odd_conv.*activation "selu"/.test((e as Error).message),
  );
  const i3 = tf.input({ shape: [8, 1] });
  const l = tf.layers.lstm({ units: 2, name: 'hard_lstm' }).apply(i3) as tf.SymbolicTensor; // tfjs default hardSigmoid
  assert.throws(
    () => exportOnnx(tf.model({ inputs: i3, outputs: l })),
    (e: unknown) => isIdsError(e, 'BAD_MODEL') && /hard_lstm.*recurrentActivation "hardSigmoid"/.test((e as Error).message),
  );
  assert.doesNotThrow(() => exportOnnx(buildCnnLstm({ features: 8, classes: 2 })));
});
