import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyBundle, SUPPORTED_SCHEMA_VERSIONS } from '../../shared/bundle-verify.ts';
import { isIdsError } from '../../shared/errors.ts';
import { MANIFEST_FILE, MODEL_FILE, PREPROCESS_WASM_FILE, SIGNATURE_FILE } from '../../shared/manifest.ts';
import { buildBundle } from '../../trainer/bundle/build.ts';
import { keyPair, sampleBundle, sampleManifest } from './fixture.ts';

const rejects = async (p: Promise<unknown>, re: RegExp, code: 'BAD_BUNDLE' | 'BAD_OPTION' = 'BAD_BUNDLE') =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(isIdsError(e, code), `expected IdsError ${code}, got ${String(e)}`);
    assert.match((e as Error).message, re);
    return true;
  });

test('an intact bundle verifies and returns its manifest and files', async () => {
  const b = await sampleBundle();
  const v = await verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem });
  assert.equal(v.manifest.schemaVersion, 1);
  assert.deepEqual(Object.keys(v.files).sort(), ['labels.txt', MODEL_FILE, PREPROCESS_WASM_FILE].sort());
  assert.deepEqual([...v.files[PREPROCESS_WASM_FILE]], [0, 97, 115, 109, 1, 0, 0, 0]);
  assert.equal(v.manifest.files[MODEL_FILE].bytes, 11);
});

test('changing any single byte of any file (manifest and signature included) fails verification', async () => {
  const b = await sampleBundle();
  const names = readdirSync(b.dir).sort();
  assert.deepEqual(names, ['labels.txt', MANIFEST_FILE, SIGNATURE_FILE, MODEL_FILE, PREPROCESS_WASM_FILE].sort());
  let checked = 0;
  for (const name of names) {
    const path = join(b.dir, name);
    const orig = readFileSync(path);
    for (let i = 0; i < orig.length; i++) {
      const bad = Buffer.from(orig);
      bad[i] ^= 0x01;
      writeFileSync(path, bad);
      await rejects(verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem }), /bundle .*: /);
      checked++;
    }
    writeFileSync(path, orig);
  }
  assert.equal(checked, names.reduce((a, n) => a + readFileSync(join(b.dir, n)).length, 0));
  await verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem });
});

test('tampered file is named; appended bytes are caught by size', async () => {
  const b = await sampleBundle();
  const p = join(b.dir, MODEL_FILE);
  const orig = readFileSync(p);
  const bad = Buffer.from(orig);
  bad[3] ^= 0xff;
  writeFileSync(p, bad);
  await rejects(verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem }), /model\.int8\.onnx sha256 .*\(tampered\)/);
  writeFileSync(p, Buffer.concat([orig, Buffer.from([0])]));
  await rejects(verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem }), /model\.int8\.onnx is 12 bytes, manifest says 11/);
});

test('a wrong key is refused', async () => {
  const b = await sampleBundle();
  await rejects(verifyBundle(b.dir, { publicKeyPem: keyPair().publicKeyPem }), /signature check failed/);
});

test('a missing file, a missing signature, a missing manifest are refused', async () => {
  let b = await sampleBundle();
  rmSync(join(b.dir, PREPROCESS_WASM_FILE));
  await rejects(verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem }), /missing file preprocess\.wasm/);
  b = await sampleBundle();
  rmSync(join(b.dir, SIGNATURE_FILE));
  await rejects(verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem }), /unsigned/);
  b = await sampleBundle();
  rmSync(join(b.dir, MANIFEST_FILE));
  await rejects(verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem }), /missing file manifest\.json/);
  await rejects(verifyBundle(join(b.dir, 'nope'), { publicKeyPem: b.publicKeyPem }), /directory not found/);
});

test('an unsupported schema version is refused even when correctly signed', async () => {
  assert.ok(!SUPPORTED_SCHEMA_VERSIONS.includes(2));
  const b = await sampleBundle({ schemaVersion: 2 as 1 });
  await rejects(verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem }), /unsupported schemaVersion 2/);
});

test('a signed manifest that lists no model, or a path outside the bundle, is refused', async () => {
  const keys = keyPair();
  const dir = join((await sampleBundle()).dir, '..', 'nomodel');
  await buildBundle({
    outDir: dir,
    files: { [PREPROCESS_WASM_FILE]: new Uint8Array([1]) },
    manifest: sampleManifest(),
    privateKeyPem: keys.privateKeyPem,
    allowIncomplete: true,
  });
  await rejects(verifyBundle(dir, { publicKeyPem: keys.publicKeyPem }), /lists no model\.int8\.onnx/);
  await rejects(
    buildBundle({ outDir: dir, files: { '../x': new Uint8Array(1) }, manifest: sampleManifest(), privateKeyPem: keys.privateKeyPem }),
    /plain file name/,
    'BAD_OPTION',
  );
});

test('a malformed manifest field is named', async () => {
  const b = await sampleBundle({ thresholds: { Normal: 0.5 } });
  await rejects(verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem }), /thresholds\["Anomaly"\]/);
});

test('no key or a non-Ed25519 key is a BAD_OPTION', async () => {
  const b = await sampleBundle();
  await rejects(verifyBundle(b.dir), /public key/, 'BAD_OPTION');
  await rejects(verifyBundle(b.dir, { publicKeyPem: 'not a key' }), /not a PEM public key/, 'BAD_OPTION');
});

test('a signed manifest whose scaler lookup table is malformed is refused, naming preprocessing', async () => {
  const good = sampleManifest().preprocessing;
  const n = good.features.length;
  const lookups = Array.from({ length: n }, (_, j) => (j === 0 ? { keys: [443, 80], values: [0.5, 0.9], fallback: 0.2 } : null));
  const transforms = good.transforms.map((t, j) => (j === 0 ? ('lookup' as const) : t));
  const b = await sampleBundle({ preprocessing: { ...good, transforms, lookups } });
  await rejects(verifyBundle(b.dir, { publicKeyPem: b.publicKeyPem }), /preprocessing.*strictly ascending/);
  // The same table with its keys in order verifies.
  const ok = await sampleBundle({ preprocessing: { ...good, transforms, lookups: lookups.map((t) => (t ? { ...t, keys: [80, 443] } : t)) } });
  assert.equal((await verifyBundle(ok.dir, { publicKeyPem: ok.publicKeyPem })).manifest.preprocessing.lookups![0]!.keys[1], 443);
});
