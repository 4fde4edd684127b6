// The loader on the real shared data (skips with a message when ../shared/data is absent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDataset } from '../../trainer/data/dataset.ts';
import { stratifiedSplit } from '../../trainer/data/split.ts';
import { fitScaler, applyScaler } from '../../trainer/data/scaler-fit.ts';
import { BINARY_ANOMALY, CICIDS2017_GROUPS } from '../../shared/labels.ts';
import { STAT_FEATURES } from '../../shared/features.ts';
import { sharedData } from '../helpers/shared-data.ts';

test('IoTID20 first 24 rows: 86-column format, Cat counts Mirai 17 / DoS 3 / Scan 3 / Normal 1', async (t) => {
  const p = sharedData(t, 'iotid20', 'first24-labeled.csv');
  if (!p) return;
  const ds = await loadDataset({ files: [p] });
  assert.equal(ds.rows, 24);
  assert.deepEqual(ds.report.classCounts, { Normal: 1, DoS: 3, Mirai: 17, Scan: 3 });
  assert.deepEqual(ds.labels, ['Normal', 'DoS', 'Mirai', 'Scan']);
  for (const id of ['Flow_ID', 'Src_IP', 'Dst_IP', 'Timestamp', 'Src_Port']) assert.ok(!ds.features.includes(id), id);
  assert.ok(ds.features.includes('Dst_Port') && ds.features.includes('Protocol'));
  // Everything read is a schema feature or reported as constant.
  assert.equal(ds.features.length + ds.report.constantColumns.length, STAT_FEATURES.length + 2);
  // First row, Flow_Duration = 75 and Flow_Byts/s = 32160000 (raw, unscaled).
  assert.equal(ds.X[ds.features.indexOf('Flow_Duration')], 75);
  assert.equal(ds.X[ds.features.indexOf('Flow_Byts/s')], 32160000);
  const bySub = await loadDataset({ files: [p], labelColumn: 'Sub_Cat' });
  assert.equal(bySub.rows, 24);
  assert.ok(bySub.labels.every((l) => l === 'Normal' || l.includes('-') || l.startsWith('Scan')), bySub.labels.join());
});

test('IoTID20 real 1% sample: 6,252 rows, binary Label 5,891 / 361', async (t) => {
  const p = sharedData(t, 'iotid20', 'sample-1pct-binary.csv');
  if (!p) return;
  const ds = await loadDataset({ files: [p], labelColumn: 'Label', labelMap: BINARY_ANOMALY });
  assert.equal(ds.rows, 6252);
  assert.deepEqual(ds.labels, ['Normal', 'Anomaly']);
  assert.deepEqual(ds.report.classCounts, { Normal: 361, Anomaly: 5891 });
  assert.ok(!ds.features.includes('Flow_ID') && !ds.features.includes('Timestamp'));
  assert.ok(ds.features.includes('Dst_Port'));
  assert.equal(ds.features.length, 26 - ds.report.constantColumns.length);
  const raw = await loadDataset({ files: [p], labelColumn: 'label' });
  assert.deepEqual(raw.report.classCounts, { '0': 361, '1': 5891 });

  // Split and scale the way the trainer will: 70/30, scaler on train rows only.
  const { train, test: te } = stratifiedSplit(ds.y, 2, 0.3, 1);
  assert.equal(te.length, Math.round(361 * 0.3) + Math.round(5891 * 0.3));
  const spec = fitScaler(ds, train, { log: 'auto' });
  const Xs = applyScaler(spec, ds, te);
  for (const v of Xs) assert.ok(v >= 0 && v <= 1);
  assert.ok(spec.transforms.includes('log1p'));
});

test('CIC-IDS2017 sample: all 16 files into 6 classes, the 47 Infiltration + Heartbleed rows dropped and counted', async (t) => {
  const dir = sharedData(t, 'cicids2017-improved-sample');
  if (!dir) return;
  const ds = await loadDataset({ files: [dir], labelColumn: 'Label', labelMap: CICIDS2017_GROUPS });
  assert.deepEqual(ds.labels, ['Normal', 'Botnet', 'BruteForce', 'DoS', 'Scan', 'WebAttack']);
  assert.equal(ds.report.skipped.unmappedLabel, 47);
  assert.equal(ds.report.rowsRead, ds.rows + 47);
  assert.deepEqual(ds.report.classCounts, { Normal: 5000, Botnet: 736, BruteForce: 3972 + 2961, DoS: 5000 * 3 + 1740 + 3859, Scan: 10000, WebAttack: 73 + 13 + 18 });
  assert.equal(ds.report.files.length, 17, '16 data files + the header reference');
  for (const c of ['id (not in the schema)', 'Attempted Category (not in the schema)', 'Total TCP Flow Time (not in the schema)']) {
    assert.ok(ds.report.ignoredColumns.includes(c), c);
  }
  assert.deepEqual(ds.report.skipped, { wrongCellCount: 0, badNumber: 0, unmappedLabel: 47, emptyLabel: 0 });
  const dd = await loadDataset({ files: [dir], labelColumn: 'Label', labelMap: CICIDS2017_GROUPS, dedupe: true });
  assert.equal(dd.rows + dd.report.duplicatesRemoved, ds.rows);
});

test('CICFlowMeter long dialect (leading spaces, duplicated Fwd Header Length): first copy kept', async (t) => {
  const p = sharedData(t, 'cicflowmeter-reference', 'test.pcap_CIC.csv');
  if (!p) return;
  const ds = await loadDataset({ files: [p], labelColumn: 'Label' });
  assert.equal(ds.rows, 96);
  assert.ok(ds.report.ignoredColumns.some((c) => c.startsWith('Fwd Header Length (duplicate')));
  assert.ok(ds.features.includes('Fwd_Header_Len'));
});
