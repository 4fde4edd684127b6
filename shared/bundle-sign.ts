/**
 * Bundle signing, shared by the trainer (`bundle build`) and the aggregator's rollout (which re-releases a previous
 * bundle under a higher release number when it rolls a canary back). The signature is Ed25519 over the exact bytes
 * of manifest.json, written as base64 on one line (shared/bundle-verify.ts reads it back).
 */
import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { IdsError } from './errors.ts';
import { encodeSignature } from './bundle-verify.ts';
import type { BundleManifest } from './manifest.ts';

export function loadPrivateKey(pem: string | Uint8Array): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(typeof pem === 'string' ? pem : Buffer.from(pem));
  } catch (e) {
    throw new IdsError('BAD_OPTION', `private key: not a PEM private key (${(e as Error).message})`, { cause: e });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new IdsError('BAD_OPTION', `private key: expected an Ed25519 key, got ${key.asymmetricKeyType}`);
  }
  return key;
}

/** The public half of a private key, as SPKI PEM (to check that a signing key matches the hubs' key). */
export const publicPemOf = (key: KeyObject): string => createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();

/** Canonical manifest text: 2-space JSON with a final newline (what is signed is exactly what is written). */
export const manifestText = (m: BundleManifest): string => JSON.stringify(m, null, 2) + '\n';

export function signManifest(bytes: Uint8Array, key: KeyObject): string {
  return encodeSignature(new Uint8Array(sign(null, bytes, key)));
}
