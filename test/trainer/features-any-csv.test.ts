/**
 * Any labelled CSV of numeric features (`--features all-numeric` or a list, `--label-column`): a fixture with
 * CICIoT2023-style column names trains, exports a cloud-only bundle and scores under `bundle eval`; `bundle build`
 * and the hub's loader refuse features the flow meter cannot compute, naming them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../shared/random.ts';
import { isIdsError } from '../../shared/errors.ts';
import { featuresHubLacks } from '../../shared/features.ts';
import { loadDataset } from '../../trainer/data/dataset.ts';
import { runTraining } from '../../trainer/train.ts';
import { evaluateBundle } from '../../trainer/bundle/evaluate.ts';
import { buildBundle } from '../../trainer/bundle/build.ts';
import { readDevPublicKey } from '../../trainer/bundle/dev-key.ts';
import { featuresOption } from '../../trainer/train-command.ts';
import { loadBundle } from '../../edge/bundle-loader.ts';
import { keyPair, sampleManifest } from '../bundle/fixture.ts';

const MAP = { BenignTraffic: 'Normal', 'DDoS-SYN_Flood': 'DoS', 'Recon-PortScan': 'Scan' };

/** CICIoT2023-like rows: its column names (flow_duration is also a CICFlowMeter name), a text column, the label last. */
function fixture(dir: string, rows = 900): string {
  const rng = new Rng(4);
  const lines = ['flow_duration,Header_Length,Protocol Type,Rate,syn_count,Tot sum,IAT,device,label'];
  const classes = Object.keys(MAP);
  for (let i = 0; i < rows; i++) {
    const k = i % 3;
    const n = () => rng.normal();
    const rate = [20, 5000, 800][k] * (1 + 0.2 * n());
    const syn = [0.1, 1, 0.6][k] + 0.05 * n();
    const hdr = [120, 54, 40][k] * (1 + 0.1 * n());
    lines.push([(10 + 5 * n()).toFixed(3), hdr.toFixed(1), [6, 6, 17][k], rate.toFixed(2), syn.toFixed(3), (300 + 50 * n()).toFixed(1),
      (0.01 * (1 + rng.next())).toFixed(5), `dev-${k}`, classes[k]].join(','));
  }
  const path = join(dir, 'ciciot-like.csv');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

test('--features: all-numeric takes every numeric column but the label; a list takes its columns in its order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'anycsv-'));
  const csv = fixture(dir, 60);
  const all = await loadDataset({ files: [csv], labelColumn: 'label', labelMap: MAP, features: 'all-numeric' });
  assert.deepEqual(all.features, ['Flow_Duration', 'Header_Length', 'Protocol Type', 'Rate', 'syn_count', 'Tot sum', 'IAT']);
  assert.ok(all.report.ignoredColumns.includes('device (not numeric)'), all.report.ignoredColumns.join('; '));
  assert.deepEqual(all.labels, ['Normal', 'DoS', 'Scan']);
  const listed = await loadDataset({ files: [csv], labelColumn: 'label', labelMap: MAP, features: ['Rate', 'flow duration'] });
  assert.deepEqual(listed.features, ['Rate', 'Flow_Duration']);
  await assert.rejects(loadDataset({ files: [csv], labelColumn: 'label', features: ['Rate', 'label'] }), (e) => isIdsError(e, 'BAD_OPTION') && /label column/.test((e as Error).message));
  await assert.rejects(loadDataset({ files: [csv], labelColumn: 'label', features: ['Rate', 'Magnitue'] }), (e) => isIdsError(e, 'BAD_HEADER') && /Magnitue/.test((e as Error).message));
  assert.equal(featuresOption('all-numeric'), 'all-numeric');
  assert.deepEqual(featuresOption(['a,b', 'c']), ['a', 'b', 'c']);
  assert.throws(() => featuresOption('all-numeric,a'), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.deepEqual(featuresHubLacks(all.features), ['Header_Length', 'Protocol Type', 'Rate', 'syn_count', 'Tot sum', 'IAT']);
});

test('bundle build refuses features the hub cannot compute, naming them; --no-hub-check marks the bundle not for hubs, and hubs refuse it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hubcheck-'));
  const { privateKeyPem, publicKeyPem } = keyPair();
  const manifest = sampleManifest();
  const files = { 'model.int8.onnx': new Uint8Array([1, 2, 3]), 'preprocess.wasm': new Uint8Array([0, 97, 115, 109]) };
  const odd = { ...manifest, preprocessing: { ...manifest.preprocessing, features: ['Flow_Duration', 'Rate', 'IAT'] } };
  await assert.rejects(
    buildBundle({ outDir: join(dir, 'refused'), files, manifest: odd, privateKeyPem }),
    (e) => isIdsError(e, 'BAD_BUNDLE') && /Rate, IAT/.test((e as Error).message) && /--no-hub-check/.test((e as Error).message),
  );
  assert.equal(existsSync(join(dir, 'refused')), false, 'a refused bundle leaves no folder');
  const cloud = await buildBundle({ outDir: join(dir, 'cloud'), files, manifest: odd, privateKeyPem, hubCheck: false });
  await assert.rejects(loadBundle(cloud, { publicKeyPem }), (e) => isIdsError(e, 'BAD_BUNDLE') && /cannot compute Rate, IAT/.test((e as Error).message) && /--no-hub-check/.test((e as Error).message));
  // A hub-compatible manifest builds as before, unmarked.
  await buildBundle({ outDir: join(dir, 'ok'), files, manifest, privateKeyPem });
});

test('all-numeric training on a non-CICFlowMeter CSV exports a cloud-only bundle that bundle eval scores', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'anytrain-'));
  const csv = fixture(dir);
  await assert.rejects(
    runTraining({ data: [csv], label: 'label', map: MAP, features: 'all-numeric', epochs: 1, baseline: false, export: true, out: join(dir, 'refused') }),
    (e) => isIdsError(e, 'BAD_OPTION') && /Header_Length/.test((e as Error).message),
  );
  const res = await runTraining({
    data: [csv], label: 'label', map: MAP, features: 'all-numeric', epochs: 4, baseline: false, export: true, hubCheck: false, out: join(dir, 'run'),
  });
  assert.ok(res.report!.accuracy > 0.9, `accuracy ${res.report!.accuracy}`);
  assert.deepEqual(res.report!.model.features.slice(0, 2), ['Flow_Duration', 'Header_Length']);
  const bundleDir = res.report!.export!.bundleDir;
  const { readFileSync } = await import('node:fs');
  const m = JSON.parse(readFileSync(join(bundleDir, 'manifest.json'), 'utf8'));
  assert.deepEqual(m.notForHubs.missingFeatures, ['Header_Length', 'Protocol Type', 'Rate', 'syn_count', 'Tot sum', 'IAT']);
  const e = await evaluateBundle({ bundleDir, publicKeyPem: readDevPublicKey(), data: [csv], labelColumn: 'label', labelMap: MAP, runtime: 'ort-node' });
  console.log(`all-numeric (${res.report!.model.features.length} features): test accuracy ${res.report!.accuracy.toFixed(4)}; bundle eval on all rows ${e.metrics.accuracy.toFixed(4)}`);
  assert.ok(e.metrics.accuracy > 0.9, `bundle eval accuracy ${e.metrics.accuracy}`);
});
