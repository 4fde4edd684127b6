/**
 * Writes a signed bundle: the files, manifest.json (the caller's manifest plus each file's sha256 and size)
 * and manifest.sig (Ed25519 over manifest.json's exact bytes, base64). The signature is written last, so an
 * interrupted build leaves a folder that fails verification instead of one that passes with stale files.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IdsError } from '../../shared/errors.ts';
import { MANIFEST_FILE, SIGNATURE_FILE, releaseFromCreatedAt, type BundleManifest } from '../../shared/manifest.ts';
import { modelFileFor, sha256Hex } from '../../shared/bundle-verify.ts';
import { loadPrivateKey, manifestText, signManifest } from '../../shared/bundle-sign.ts';
import { PREPROCESS_WASM_FILE } from '../../shared/manifest.ts';
import { featuresHubLacks } from '../../shared/features.ts';

// Moved to shared/ (the aggregator's rollout re-signs bundles too); re-exported for the trainer's callers.
export { loadPrivateKey, manifestText, signManifest };

export interface BuildBundleArgs {
  outDir: string;
  /** Bundle file name → bytes, or the path of a file to copy. */
  files: Record<string, Uint8Array | string>;
  manifest: Omit<BundleManifest, 'files'>;
  /** PEM (PKCS#8) text of an Ed25519 private key. */
  privateKeyPem: string | Uint8Array;
  /** Allow a bundle without the model or wasm file (tests of verification only). Default false. */
  allowIncomplete?: boolean;
  /**
   * Refuse features the hub's flow meter cannot compute (default true). false builds a cloud-only evaluation
   * bundle instead, marked `notForHubs` in its signed manifest.
   */
  hubCheck?: boolean;
}

/** The manifest with its hub verdict: refused (BAD_BUNDLE naming the features) or marked not for hubs. */
export function checkHubFeatures(manifest: Omit<BundleManifest, 'files'>, hubCheck = true): Omit<BundleManifest, 'files'> {
  const { notForHubs: _old, ...rest } = manifest;
  const missing = featuresHubLacks(manifest.preprocessing.features);
  if (missing.length === 0) return rest;
  if (hubCheck) {
    throw new IdsError(
      'BAD_BUNDLE',
      `the hub's flow meter cannot compute ${missing.length} of the model's features: ${missing.join(', ')}. ` +
        'Train on flow-meter columns (IoTID20/CICFlowMeter names), or build a cloud-only evaluation bundle with --no-hub-check',
    );
  }
  return { ...rest, notForHubs: { reason: 'built with --no-hub-check: features the hub\'s flow meter cannot compute; for cloud evaluation only', missingFeatures: missing } };
}

const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Every bundle we sign carries a release number (hubs refuse downlinks that are not newer): the caller's, else
 * createdAt in whole seconds, which keeps bundles built one after the other in order.
 */
function withRelease(model: BundleManifest['model']): BundleManifest['model'] {
  if (model.release !== undefined) {
    if (!Number.isSafeInteger(model.release) || model.release < 0) {
      throw new IdsError('BAD_OPTION', `bundle release must be a non-negative integer, got ${model.release}`);
    }
    return model;
  }
  const release = releaseFromCreatedAt(model.createdAt);
  if (!Number.isSafeInteger(release) || release < 0) {
    throw new IdsError('BAD_OPTION', `bundle createdAt "${model.createdAt}" is not a date; give a release number`);
  }
  // Placed after createdAt so the manifest reads in a natural order.
  const { opset, precision, inputName, outputName, inputShape, ...head } = model;
  return { ...head, release, opset, precision, inputName, outputName, inputShape };
}

/** Builds the bundle in `outDir` and returns its absolute path. */
export async function buildBundle(args: BuildBundleArgs): Promise<string> {
  const key = loadPrivateKey(args.privateKeyPem);
  const outDir = resolve(args.outDir);
  const contents: Record<string, Uint8Array> = {};
  for (const [name, src] of Object.entries(args.files)) {
    if (!FILE_NAME_RE.test(name) || name === MANIFEST_FILE || name === SIGNATURE_FILE) {
      throw new IdsError('BAD_OPTION', `bundle file name ${JSON.stringify(name)} must be a plain file name`);
    }
    if (typeof src === 'string') {
      try {
        contents[name] = new Uint8Array(readFileSync(src));
      } catch (e) {
        throw new IdsError('BAD_OPTION', `bundle file ${name}: cannot read ${src} (${(e as Error).message})`, { cause: e });
      }
    } else contents[name] = src;
  }
  if (!args.allowIncomplete) {
    for (const r of [modelFileFor(args.manifest), PREPROCESS_WASM_FILE]) {
      if (!(r in contents)) throw new IdsError('BAD_OPTION', `bundle needs a ${r} file`);
    }
  }

  // Before anything is written: a refused bundle leaves no folder behind.
  const checked = checkHubFeatures(args.manifest, args.hubCheck);
  mkdirSync(outDir, { recursive: true });
  // A stale signature from an earlier build must not survive a failed rebuild.
  rmSync(join(outDir, SIGNATURE_FILE), { force: true });
  const files: BundleManifest['files'] = {};
  for (const name of Object.keys(contents).sort()) {
    const bytes = contents[name];
    writeFileSync(join(outDir, name), bytes);
    files[name] = { sha256: sha256Hex(bytes), bytes: bytes.byteLength };
  }
  const manifest = { ...checked, model: withRelease(checked.model), files } as BundleManifest;
  const text = Buffer.from(manifestText(manifest), 'utf8');
  writeFileSync(join(outDir, MANIFEST_FILE), text);
  writeFileSync(join(outDir, SIGNATURE_FILE), signManifest(new Uint8Array(text), key));
  return outDir;
}
