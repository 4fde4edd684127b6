/** Trains the baseline on a split and scores it on the test rows, with the same metrics as the CNN-LSTM. */
import { trainForest, forestProba, forestDescription, type ForestOptions } from './random-forest.ts';
import { argmaxRows, computeMetrics, type Metrics } from '../eval/metrics.ts';

export interface BaselineResult extends Metrics {
  name: string;
  description: string;
  trainSeconds: number;
  predictSeconds: number;
  trainRows: number;
  options: ForestOptions;
}

export interface BaselineInput {
  X: Float32Array;
  features: number;
  y: Int32Array;
  labels: readonly string[];
  train: Uint32Array;
  test: Uint32Array;
}

export function runBaseline(d: BaselineInput, options: ForestOptions = {}): BaselineResult {
  const t0 = performance.now();
  const forest = trainForest(d.X, d.features, d.y, d.labels.length, d.train, options);
  const t1 = performance.now();
  const proba = forestProba(forest, d.X, d.test);
  const pred = argmaxRows(proba, d.test.length, d.labels.length);
  const t2 = performance.now();
  const yTrue = new Int32Array(d.test.length);
  for (let i = 0; i < d.test.length; i++) yTrue[i] = d.y[d.test[i]];
  return {
    name: 'random-forest',
    description: forestDescription(forest),
    trainSeconds: (t1 - t0) / 1000,
    predictSeconds: (t2 - t1) / 1000,
    trainRows: d.train.length,
    options: forest.options,
    ...computeMetrics(d.labels, yTrue, pred),
  };
}
