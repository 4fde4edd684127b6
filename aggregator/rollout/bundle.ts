/**
 * Bundles as the rollout sends them: verified with the hubs' public key before anything is published, encoded in
 * the downlink's `files` form (edge/downlink.ts), and, for a rollback, re-released: the previous bundle's manifest
 * with a higher `model.release`, signed again, so that hubs install it under their ordinary rule (only a higher
 * release is installed, edge/hub.ts) instead of needing --allow-downgrade.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verify } from 'node:crypto';
import { IdsError } from '../../shared/errors.ts';
import { decodeSignature, loadPublicKey, verifyBundle } from '../../shared/bundle-verify.ts';
import { manifestText, publicPemOf, signManifest, loadPrivateKey } from '../../shared/bundle-sign.ts';
import { MANIFEST_FILE, SIGNATURE_FILE, bundleRelease, type BundleManifest } from '../../shared/manifest.ts';
import { keyFingerprint } from '../../shared/bundle-verify.ts';

export interface RolloutBundle {
  dir: string;
  version: string;
  release: number;
  manifest: BundleManifest;
  /** Every file of the bundle, manifest.json and manifest.sig included: what the downlink carries. */
  files: Record<string, Uint8Array>;
}

/** Verifies the bundle in `dir` with the hubs' public key and reads every file the downlink must carry. */
export async function loadBundle(dir: string, publicKeyPem: string, what: string): Promise<RolloutBundle> {
  let v: Awaited<ReturnType<typeof verifyBundle>>;
  try {
    v = await verifyBundle(dir, { publicKeyPem });
  } catch (e) {
    throw new IdsError('BAD_BUNDLE', `${what}: ${(e as Error).message}`, { cause: e });
  }
  const files: Record<string, Uint8Array> = { ...v.files };
  for (const f of [MANIFEST_FILE, SIGNATURE_FILE]) files[f] = new Uint8Array(readFileSync(join(dir, f)));
  return { dir, version: v.manifest.model.version, release: bundleRelease(v.manifest), manifest: v.manifest, files };
}

/** The downlink payload, `{"files": {name: base64}}`. */
export function downlinkPayload(b: Pick<RolloutBundle, 'files'>): string {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(b.files)) out[k] = Buffer.from(v).toString('base64');
  return JSON.stringify({ files: out });
}

/**
 * Checks, before a rollout starts, that the signing key is the private half of the hubs' key: a re-released
 * bundle signed with another key would be refused by every canary at the worst moment, during a rollback.
 */
export function checkSigningKey(privateKeyPem: string, publicKeyPem: string): void {
  const pub = publicPemOf(loadPrivateKey(privateKeyPem));
  if (keyFingerprint(pub) !== keyFingerprint(publicKeyPem)) {
    throw new IdsError('BAD_OPTION', '--sign-key is not the private half of --key: hubs would refuse the re-released bundle');
  }
}

/**
 * The same bundle (same files, same version string) with `release` in its manifest, signed with the operator's
 * key, and checked against the hubs' key. The version string is kept: alerts from a rolled-back hub name the
 * model they really run.
 */
export function rerelease(b: RolloutBundle, release: number, privateKeyPem: string, publicKeyPem: string): RolloutBundle {
  if (!Number.isSafeInteger(release) || release <= b.release) {
    throw new IdsError('BAD_OPTION', `re-release of ${b.version}: release ${release} must be above its own ${b.release}`);
  }
  const manifest: BundleManifest = { ...b.manifest, model: { ...b.manifest.model, release } };
  const text = new Uint8Array(Buffer.from(manifestText(manifest), 'utf8'));
  const sig = signManifest(text, loadPrivateKey(privateKeyPem));
  const raw = decodeSignature(new TextEncoder().encode(sig));
  if (!raw || !verify(null, text, loadPublicKey(publicKeyPem), raw)) {
    throw new IdsError('BAD_OPTION', 're-released manifest does not verify with --key: the signing key is not the hubs\' key');
  }
  return {
    dir: b.dir, version: b.version, release, manifest,
    files: { ...b.files, [MANIFEST_FILE]: text, [SIGNATURE_FILE]: new TextEncoder().encode(sig) },
  };
}

/**
 * The release a rollback goes out under: just above both bundles, so every canary, whichever it runs, installs it,
 * and any bundle built after the one rolled back (its release is its build time in seconds by default) still
 * outranks it. A bundle older than the one rolled back is then refused by the rolled-back canaries, as it should be.
 */
export const rollbackRelease = (next: RolloutBundle, previous: RolloutBundle): number =>
  Math.max(next.release, previous.release) + 1;
