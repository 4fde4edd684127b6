import type * as tf from '@tensorflow/tfjs';
import type { Stepper } from './stepper.ts';
/** The hand-fused CNN-LSTM training step (not yet available: the generic step is used). */
export function createFusedStepper(_model: tf.LayersModel, _features: number, _classes: number, _batchSize: number): Stepper | null {
  return null;
}
