/**
 * The paper's hybrid CNN-LSTM (Dong & Cheng): the feature vector is read as a 1-D sequence of F steps with one
 * channel; two blocks of Conv1D(32,k3,same,relu)×2 → MaxPool1D(2,2) → Dropout(0.25); a Dense(32) per time step;
 * an LSTM(32) over the F/4 pooled steps; Dense(classes, softmax).
 */
import * as tf from '@tensorflow/tfjs';

export interface CnnLstmConfig {
  features: number;
  classes: number;
  filters?: number;
  kernelSize?: number;
  dropout?: number;
  denseUnits?: number;
  /** The Dense(32) before the LSTM; the paper does not say, Keras' default would be linear. */
  denseActivation?: 'relu' | 'linear';
  lstmUnits?: number;
  seed?: number;
}

export const PAPER_DEFAULTS = {
  filters: 32,
  kernelSize: 3,
  dropout: 0.25,
  denseUnits: 32,
  denseActivation: 'relu',
  lstmUnits: 32,
} as const;

export function buildCnnLstm(cfg: CnnLstmConfig): tf.LayersModel {
  const c = { ...PAPER_DEFAULTS, ...cfg };
  if (!(c.features >= 4)) throw new Error(`CNN-LSTM needs at least 4 features (two 2× poolings), got ${c.features}`);
  if (!(c.classes >= 2)) throw new Error(`CNN-LSTM needs at least 2 classes, got ${c.classes}`);
  // Seeded initialisers make a training run reproducible for a given seed.
  let seed = c.seed ?? 42;
  const glorot = () => tf.initializers.glorotUniform({ seed: seed++ });
  const orthogonal = () => tf.initializers.orthogonal({ seed: seed++ });

  const input = tf.input({ shape: [c.features, 1], name: 'flow_features' });
  let x: tf.SymbolicTensor = input;
  for (let block = 1; block <= 2; block++) {
    for (let k = 1; k <= 2; k++) {
      x = tf.layers
        .conv1d({
          filters: c.filters,
          kernelSize: c.kernelSize,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: glorot(),
          name: `conv${block}_${k}`,
        })
        .apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling1d({ poolSize: 2, strides: 2, name: `pool${block}` }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.dropout({ rate: c.dropout, seed: seed++, name: `drop${block}` }).apply(x) as tf.SymbolicTensor;
  }
  // Dense on a [steps, channels] tensor applies to every time step, as Keras' Dense does.
  x = tf.layers
    .dense({ units: c.denseUnits, activation: c.denseActivation, kernelInitializer: glorot(), name: 'dense' })
    .apply(x) as tf.SymbolicTensor;
  // recurrentActivation 'sigmoid' as in Keras (tfjs defaults to hardSigmoid), so the ONNX LSTM computes the same.
  x = tf.layers
    .lstm({
      units: c.lstmUnits,
      recurrentActivation: 'sigmoid',
      kernelInitializer: glorot(),
      recurrentInitializer: orthogonal(),
      name: 'lstm',
    })
    .apply(x) as tf.SymbolicTensor;
  const out = tf.layers
    .dense({ units: c.classes, activation: 'softmax', kernelInitializer: glorot(), name: 'probabilities' })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'cnn_lstm' });
}
