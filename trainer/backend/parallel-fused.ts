/**
 * Data-parallel fused step on two threads: the batch is split, the worker (parallel-worker.ts, its own wasm
 * backend) computes the gradient of the second half while this thread does the first; the halves are summed
 * and Adam steps here. The wasm backend runs single-threaded in Node, so this is how training uses a second core.
 * The one-thread step computes the same two halves in turn (FusedCnnLstmStepper.step), so both ways give the
 * same bits and each step may take whichever is faster at the moment.
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { AdamState } from './adam.ts';
import { FusedCnnLstmStepper, MIN_SPLIT_ROWS, splitSeed } from './fused-cnn-lstm.ts';
import { CTRL, type ParallelShared } from './parallel-shared.ts';
import type { Stepper, StepResult } from './stepper.ts';

export { MIN_SPLIT_ROWS } from './fused-cnn-lstm.ts';
const WORKER_TIMEOUT_MS = 120_000;

export class ParallelFusedStepper implements Stepper {
  readonly name = 'fused-wasm-2threads';
  private readonly ctrl: Int32Array;
  private readonly f64: Float64Array;
  private readonly x: Float32Array;
  private readonly y: Int32Array;
  private readonly w: Float32Array;
  private readonly weights: Float32Array;
  private readonly grads: Float32Array;
  private failure: string | null = null;

  constructor(
    private readonly local: FusedCnnLstmStepper,
    private readonly worker: Worker,
    shared: ParallelShared,
    private readonly features: number,
  ) {
    this.ctrl = new Int32Array(shared.ctrl);
    this.f64 = new Float64Array(shared.result);
    this.x = new Float32Array(shared.x);
    this.y = new Int32Array(shared.y);
    this.w = new Float32Array(shared.w);
    this.weights = new Float32Array(shared.weights);
    this.grads = new Float32Array(shared.grads);
    worker.on('message', (m: unknown) => {
      if (m && typeof m === 'object' && 'error' in m) this.failure = String((m as { error: unknown }).error);
    });
  }

  /**
   * Both ways give the same bits (FusedCnnLstmStepper.step computes the same two halves in turn), so the step
   * goes to whichever has been faster lately: on a machine whose other core is busy, the worker only adds a
   * straggler wait. Each way is re-tried now and then.
   */
  step(x: Float32Array, y: Int32Array, w: Float32Array | null, n: number, lr: number, seed: number): StepResult {
    if (n < MIN_SPLIT_ROWS) return this.local.step(x, y, w, n, lr, seed);
    const k = this.steps++;
    const useWorker = k < 8 ? k % 2 === 0 : k % 50 === 0 ? !this.preferWorker() : k % 50 === 1 ? this.preferWorker() : this.preferWorker();
    const t0 = performance.now();
    let result: StepResult;
    if (useWorker) {
      result = this.compute(x, y, w, n, seed).result;
      this.local.applyGradients(this.grads, lr);
    } else {
      result = this.local.step(x, y, w, n, lr, seed);
    }
    const perRow = (performance.now() - t0) / n;
    const i = useWorker ? 1 : 0;
    this.cost[i] = this.cost[i] === 0 ? perRow : 0.8 * this.cost[i] + 0.2 * perRow;
    return result;
  }

  /** Seconds per row lately, one thread and two. */
  private readonly cost = [0, 0];
  private steps = 0;
  private preferWorker(): boolean {
    return this.cost[1] > 0 && this.cost[1] < this.cost[0];
  }

  /** Whether steps currently go to the worker (the faster way lately). */
  get usingWorker(): boolean {
    return this.preferWorker();
  }

  /** The summed gradient without an update (flat, model order): what the tests compare with one thread. */
  gradients(x: Float32Array, y: Int32Array, w: Float32Array | null, n: number, seed: number): StepResult & { grads: Float32Array } {
    const { result, split } = this.compute(x, y, w, n, seed);
    const g = new Float32Array(this.local.size);
    this.local.copyFlat('acc', g);
    if (split) for (let i = 0; i < g.length; i++) g[i] += this.grads[i];
    return { ...result, grads: g };
  }

  /** Rows [0, n−n/2) here, the rest on the worker; afterwards the local accumulators hold this thread's part. */
  private compute(x: Float32Array, y: Int32Array, w: Float32Array | null, n: number, seed: number): { result: StepResult; split: boolean } {
    if (n < MIN_SPLIT_ROWS) return { result: this.local.partialGradients(x, y, w, n, n, seed), split: false };
    const F = this.features;
    const nw = n >> 1;
    const nm = n - nw;
    this.x.set(x.subarray(nm * F, n * F));
    this.y.set(y.subarray(nm, n));
    if (w) this.w.set(w.subarray(nm, n));
    this.local.copyFlat('weights', this.weights);
    const c = this.ctrl;
    c[CTRL.ROWS] = nw;
    c[CTRL.BATCH] = n;
    c[CTRL.SEED] = splitSeed(seed) | 0;
    c[CTRL.HAS_W] = w ? 1 : 0;
    Atomics.store(c, CTRL.STATE, 1);
    Atomics.notify(c, CTRL.STATE);
    const mine = this.local.partialGradients(x, y, w, nm, n, seed);
    // The event loop is blocked here, so a dead worker cannot announce itself: wait with a deadline.
    const deadline = Date.now() + WORKER_TIMEOUT_MS;
    let s: number;
    while ((s = Atomics.load(c, CTRL.STATE)) === 1 && Date.now() < deadline) Atomics.wait(c, CTRL.STATE, 1, 1000);
    if (s !== 2) {
      throw new Error(`training worker ${s === 1 ? 'did not answer within ' + WORKER_TIMEOUT_MS / 1000 + ' s' : 'failed'}${this.failure ? `: ${this.failure}` : ' (see stderr)'}`);
    }
    const theirs = { lossSum: this.f64[0], correct: c[CTRL.CORRECT] };
    Atomics.store(c, CTRL.STATE, 0);
    return { result: { lossSum: mine.lossSum + theirs.lossSum, correct: mine.correct + theirs.correct }, split: true };
  }

  syncToModel(): void {
    this.local.syncToModel();
  }
  predict(X: Float32Array, rows: number, out: Float32Array): void {
    this.local.predict(X, rows, out);
  }
  getWeights(): Float32Array[] {
    return this.local.getWeights();
  }
  setWeights(ws: readonly Float32Array[]): void {
    this.local.setWeights(ws);
  }
  getOptimizerState(): AdamState {
    return this.local.getOptimizerState();
  }
  setOptimizerState(s: AdamState): void {
    this.local.setOptimizerState(s);
  }

  dispose(): void {
    Atomics.store(this.ctrl, CTRL.STATE, 9);
    Atomics.notify(this.ctrl, CTRL.STATE);
    void this.worker.terminate();
    this.local.dispose();
  }
}

/**
 * Start the worker and wait until its backend is up (a few hundred ms). Returns null (after stopping the worker)
 * if it fails or takes longer than `timeoutMs`: the caller then trains on one thread.
 */
export async function createParallelFusedStepper(
  model: tf.LayersModel, local: FusedCnnLstmStepper, features: number, classes: number, maxRows: number, timeoutMs = 60_000,
): Promise<ParallelFusedStepper | null> {
  const half = Math.max(1, maxRows >> 1);
  const size = local.size;
  const shared: ParallelShared = {
    ctrl: new SharedArrayBuffer(8 * 4),
    result: new SharedArrayBuffer(8),
    x: new SharedArrayBuffer(half * features * 4),
    y: new SharedArrayBuffer(half * 4),
    w: new SharedArrayBuffer(half * 4),
    weights: new SharedArrayBuffer(size * 4),
    grads: new SharedArrayBuffer(size * 4),
  };
  let worker: Worker;
  try {
    worker = new Worker(new URL('./parallel-boot.mjs', import.meta.url), {
      workerData: { ...shared, topology: model.toJSON(undefined, false), features, classes, maxRows: half },
      stdout: true, // tfjs banners; errors still reach stderr
    });
  } catch {
    return null;
  }
  worker.unref();
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    worker.once('message', (m) => {
      clearTimeout(timer);
      resolve(m === 'ready');
    });
    worker.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!ready) {
    void worker.terminate();
    return null;
  }
  return new ParallelFusedStepper(local, worker, shared, features);
}
