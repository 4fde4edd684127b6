/** Shared-memory layout between the main thread and the parallel fused-step worker. */
export const CTRL = { STATE: 0, ROWS: 1, BATCH: 2, SEED: 3, HAS_W: 4, CORRECT: 5 } as const;

export interface ParallelShared {
  ctrl: SharedArrayBuffer; // Int32 × 8
  result: SharedArrayBuffer; // Float64 × 1: the worker's loss sum
  x: SharedArrayBuffer; // Float32 rows × features
  y: SharedArrayBuffer; // Int32 rows
  w: SharedArrayBuffer; // Float32 rows
  weights: SharedArrayBuffer; // Float32, all trainable values in model order
  grads: SharedArrayBuffer; // Float32, same layout
}
