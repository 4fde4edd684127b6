/** A small, valid bundle for verification tests (fake model bytes: verification never parses them). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { buildBundle } from '../../trainer/bundle/build.ts';
import { MODEL_FILE, PREPROCESS_WASM_FILE, type BundleManifest } from '../../shared/manifest.ts';

export function sampleManifest(over: Partial<Omit<BundleManifest, 'files'>> = {}): Omit<BundleManifest, 'files'> {
  return {
    schemaVersion: 1,
    model: {
      name: 'cnn-lstm',
      version: '2026-11-30.1-test',
      createdAt: '2026-11-30T08:00:00.000Z',
      opset: 17,
      precision: 'int8',
      inputName: 'flow_features',
      outputName: 'probabilities',
      inputShape: [-1, 3, 1],
    },
    training: { data: ['synthetic'], rows: { train: 10, test: 5 }, classCounts: { Normal: 8, Anomaly: 7 }, recipe: 'test', seed: 1 },
    preprocessing: {
      features: ['Flow_Duration', 'Tot_Fwd_Pkts', 'Dst_Port'],
      transforms: ['log1p', 'log1p', 'none'],
      min: [0, 0, 0],
      max: [10, 5, 65535],
      portPolicy: 'dst',
    },
    labels: ['Normal', 'Anomaly'],
    thresholds: { Normal: 0.5, Anomaly: 0.5 },
    metrics: { accuracy: 0.9, macroF1: 0.88, perClass: {} },
    ...over,
  };
}

export function keyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export async function sampleBundle(
  over: Partial<Omit<BundleManifest, 'files'>> = {},
  keys = keyPair(),
): Promise<{ dir: string; privateKeyPem: string; publicKeyPem: string }> {
  const dir = join(mkdtempSync(join(tmpdir(), 'iot-ids-bundle-')), 'bundle');
  await buildBundle({
    outDir: dir,
    files: {
      [MODEL_FILE]: new Uint8Array([8, 8, 18, 4, 116, 101, 115, 116, 1, 2, 3]),
      [PREPROCESS_WASM_FILE]: new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]),
      'labels.txt': new TextEncoder().encode('Normal\nAnomaly\n'),
    },
    manifest: sampleManifest(over),
    privateKeyPem: keys.privateKeyPem,
  });
  return { dir, ...keys };
}
