/**
 * Scores stored feature vectors with a bundle as a hub would: the manifest's scaler (scaler.ts, the reference the
 * hub's wasm is tested against), the bundle's model on onnxruntime-web, then the hub's own verdict rule
 * (verdict-rule.ts). For checks away from the hub, such as a rollout's pre-flight.
 */
import * as ort from 'onnxruntime-web';
import { IdsError } from './errors.ts';
import type { BundleManifest } from './manifest.ts';
import { scaleRow } from './scaler.ts';
import { decideRows, verdictRule } from './verdict-rule.ts';

export interface Scorer {
  readonly version: string;
  readonly labels: readonly string[];
  /** Model feature names in order: rows given to classify() hold these values. */
  readonly features: readonly string[];
  /** Index of Normal in labels (-1 without one). */
  readonly normal: number;
  /**
   * Class index per row (-1 = unsure) of `rows` raw vectors laid out back to back in `raw` (features.length each).
   * The result is a new array.
   */
  classify(raw: Float32Array | Float64Array, rows: number): Promise<Int32Array>;
  release(): Promise<void>;
}

/** Rows per onnxruntime run: bounds the tensor whatever the caller hands in. */
const BATCH = 512;

/** Opens a scorer on a bundle's manifest and its (already verified) model bytes. */
export async function openScorer(manifest: BundleManifest, model: Uint8Array): Promise<Scorer> {
  // One wasm thread: a check running beside the aggregator must not take every core (the hub does the same).
  if (!ort.env.wasm.numThreads) ort.env.wasm.numThreads = 1;
  const { version, inputName, outputName } = manifest.model;
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  } catch (e) {
    throw new IdsError('BAD_BUNDLE', `model ${version}: onnxruntime-web refused it: ${(e as Error).message}`, { cause: e });
  }
  const spec = manifest.preprocessing;
  const f = spec.features.length;
  const labels = manifest.labels;
  const c = labels.length;
  const rule = verdictRule(manifest);
  const normal = rule.normal;
  const x = new Float32Array(BATCH * f);
  return {
    version, labels, features: spec.features, normal,
    async classify(raw, rows) {
      if (raw.length < rows * f) throw new IdsError('BAD_OPTION', `classify: ${raw.length} values for ${rows} rows of ${f}`);
      const out = new Int32Array(rows);
      for (let start = 0; start < rows; start += BATCH) {
        const n = Math.min(BATCH, rows - start);
        for (let i = 0; i < n; i++) scaleRow(spec, raw.subarray((start + i) * f, (start + i + 1) * f), x, i * f);
        let probs: Float32Array;
        try {
          const res = await session.run({ [inputName]: new ort.Tensor('float32', x.subarray(0, n * f), [n, f, 1]) });
          probs = res[outputName].data as Float32Array;
        } catch (e) {
          throw new IdsError('BAD_MODEL', `model ${version}: inference failed: ${(e as Error).message}`, { cause: e });
        }
        if (probs.length !== n * c) throw new IdsError('BAD_MODEL', `model ${version}: output has ${probs.length} values, want ${n} × ${c}`);
        decideRows(rule, probs, n, out, start);
      }
      return out;
    },
    async release() {
      await session.release().catch(() => undefined);
    },
  };
}
