import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportAndBundle } from '../../trainer/export/index.ts';
import { argmaxRows } from '../../trainer/export/runtimes.ts';
import { verifyBundle } from '../../shared/bundle-verify.ts';
import { isIdsError } from '../../shared/errors.ts';
import { FP32_MODEL_FILE, MODEL_FILE, PREPROCESS_WASM_FILE } from '../../shared/manifest.ts';
import type { ScalerSpec } from '../../shared/scaler.ts';
import { STAT_FEATURES } from '../../shared/features.ts';
import { keyPair } from '../bundle/fixture.ts';
import { randomCnnLstm, randomRows, tfPredict } from './export-fixture.ts';

const F = 24;
const labels = ['Normal', 'DoS', 'Scan'];
// Feature 0 is a port read through a lookup table: the bundle's manifest must carry the table to the hub.
const portTable = { keys: [23, 80, 49784], values: [0.01, 0.4, 0.97], fallback: 0.2 };
const scaler: ScalerSpec = {
  // Flow-meter columns (a bundle build refuses features a hub cannot compute).
  features: ['Dst_Port', ...STAT_FEATURES.slice(0, F - 1)],
  transforms: Array.from({ length: F }, (_, i) => (i === 0 ? 'lookup' : 'none')),
  lookups: Array.from({ length: F }, (_, i) => (i === 0 ? portTable : null)),
  min: new Array(F).fill(0),
  max: new Array(F).fill(1),
};

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-export-'));
  const wasmPath = join(dir, 'fake.wasm');
  writeFileSync(wasmPath, new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  const model = randomCnnLstm(F, labels.length, 21);
  const calibration = randomRows(600, F, 1);
  const X = randomRows(400, F, 2);
  // Labels = the fp32 model's own argmax: fp32 accuracy is 100% and int8's measures pure quantization loss.
  const y = argmaxRows(tfPredict(model, X, 400), labels.length);
  return { dir, wasmPath, model, calibration, test: { X, y, rows: 400 } };
}

test('exportAndBundle writes fp32 ONNX, a verified int8 bundle and export.md with the comparison', async () => {
  const s = setup();
  const keys = keyPair();
  const logs: string[] = [];
  const r = await exportAndBundle({
    model: s.model,
    scaler,
    portPolicy: 'dst',
    labels,
    calibration: s.calibration,
    test: s.test,
    training: { data: ['synthetic'], rows: { train: 600, test: 400 }, classCounts: {}, recipe: 'test', seed: 1 },
    outDir: join(s.dir, 'out'),
    privateKeyPem: keys.privateKeyPem,
    wasmPath: s.wasmPath,
    skipSpeed: true,
    log: (l) => logs.push(l),
  });
  assert.ok(existsSync(join(s.dir, 'out', FP32_MODEL_FILE)));
  assert.equal(r.bundleDir, join(s.dir, 'out', 'bundle'));
  const v = await verifyBundle(r.bundleDir, { publicKeyPem: keys.publicKeyPem });
  assert.deepEqual(Object.keys(v.files).sort(), [MODEL_FILE, PREPROCESS_WASM_FILE]);
  assert.equal(v.manifest.model.precision, 'int8');
  assert.deepEqual(v.manifest.model.inputShape, [-1, F, 1]);
  assert.deepEqual(v.manifest.labels, labels);
  assert.deepEqual(v.manifest.preprocessing.lookups, scaler.lookups);
  assert.deepEqual(v.manifest.thresholds, { Normal: 0.5, DoS: 0.5, Scan: 0.5 });
  assert.match(v.manifest.model.version, /^\d{4}-\d\d-\d\d\.1-[0-9a-f]{8}$/);
  assert.equal(v.manifest.preprocessing.portPolicy, 'dst');
  assert.equal(v.manifest.metrics.accuracy, r.comparison.int8.accuracy);

  const c = r.comparison;
  assert.equal(c.fp32.accuracy, 1);
  assert.ok(c.parity.ortNodeMaxAbsDiff < 1e-4 && c.parity.ortWebMaxAbsDiff < 1e-4);
  assert.ok(c.checks.sizeRatio <= 0.5, `int8 is ${c.checks.sizeRatio} of fp32`);
  assert.ok(c.int8.agreementWithFp32 > 0.85, `int8 agrees with fp32 on ${c.int8.agreementWithFp32}`);
  assert.equal(c.candidates.length, 2);
  assert.ok((c.optimizedOps['com.microsoft:QLinearConv'] ?? 0) >= 3, `no QLinearConv fusion: ${JSON.stringify(c.optimizedOps)}`);
  const md = readFileSync(r.reportPath, 'utf8');
  assert.match(md, /\| accuracy \| 100\.00% \|/);
  assert.match(md, /recall Scan/);
  assert.match(md, /QLinearConv: yes/);
});

test('exportAndBundle refuses a model/scaler mismatch and a missing wasm with clear errors', async () => {
  const s = setup();
  const base = {
    model: s.model,
    portPolicy: 'dst' as const,
    labels,
    calibration: s.calibration,
    test: s.test,
    training: { data: [], rows: { train: 0, test: 0 }, classCounts: {}, recipe: '', seed: 0 },
    outDir: join(s.dir, 'bad'),
    privateKeyPem: keyPair().privateKeyPem,
    skipSpeed: true,
    log: () => undefined,
  };
  await assert.rejects(
    exportAndBundle({ ...base, scaler, wasmPath: join(s.dir, 'nope.wasm') }),
    (e: unknown) => isIdsError(e, 'BAD_OPTION') && /preprocessing wasm not found.*build:asm/.test((e as Error).message),
  );
  await assert.rejects(
    exportAndBundle({ ...base, scaler, labels: ['a', 'b'], wasmPath: s.wasmPath }),
    (e: unknown) => isIdsError(e, 'BAD_MODEL') && /3 outputs for 2 labels/.test((e as Error).message),
  );
});
