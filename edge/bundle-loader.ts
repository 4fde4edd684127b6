/**
 * Loads a model bundle for the hub: verify first (signature over manifest.json, then every file's size and
 * sha256), and only then compile the preprocessing wasm and create the onnxruntime-web session. Nothing from an
 * unverified bundle runs. A failure throws IdsError('BAD_BUNDLE') and leaves whatever bundle is running alone.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-web';
import { verifyBundle, modelFileFor } from '../shared/bundle-verify.ts';
import { IdsError } from '../shared/errors.ts';
import type { BundleManifest } from '../shared/manifest.ts';
import { PREPROCESS_WASM_FILE } from '../shared/manifest.ts';
import { featuresHubLacks } from '../shared/features.ts';
import { instantiatePreprocess } from './preprocess.ts';

export interface RuntimeOptions {
  /** onnxruntime-web wasm threads (1 = no worker threads: the hub's one core goes to the pipeline). */
  threads?: number;
  /** Folder holding ort-wasm-simd-threaded*.wasm/.mjs; default: beside this file, else the installed package. */
  wasmPaths?: string;
}

export interface LoadedBundle {
  dir: string;
  manifest: BundleManifest;
  /** The preprocessing module (scaler + flow meter), instantiated from the bundle's verified bytes. */
  preprocess: WebAssembly.Instance;
  /** The verified preprocess.wasm bytes (the flow meter host may instantiate its own copy). */
  preprocessBytes: Uint8Array;
  session: ort.InferenceSession;
}

let configured = false;

/** The folder with ort's wasm files: beside the single-file hub build, else node_modules/onnxruntime-web/dist. */
export function defaultWasmPaths(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'ort-wasm-simd-threaded.wasm'))) return here + '/';
  for (let d = here, i = 0; i < 6; i++, d = dirname(d)) {
    const p = join(d, 'node_modules', 'onnxruntime-web', 'dist');
    if (existsSync(join(p, 'ort-wasm-simd-threaded.wasm'))) return p + '/';
  }
  throw new IdsError('BAD_OPTION', `onnxruntime-web wasm files not found beside ${here} or in node_modules`);
}

/** Sets ort's global wasm options once per process (ort reads them when its backend first initialises). */
export function configureRuntime(opts: RuntimeOptions = {}): void {
  if (configured) return;
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new IdsError('BAD_OPTION', `--threads must be an integer 1..64, got ${threads}`);
  }
  ort.env.wasm.wasmPaths = opts.wasmPaths ?? defaultWasmPaths();
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  ort.env.logLevel = 'error';
  configured = true;
}

export async function createSession(model: Uint8Array, manifest: BundleManifest): Promise<ort.InferenceSession> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  } catch (e) {
    throw new IdsError('BAD_BUNDLE', `model ${manifest.model.version}: onnxruntime-web refused it: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const { inputName, outputName } = manifest.model;
  if (!session.inputNames.includes(inputName) || !session.outputNames.includes(outputName)) {
    await session.release().catch(() => undefined);
    throw new IdsError(
      'BAD_BUNDLE',
      `model ${manifest.model.version}: manifest names input "${inputName}" / output "${outputName}", ` +
        `the model has [${session.inputNames}] / [${session.outputNames}]`,
    );
  }
  return session;
}

/**
 * Verifies and loads the bundle in `dir`. `accept` sees the verified manifest before anything of the bundle is
 * compiled and may throw to refuse it (the downlink's version policy).
 */
export async function loadBundle(
  dir: string,
  opts: RuntimeOptions & { publicKeyPem: string | Uint8Array },
  accept?: (manifest: BundleManifest) => void,
): Promise<LoadedBundle> {
  const { manifest, files } = await verifyBundle(dir, { publicKeyPem: opts.publicKeyPem });
  const missing = featuresHubLacks(manifest.preprocessing.features);
  if (missing.length) {
    throw new IdsError(
      'BAD_BUNDLE',
      `model ${manifest.model.version}: the hub's flow meter cannot compute ${missing.join(', ')}` +
        (manifest.notForHubs ? ' (a cloud-only evaluation bundle, built with --no-hub-check)' : ''),
    );
  }
  accept?.(manifest);
  configureRuntime(opts);
  const preprocessBytes = files[PREPROCESS_WASM_FILE];
  const preprocess = await instantiatePreprocess(preprocessBytes);
  const session = await createSession(files[modelFileFor(manifest)], manifest);
  return { dir, manifest, preprocess, preprocessBytes, session };
}

export async function releaseBundle(b: LoadedBundle): Promise<void> {
  await b.session.release().catch(() => undefined);
}
