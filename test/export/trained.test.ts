/**
 * The export pipeline on a model trained briefly on real data (the IoTID20 1% sample, binary): parity of the
 * fp32 ONNX with tfjs on both runtimes, and the int8 model against fp32 on the same test split.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedData } from '../helpers/shared-data.ts';
import { initBackend } from '../../trainer/backend/index.ts';
import { loadDataset } from '../../trainer/data/dataset.ts';
import { stratifiedSplit } from '../../trainer/data/split.ts';
import { applyScaler, fitScaler } from '../../trainer/data/scaler-fit.ts';
import { trainModel } from '../../trainer/train-loop.ts';
import { buildCnnLstm } from '../../trainer/model/cnn-lstm.ts';
import { exportAndBundle } from '../../trainer/export/index.ts';
import { BINARY_ANOMALY } from '../../shared/labels.ts';
import { keyPair } from '../bundle/fixture.ts';

test('trained on real IoTID20 rows: ONNX parity 1e-4 on both runtimes; int8 within 0.5 pt accuracy of fp32', async (t) => {
  const csv = sharedData(t, 'iotid20', 'sample-1pct-binary.csv');
  if (!csv) return;
  await initBackend('auto');
  const ds = await loadDataset({ files: [csv], labelColumn: 'Label', labelMap: BINARY_ANOMALY, ports: 'dst' });
  const C = ds.labels.length;
  const F = ds.features.length;
  const split = stratifiedSplit(ds.y, C, 0.3, 7);
  const scaler = fitScaler(ds, split.train, { log: 'auto' });
  const Xtr = applyScaler(scaler, ds, split.train);
  const ytr = Int32Array.from(split.train, (r) => ds.y[r]);
  const model = buildCnnLstm({ features: F, classes: C, seed: 7 });
  await trainModel(model, { X: Xtr, y: ytr, rows: split.train.length, features: F, classes: C }, null, {
    epochs: 3, batchSize: 32, learningRate: 3e-3, seed: 7, classWeights: new Float32Array([4, 1]), progress: false,
  });
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-trained-'));
  const wasmPath = join(dir, 'fake.wasm');
  writeFileSync(wasmPath, new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  const r = await exportAndBundle({
    model,
    scaler,
    portPolicy: 'dst',
    labels: ds.labels,
    calibration: Xtr,
    test: { X: applyScaler(scaler, ds, split.test), y: Int32Array.from(split.test, (i) => ds.y[i]), rows: split.test.length },
    training: { data: [csv], rows: { train: split.train.length, test: split.test.length }, classCounts: ds.report.classCounts, recipe: 'test', seed: 7 },
    outDir: join(dir, 'out'),
    privateKeyPem: keyPair().privateKeyPem,
    wasmPath,
    skipSpeed: true,
    log: () => undefined,
  });
  const c = r.comparison;
  t.diagnostic(`fp32 acc ${c.fp32.accuracy.toFixed(4)} int8 acc ${c.int8.accuracy.toFixed(4)} agreement ${c.int8.agreementWithFp32.toFixed(4)} ` +
    `parity ${c.parity.ortNodeMaxAbsDiff.toExponential(1)}/${c.parity.ortWebMaxAbsDiff.toExponential(1)} size ${c.checks.sizeRatio.toFixed(3)} ` +
    `recall drop ${c.checks.maxRecallDropPts.toFixed(2)} (${c.checks.maxRecallDropClass}) via ${c.chosenCalibration}`);
  assert.ok(c.parity.ortNodeMaxAbsDiff <= 1e-4 && c.parity.ortWebMaxAbsDiff <= 1e-4);
  // Finding most rows of both classes (answering Anomaly always would give Normal recall 0): the model learned.
  const rec = c.fp32.perClassRecall;
  assert.ok(rec.Normal > 0.5 && rec.Anomaly > 0.8, `fp32 recall ${JSON.stringify(rec)}: the model did not learn`);
  assert.ok(c.checks.maxRecallDropPts <= 1, `int8 recall drop ${c.checks.maxRecallDropPts} points (${c.checks.maxRecallDropClass})`);
  assert.ok(c.checks.accuracyDropPts <= 0.5, `int8 accuracy drop ${c.checks.accuracyDropPts} points`);
  assert.ok(c.checks.sizeRatio <= 0.5);
  assert.ok(c.int8.agreementWithFp32 >= 0.99, `int8 agrees with fp32 on ${c.int8.agreementWithFp32}`);
});
