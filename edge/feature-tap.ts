/**
 * Raw feature vectors for alerts and samples (#15: the fleet teaches the model). The flow's unscaled values are
 * still in the batch's raw block when the verdicts come back (edge/batcher.ts `Batch.raw`); the tap picks the
 * running model's features out of it, in its manifest order, into one reused Float32Array, and writes them as
 * shared/feature-vector.ts's wire format (float32 little-endian, base64) through one reused Buffer. Per flow
 * nothing is allocated: only an alert or sample actually published costs its base64 string.
 */
import { MAX_FEATURES } from '../shared/feature-vector.ts';
import type { Batch } from './batcher.ts';

export class FeatureTap {
  private readonly vec = new Float32Array(MAX_FEATURES);
  private readonly bytes = Buffer.from(this.vec.buffer, this.vec.byteOffset, this.vec.byteLength);
  private n = 0;

  /**
   * Row i of the batch in its model's feature order, or undefined when the batch's classifier names no features
   * (a test double). The view is reused by the next call: encode or copy it first.
   */
  gather(b: Batch, i: number): Float32Array | undefined {
    const cols = b.columns;
    if (!cols || cols.length > MAX_FEATURES) return undefined;
    const raw = b.raw;
    const base = i * b.inputs;
    const v = this.vec;
    for (let j = 0; j < cols.length; j++) v[j] = raw[base + cols[j]];
    this.n = cols.length;
    return v.subarray(0, this.n);
  }

  /** The last gathered vector as base64: byte for byte what encodeFeatures writes (a test holds it to that). */
  encodeLast(): string {
    return this.bytes.toString('base64', 0, this.n * 4);
  }

  /** Any vector (a burst window's copy) in the same format; leaves the last gathered vector alone. */
  encode(values: Float32Array): string {
    return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
  }
}
