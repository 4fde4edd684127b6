/**
 * One optimisation step of a classifier, behind one interface so the training loop does not care whether the
 * step runs through the tfjs autograd tape (any model, any backend) or through the hand-fused CNN-LSTM path.
 * Both use the same Adam (adam.ts) and the same loss, so checkpoints move between them.
 */
import * as tf from '@tensorflow/tfjs';
import { Adam, type AdamState } from './adam.ts';

export interface StepResult {
  /** Sum over the batch of w_i · CE_i (divide by n for the mean). */
  lossSum: number;
  /** Rows whose argmax equals the label. */
  correct: number;
}

export interface Stepper {
  readonly name: string;
  /**
   * One Adam step on rows [0, n): x is n×features (scaled), y the class indices, w per-row loss weights (null = 1).
   * The loss minimised is mean_i w_i · (−log p_{i,y_i}); `seed` drives dropout masks for this step.
   */
  step(x: Float32Array, y: Int32Array, w: Float32Array | null, n: number, lr: number, seed: number): StepResult;
  /** Write the trained weights into the model's variables (the fused path trains its own copies). */
  syncToModel(): void;
  /** All trainable weights, in model.trainableWeights order (copies). */
  getWeights(): Float32Array[];
  setWeights(ws: readonly Float32Array[]): void;
  getOptimizerState(): AdamState;
  setOptimizerState(s: AdamState): void;
  /** Optional fast inference with the stepper's current weights (no dropout): rows×classes into out. */
  predict?(X: Float32Array, rows: number, out: Float32Array): void;
  dispose(): void;
}

/** Keras clips probabilities before the log; the same bound here keeps the losses comparable. */
export const PROB_EPSILON = 1e-7;

/** The generic step: model.apply under tf.variableGrads, gradients read back and applied by our Adam. */
export class TapeStepper implements Stepper {
  readonly name = 'tape';
  private readonly vars: tf.Variable[];
  private readonly adam: Adam;
  constructor(
    private readonly model: tf.LayersModel,
    private readonly features: number,
    private readonly classes: number,
  ) {
    this.vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.adam = new Adam(this.vars.map((v) => v.size));
  }

  step(x: Float32Array, y: Int32Array, w: Float32Array | null, n: number, lr: number): StepResult {
    const { features: F, classes: C } = this;
    let correct = 0;
    let lossSum = 0;
    const grads = tf.tidy(() => {
      const xs = tf.tensor3d(x.subarray(0, n * F), [n, F, 1]);
      const ys = tf.oneHot(tf.tensor1d(y.subarray(0, n), 'int32'), C);
      const ws = w ? tf.tensor1d(w.subarray(0, n)) : tf.ones([n]);
      let pred: tf.Tensor | null = null;
      const { value, grads } = tf.variableGrads(() => {
        const p = this.model.apply(xs, { training: true }) as tf.Tensor2D;
        pred = tf.keep(p.argMax(-1));
        const ce = tf.neg(tf.sum(tf.mul(ys, tf.log(tf.clipByValue(p, PROB_EPSILON, 1))), -1));
        return tf.div(tf.sum(tf.mul(ce, ws)), n) as tf.Scalar;
      }, this.vars);
      lossSum = value.dataSync()[0] * n;
      const pv = pred!.dataSync();
      for (let i = 0; i < n; i++) if (pv[i] === y[i]) correct++;
      pred!.dispose();
      return this.vars.map((v) => grads[v.name]);
    });
    const gs = grads.map((g) => g.dataSync() as Float32Array);
    const ws = this.vars.map((v) => v.dataSync() as Float32Array);
    // dataSync on a variable can return its backing store on cpu: update copies, never in place.
    const next = ws.map((a) => a.slice());
    this.adam.update(next, gs, lr);
    tf.dispose(grads);
    tf.tidy(() => this.vars.forEach((v, i) => v.assign(tf.tensor(next[i], v.shape))));
    return { lossSum, correct };
  }

  syncToModel(): void {}

  getWeights(): Float32Array[] {
    return this.vars.map((v) => (v.dataSync() as Float32Array).slice());
  }

  setWeights(ws: readonly Float32Array[]): void {
    tf.tidy(() => this.vars.forEach((v, i) => v.assign(tf.tensor(ws[i], v.shape))));
  }

  getOptimizerState(): AdamState {
    return this.adam.getState();
  }

  setOptimizerState(s: AdamState): void {
    this.adam.setState(s);
  }

  dispose(): void {}
}
