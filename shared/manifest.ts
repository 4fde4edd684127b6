/**
 * The hub bundle's manifest: everything a hub needs to run a model and nothing it must trust blindly.
 * A bundle folder holds manifest.json, manifest.sig (Ed25519 over manifest.json's bytes), model.int8.onnx and
 * the preprocessing wasm; `files` pins each by sha256.
 */
import type { ScalerSpec } from './scaler.ts';
import type { WatcherSettings } from './watcher-settings.ts';

export const BUNDLE_SCHEMA_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';
export const MODEL_FILE = 'model.int8.onnx';
export const FP32_MODEL_FILE = 'model.fp32.onnx';
export const PREPROCESS_WASM_FILE = 'preprocess.wasm';

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface BundleManifest {
  schemaVersion: typeof BUNDLE_SCHEMA_VERSION;
  model: {
    name: string;
    /** Shown in every alert; e.g. "2026-11-30.1-a1b2c3d4". */
    version: string;
    createdAt: string;
    /**
     * Monotonic release number, signed with the rest: a hub installs a downlinked bundle only when its release is
     * higher than the running one's (edge/hub.ts). `bundle build` sets it (default: createdAt in whole seconds
     * since 1970). Bundles built before it existed have none and compare by createdAt (see bundleRelease).
     */
    release?: number;
    opset: number;
    precision: 'int8' | 'fp32';
    inputName: string;
    outputName: string;
    /** [batch, features, 1]; batch is dynamic (-1). */
    inputShape: [number, number, number];
  };
  training: {
    data: string[];
    rows: { train: number; test: number };
    classCounts: Record<string, number>;
    recipe: string;
    seed: number;
    /** A fine-tune (`train --init-from`): the model it continued from. */
    initFrom?: { version: string | null; release: number | null; source: string };
    /** A fine-tune: which of `data` are the fleet's rows and which the replayed original corpus. */
    fleetData?: string[];
    replayData?: string[];
    /** A fine-tune: the per-class loss weights it trained with (the next fine-tune from this bundle reuses them). */
    classWeights?: Record<string, number>;
  };
  preprocessing: ScalerSpec & { portPolicy: 'none' | 'dst' | 'both' };
  labels: string[];
  /** Per class: the minimum probability for an alert of that class; below it the verdict falls back to Normal. */
  thresholds: Record<string, number>;
  metrics: {
    accuracy: number;
    macroF1: number;
    perClass: Record<string, ClassMetrics>;
  };
  files: Record<string, { sha256: string; bytes: number }>;
  /**
   * Settings of the hub's watchers for this bundle (shared/watcher-settings.ts; `bundle build --watchers FILE`);
   * absent = the hub's defaults. A hub's `--watchers` overrides them setting by setting.
   */
  watchers?: WatcherSettings;
  /**
   * Present only on a bundle built with `--no-hub-check` whose features include ones the hub's flow meter cannot
   * compute: an evaluation bundle for `bundle eval` in the cloud, never for hubs (they refuse it at load).
   */
  notForHubs?: { reason: string; missingFeatures: string[] };
}

/**
 * The number bundles are ordered by: `model.release`, else createdAt in whole seconds since 1970 (what `bundle
 * build` puts in `release` by default, so old and new bundles compare on one scale). NaN when neither is usable.
 */
export function bundleRelease(m: Pick<BundleManifest, 'model'>): number {
  const r = m.model.release;
  if (typeof r === 'number' && Number.isSafeInteger(r) && r >= 0) return r;
  return releaseFromCreatedAt(m.model.createdAt);
}

export const releaseFromCreatedAt = (createdAt: string): number => Math.floor(Date.parse(createdAt) / 1000);

/** True when `next` is strictly newer than `running` by bundleRelease (an unordered bundle is never newer). */
export const isNewerBundle = (next: Pick<BundleManifest, 'model'>, running: Pick<BundleManifest, 'model'>): boolean =>
  bundleRelease(next) > bundleRelease(running);
