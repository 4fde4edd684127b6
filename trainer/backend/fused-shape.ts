/**
 * Recognises buildCnnLstm's architecture in a LayersModel (layer by layer, config by config) so the fused training
 * step is used only when its hand-written math is exactly the model's. Anything else gets the generic step.
 */
import type * as tf from '@tensorflow/tfjs';

export interface CnnLstmShape {
  F: number; // features (sequence length)
  K: number; // conv filters
  k: number; // kernel size (odd)
  pad: number; // 'same' left padding
  L1: number; // length in block 1
  P1: number; // after pool 1 (= L2)
  L2: number;
  T: number; // LSTM steps (after pool 2)
  U1: number; // dense units
  U: number; // LSTM units
  C: number; // classes
  rate: number; // dropout
  denseRelu: boolean;
}

const EXPECTED = ['conv1_1', 'conv1_2', 'pool1', 'drop1', 'conv2_1', 'conv2_2', 'pool2', 'drop2', 'dense', 'lstm', 'probabilities'];

type Cfg = Record<string, unknown>;
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function describeCnnLstm(model: tf.LayersModel, features: number, classes: number): CnnLstmShape | null {
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  if (layers.length !== EXPECTED.length || layers.some((l, i) => l.name !== EXPECTED[i])) return null;
  const cfg = (i: number) => layers[i].getConfig() as Cfg;
  const inShape = model.inputs[0].shape;
  if (!same(inShape, [null, features, 1])) return null;
  let K = 0;
  let k = 0;
  for (const i of [0, 1, 4, 5]) {
    const c = cfg(i);
    if (layers[i].getClassName() !== 'Conv1D' || c.padding !== 'same' || c.activation !== 'relu' || c.useBias !== true) return null;
    if (!same(c.strides, [1]) || !same(c.dilationRate, [1])) return null;
    if (c.dataFormat !== undefined && c.dataFormat !== 'channelsLast') return null;
    const ks = (c.kernelSize as number[])[0];
    if (i === 0) {
      K = c.filters as number;
      k = ks;
    } else if (c.filters !== K || ks !== k) return null;
  }
  if (k % 2 !== 1) return null; // even 'same' kernels pad asymmetrically; not worth a path
  let rate = -1;
  for (const i of [2, 6]) {
    const c = cfg(i);
    if (layers[i].getClassName() !== 'MaxPooling1D' || !same(c.poolSize, [2]) || !same(c.strides, [2]) || c.padding !== 'valid') return null;
    const d = cfg(i + 1);
    if (layers[i + 1].getClassName() !== 'Dropout' || d.noiseShape != null) return null;
    if (rate >= 0 && d.rate !== rate) return null;
    rate = d.rate as number;
  }
  const dense = cfg(8);
  if (layers[8].getClassName() !== 'Dense' || dense.useBias !== true) return null;
  if (dense.activation !== 'relu' && dense.activation !== 'linear') return null;
  const lstm = cfg(9);
  if (
    layers[9].getClassName() !== 'LSTM' || lstm.activation !== 'tanh' || lstm.recurrentActivation !== 'sigmoid' ||
    lstm.useBias !== true || lstm.returnSequences || lstm.returnState || lstm.goBackwards || lstm.stateful ||
    (lstm.dropout as number) > 0 || (lstm.recurrentDropout as number) > 0 || lstm.unroll
  ) return null;
  const out = cfg(10);
  if (layers[10].getClassName() !== 'Dense' || out.activation !== 'softmax' || out.useBias !== true || out.units !== classes) return null;
  // The weights must come in the order the fused step indexes them.
  const names = model.trainableWeights.map((w) => w.originalName ?? w.name);
  const want = ['conv1_1/kernel', 'conv1_1/bias', 'conv1_2/kernel', 'conv1_2/bias', 'conv2_1/kernel', 'conv2_1/bias',
    'conv2_2/kernel', 'conv2_2/bias', 'dense/kernel', 'dense/bias', 'lstm/kernel', 'lstm/recurrent_kernel', 'lstm/bias',
    'probabilities/kernel', 'probabilities/bias'];
  if (names.length !== want.length || names.some((n, i) => !n.endsWith(want[i]))) return null;
  const L1 = features;
  const P1 = L1 >> 1;
  const T = P1 >> 1;
  if (T < 1) return null;
  return {
    F: features, K, k, pad: (k - 1) >> 1, L1, P1, L2: P1, T,
    U1: dense.units as number, U: lstm.units as number, C: classes, rate, denseRelu: dense.activation === 'relu',
  };
}
