/** Models and data for export tests: random but "peaky" weights so probabilities differ clearly between rows. */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Rng } from '../../shared/random.ts';
import { buildCnnLstm } from '../../trainer/model/cnn-lstm.ts';

/** Replaces every weight with N(0, std²) draws from a seeded Rng (glorot-sized weights give near-uniform softmax). */
export function randomizeWeights(model: tf.LayersModel, seed: number, std = 0.35): void {
  const rng = new Rng(seed);
  model.setWeights(
    model.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, () => rng.normal() * std), w.shape)),
  );
}

export function randomCnnLstm(features: number, classes: number, seed = 3): tf.LayersModel {
  const m = buildCnnLstm({ features, classes, seed });
  randomizeWeights(m, seed);
  return m;
}

export function randomRows(rows: number, features: number, seed = 11): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: rows * features }, () => rng.next());
}

export function tfPredict(model: tf.LayersModel, X: Float32Array, rows: number): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor3d(X, [rows, X.length / rows, 1])) as tf.Tensor).dataSync() as Float32Array);
}

/** Debian's python3-onnx (ONNX 1.12): the reference checker. Undefined when unavailable. */
export function onnxChecker(): ((path: string) => { ok: boolean; output: string }) | undefined {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return undefined;
  const probe = spawnSync(py, ['-c', 'import onnx, sys; print(onnx.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0) return undefined;
  return (path) => {
    const r = spawnSync(
      py,
      ['-c', 'import onnx, sys; onnx.checker.check_model(sys.argv[1], full_check=True); print("ok", onnx.__version__)', path],
      { encoding: 'utf8' },
    );
    return { ok: r.status === 0, output: (r.stdout + r.stderr).trim() };
  };
}
