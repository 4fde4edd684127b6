/**
 * The second thread of a data-parallel fused step (parallel-fused.ts): its own tfjs wasm backend and fused
 * stepper; per step it takes the weights and its rows from shared memory, computes its share of the gradient and
 * hands it back. Protocol on ctrl[0]: 0 idle, 1 go, 2 done, 3 failed, 9 quit.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './index.ts';
import { FusedCnnLstmStepper } from './fused-cnn-lstm.ts';
import { describeCnnLstm } from './fused-shape.ts';
import { CTRL, type ParallelShared } from './parallel-shared.ts';

const d = workerData as ParallelShared & { topology: unknown; features: number; classes: number; maxRows: number };

async function main(): Promise<void> {
  await initBackend('wasm');
  // The model is rebuilt only for its shape (weights come from the main thread each step): mute the
  // initialiser warnings the main thread already printed.
  const warn = console.warn;
  console.warn = () => {};
  const model = await tf.models.modelFromJSON({ modelTopology: d.topology } as Parameters<typeof tf.models.modelFromJSON>[0]);
  console.warn = warn;
  const shape = describeCnnLstm(model, d.features, d.classes);
  if (!shape) throw new Error('worker: the model is not the fused CNN-LSTM');
  const st = new FusedCnnLstmStepper(model, shape, d.maxRows);
  const ctrl = new Int32Array(d.ctrl);
  const f64 = new Float64Array(d.result);
  const x = new Float32Array(d.x);
  const y = new Int32Array(d.y);
  const w = new Float32Array(d.w);
  const weights = new Float32Array(d.weights);
  const grads = new Float32Array(d.grads);
  parentPort!.postMessage('ready');
  for (;;) {
    const s = Atomics.load(ctrl, CTRL.STATE);
    if (s === 9) break;
    if (s !== 1) {
      Atomics.wait(ctrl, CTRL.STATE, s);
      continue;
    }
    try {
      st.setWeightsFlat(weights);
      const n = ctrl[CTRL.ROWS];
      const r = st.partialGradients(x, y, ctrl[CTRL.HAS_W] ? w : null, n, ctrl[CTRL.BATCH], ctrl[CTRL.SEED] >>> 0);
      st.copyFlat('acc', grads);
      f64[0] = r.lossSum;
      ctrl[CTRL.CORRECT] = r.correct;
      Atomics.store(ctrl, CTRL.STATE, 2);
    } catch (e) {
      console.error(`training worker: ${(e as Error).stack ?? e}`);
      parentPort!.postMessage({ error: (e as Error).message });
      Atomics.store(ctrl, CTRL.STATE, 3);
    }
    Atomics.notify(ctrl, CTRL.STATE);
  }
  st.dispose();
}

main().catch((e) => parentPort!.postMessage({ error: (e as Error).stack ?? String(e) }));
