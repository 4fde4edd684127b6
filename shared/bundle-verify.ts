/**
 * Bundle verification, shared by the trainer (`iot-ids bundle verify`) and the hub (before it loads a model).
 * Order matters: the signature is checked over the exact bytes of manifest.json before anything in it is trusted,
 * then the schema version, then every listed file against its pinned size and sha256.
 *
 * The public key is always passed in by the caller (an operator's key file, or the CLI's demo key which it
 * names when it uses it): this module never reads a key from the project tree, so a hub cannot silently trust
 * the development key.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { IdsError } from './errors.ts';
import { validateScalerSpec } from './scaler.ts';
import {
  BUNDLE_SCHEMA_VERSION,
  FP32_MODEL_FILE,
  MANIFEST_FILE,
  MODEL_FILE,
  PREPROCESS_WASM_FILE,
  SIGNATURE_FILE,
  type BundleManifest,
} from './manifest.ts';

/** Schema versions this code can read. */
export const SUPPORTED_SCHEMA_VERSIONS: readonly number[] = [BUNDLE_SCHEMA_VERSION];

/** Nothing legitimate comes near these; they stop a hostile bundle from exhausting a hub's memory. */
const MAX_MANIFEST_BYTES = 1 << 20;
const MAX_FILE_BYTES = 256 << 20;
const MAX_TOTAL_BYTES = 512 << 20;
const MAX_FILES = 64;

/** A file name inside a bundle: one plain path segment, so a manifest cannot point outside its folder. */
const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface VerifyOptions {
  /** PEM (SPKI) text of the Ed25519 public key the bundle must be signed with. Required. */
  publicKeyPem?: string | Uint8Array;
}

export interface VerifiedBundle {
  manifest: BundleManifest;
  /** Every file the manifest lists, by name, with bytes that matched their sha256. */
  files: Record<string, Uint8Array>;
}

const bad = (dir: string, reason: string): IdsError => new IdsError('BAD_BUNDLE', `bundle ${dir}: ${reason}`);

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The model file a manifest's precision calls for. */
export const modelFileFor = (m: Pick<BundleManifest, 'model'>): string =>
  m.model.precision === 'fp32' ? FP32_MODEL_FILE : MODEL_FILE;

/**
 * The signature file holds the 64-byte Ed25519 signature in base64 on one line (a text file survives
 * e-mail and copy-paste). Only the canonical encoding with an optional final newline is accepted, so that
 * changing any byte of the file fails verification (base64 has spare bits and lenient decoders ignore them).
 */
export function decodeSignature(text: Uint8Array): Uint8Array | undefined {
  let s = Buffer.from(text).toString('latin1');
  if (s.endsWith('\n')) s = s.slice(0, -1);
  if (!/^[A-Za-z0-9+/]{86}==$/.test(s)) return undefined;
  const sig = Buffer.from(s, 'base64');
  if (sig.length !== 64 || sig.toString('base64') !== s) return undefined;
  return new Uint8Array(sig);
}

export function encodeSignature(sig: Uint8Array): string {
  return Buffer.from(sig).toString('base64') + '\n';
}

export function loadPublicKey(pem: string | Uint8Array): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(typeof pem === 'string' ? pem : Buffer.from(pem));
  } catch (e) {
    throw new IdsError('BAD_OPTION', `public key: not a PEM public key (${(e as Error).message})`, { cause: e });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new IdsError('BAD_OPTION', `public key: expected an Ed25519 key, got ${key.asymmetricKeyType}`);
  }
  return key;
}

/**
 * The key's fingerprint: sha256 of the raw 32-byte Ed25519 public key, hex. Printed in a hub's status so an
 * operator can see which signer a hub trusts without reading its files.
 */
export function keyFingerprint(pem: string | Uint8Array): string {
  const raw = Buffer.from(loadPublicKey(pem).export({ format: 'jwk' }).x as string, 'base64url');
  return createHash('sha256').update(raw).digest('hex');
}

/** Fingerprint of the committed demo key (models/dev-key/public.pem): its private half is public, so a hub
 * trusting it is treated as a demo hub even when the key arrives through --key. */
export const DEMO_KEY_FINGERPRINT = 'b564cab0d5c8dad730bfd6ed6169608189c1d4e87c36b27d9d85f7f13b4f31df';

function readLimited(dir: string, name: string, limit: number): Uint8Array {
  const path = join(dir, name);
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw bad(dir, `${name} is not a regular file`);
    size = st.size;
  } catch (e) {
    if (e instanceof IdsError) throw e;
    throw bad(dir, `missing file ${name}`);
  }
  if (size > limit) throw bad(dir, `${name} is ${size} bytes, over the ${limit}-byte limit`);
  return new Uint8Array(readFileSync(path));
}

/** Structural checks on the parts of the manifest a hub relies on; names the first field at fault. */
function checkManifestShape(dir: string, m: BundleManifest): void {
  const need = (ok: unknown, field: string, what: string): void => {
    if (!ok) throw bad(dir, `manifest.json: ${field} ${what}`);
  };
  need(m.model && typeof m.model === 'object', 'model', 'is missing');
  need(typeof m.model.name === 'string' && m.model.name, 'model.name', 'must be a non-empty string');
  need(typeof m.model.version === 'string' && m.model.version, 'model.version', 'must be a non-empty string');
  need(
    m.model.release === undefined || (Number.isSafeInteger(m.model.release) && m.model.release >= 0),
    'model.release',
    'must be a non-negative integer when present',
  );
  need(m.model.precision === 'int8' || m.model.precision === 'fp32', 'model.precision', 'must be int8 or fp32');
  need(typeof m.model.inputName === 'string' && m.model.inputName, 'model.inputName', 'must be a non-empty string');
  need(typeof m.model.outputName === 'string' && m.model.outputName, 'model.outputName', 'must be a non-empty string');
  need(
    Array.isArray(m.model.inputShape) && m.model.inputShape.length === 3 && m.model.inputShape.every(Number.isInteger),
    'model.inputShape',
    'must be three integers [batch, features, 1]',
  );
  need(Array.isArray(m.labels) && m.labels.length >= 2, 'labels', 'must list at least 2 classes');
  need(m.labels.every((l) => typeof l === 'string' && l), 'labels', 'must be non-empty strings');
  need(new Set(m.labels).size === m.labels.length, 'labels', 'must not repeat');
  need(m.thresholds && typeof m.thresholds === 'object', 'thresholds', 'is missing');
  for (const l of m.labels) {
    const t = m.thresholds[l];
    need(typeof t === 'number' && t >= 0 && t <= 1, `thresholds["${l}"]`, 'must be a number in [0, 1]');
  }
  const p = m.preprocessing;
  need(p && Array.isArray(p.features) && p.features.length > 0, 'preprocessing.features', 'must be a non-empty array');
  const n = p.features.length;
  for (const k of ['transforms', 'min', 'max'] as const) {
    need(Array.isArray(p[k]) && p[k].length === n, `preprocessing.${k}`, `must have ${n} entries`);
  }
  try {
    validateScalerSpec(p);
  } catch (e) {
    need(false, 'preprocessing', (e as Error).message.replace(/^scaler: /, ''));
  }
  need(m.model.inputShape[1] === n, 'model.inputShape[1]', `must equal the ${n} preprocessing features`);
  need(['none', 'dst', 'both'].includes(p.portPolicy), 'preprocessing.portPolicy', 'must be none, dst or both');
  need(m.files && typeof m.files === 'object', 'files', 'is missing');
}

/**
 * Verifies the bundle in `dir` and returns its manifest and files. Throws IdsError('BAD_BUNDLE', reason) for a
 * missing or bad signature, a wrong key, an unsupported schema version, a missing, extra-listed or altered file;
 * IdsError('BAD_OPTION') when no usable public key is given.
 */
export async function verifyBundle(dir: string, opts: VerifyOptions = {}): Promise<VerifiedBundle> {
  if (opts.publicKeyPem === undefined) {
    throw new IdsError('BAD_OPTION', 'verifyBundle: a public key (publicKeyPem) is required to verify a bundle');
  }
  const key = loadPublicKey(opts.publicKeyPem);
  try {
    if (!statSync(dir).isDirectory()) throw bad(dir, 'not a directory');
  } catch (e) {
    if (e instanceof IdsError) throw e;
    throw bad(dir, 'directory not found');
  }

  const manifestBytes = readLimited(dir, MANIFEST_FILE, MAX_MANIFEST_BYTES);
  let sigBytes: Uint8Array;
  try {
    sigBytes = readLimited(dir, SIGNATURE_FILE, 1024);
  } catch (e) {
    throw bad(dir, `unsigned: ${SIGNATURE_FILE} is missing or unreadable`);
  }
  const sig = decodeSignature(sigBytes);
  if (!sig) throw bad(dir, `${SIGNATURE_FILE} is not a base64 Ed25519 signature (64 bytes)`);
  if (!verify(null, manifestBytes, key, sig)) {
    throw bad(dir, `signature check failed: ${MANIFEST_FILE} was altered or signed with another key`);
  }

  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(Buffer.from(manifestBytes).toString('utf8')) as BundleManifest;
  } catch (e) {
    throw bad(dir, `${MANIFEST_FILE} is not JSON: ${(e as Error).message}`);
  }
  if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest)) throw bad(dir, `${MANIFEST_FILE} is not an object`);
  if (!SUPPORTED_SCHEMA_VERSIONS.includes(manifest.schemaVersion)) {
    throw bad(
      dir,
      `unsupported schemaVersion ${JSON.stringify(manifest.schemaVersion)} (this build reads ${SUPPORTED_SCHEMA_VERSIONS.join(', ')})`,
    );
  }
  checkManifestShape(dir, manifest);

  const required = [modelFileFor(manifest), PREPROCESS_WASM_FILE];
  for (const r of required) if (!(r in manifest.files)) throw bad(dir, `manifest lists no ${r}`);

  const entries = Object.entries(manifest.files);
  if (entries.length > MAX_FILES) throw bad(dir, `manifest lists ${entries.length} files (limit ${MAX_FILES})`);
  const declared = entries.reduce((a, [, pin]) => a + (Number(pin?.bytes) || 0), 0);
  if (declared > MAX_TOTAL_BYTES) throw bad(dir, `manifest declares ${declared} bytes of files (limit ${MAX_TOTAL_BYTES})`);
  const files: Record<string, Uint8Array> = {};
  for (const [name, pin] of entries) {
    if (!FILE_NAME_RE.test(name) || name === MANIFEST_FILE || name === SIGNATURE_FILE) {
      throw bad(dir, `manifest lists an invalid file name ${JSON.stringify(name)}`);
    }
    if (!pin || typeof pin.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(pin.sha256) || !Number.isInteger(pin.bytes)) {
      throw bad(dir, `manifest entry for ${name} needs sha256 (64 hex) and bytes (integer)`);
    }
    const bytes = readLimited(dir, name, MAX_FILE_BYTES);
    if (bytes.byteLength !== pin.bytes) {
      throw bad(dir, `${name} is ${bytes.byteLength} bytes, manifest says ${pin.bytes} (truncated or replaced)`);
    }
    const got = sha256Hex(bytes);
    if (got !== pin.sha256) throw bad(dir, `${name} sha256 ${got} does not match the manifest's ${pin.sha256} (tampered)`);
    files[name] = bytes;
  }
  return { manifest, files };
}
