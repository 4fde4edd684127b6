/**
 * trainer/warm/fine-tune.ts on real flows: a benign device the shipped model partly calls Scan (MAXGateway, held out
 * from its training), labelled Normal as an operator's false-positive marks make it, beside real port scans labelled
 * Scan; the lab corpus the shipped model came from (small, same seed and device split) replayed. The device's false
 * alerts on its held-out flows must fall while the original test split's accuracy stays within 2 points.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LABELED_FLOW_CSV_HEADER } from '../../asm/flow-csv.ts';
import { fineTuneClassWeights, runFineTune, sampleReplay, weightRows } from '../../trainer/warm/fine-tune.ts';
import { meter } from '../fleet/fixture.ts';
import { loadInitModel } from '../../trainer/warm/init-model.ts';
import { fineTuneOptionsFromArgs } from '../../trainer/train-command.ts';
import { isIdsError } from '../../shared/errors.ts';

const SHIPPED = 'models/iot-ids-lab-v1';
const DATA = '../shared/data';

test('replay sampling keeps every class and its proportions; fleet weights repeat rows', () => {
  const y = Int32Array.from({ length: 1000 }, (_, i) => (i < 900 ? 0 : i < 990 ? 1 : 2));
  const pool = Uint32Array.from({ length: 1000 }, (_, i) => i);
  const s = sampleReplay(y, pool, 200, 3, 1, 5);
  const counts = [0, 0, 0];
  for (const r of s) counts[y[r]]++;
  assert.deepEqual(counts, [180, 18, 5]); // 10 % of 10 → 1, raised to the floor of 5
  assert.deepEqual([...sampleReplay(y, pool, 200, 3, 1, 5)], [...s], 'seeded');
  assert.equal(sampleReplay(y, pool, 0, 3, 1).length, 0);
  assert.equal(weightRows(Uint32Array.of(1, 2, 3), 2, 1).length, 6);
  const frac = weightRows(Uint32Array.from({ length: 1000 }, (_, i) => i), 1.5, 1).length;
  assert.ok(frac > 1400 && frac < 1600, `1.5× of 1000 rows gave ${frac}`);
});

test('class weights of a fine-tune: the init recipe\'s weighting over its class counts, or the weights a fine-tuned init recorded', () => {
  const labels = ['Normal', 'DoS'];
  const y = Int32Array.of(0, 0, 0, 1);
  const counts = { Normal: 300, DoS: 100 };
  const bal = fineTuneClassWeights('init', { recipe: 'default (classWeights balanced)', classCounts: counts, classWeights: null }, labels, y);
  assert.equal(bal.mode, 'balanced');
  assert.ok(Math.abs(bal.weights![1] / bal.weights![0] - 3) < 1e-6, 'balanced over the init\'s counts, not the fine-tuning rows\'');
  const kept = fineTuneClassWeights('init', { recipe: 'fine-tune (classWeights balanced)', classCounts: { Normal: 1, DoS: 1 }, classWeights: { Normal: 0.5, DoS: 2 } }, labels, y);
  assert.deepEqual([...kept.weights!], [0.5, 2]);
  assert.equal(fineTuneClassWeights('init', { recipe: 'paper', classCounts: counts, classWeights: null }, labels, y).weights, null);
  assert.equal(fineTuneClassWeights('none', { recipe: 'default (classWeights balanced)', classCounts: counts, classWeights: null }, labels, y).weights, null);
});

test('fine-tuning on marked false positives lowers them while the original test accuracy holds', async (t) => {
  if (!existsSync(join(DATA, 'pcaps/benign/iot-sentinel/MAXGateway'))) return t.skip('no ../shared/data: real flows are needed');
  const dir = mkdtempSync(join(tmpdir(), 'finetune-'));
  // The replay: the shipped model's corpus, small (REPRODUCE.md's command at 3,000 flows).
  const lab = spawnSync(process.execPath, ['bin/iot-ids.mjs', 'lab', '--seed', '6', '--flows', '3000', '--mode', 'corrected', '--test-devices', '0.3',
    '--val-devices', '0.15', '--replay-share', 'mitm-arp-spoofing=0', '--share', 'normal=4', '--data', DATA, '--out', join(dir, 'corpus')], { encoding: 'utf8' });
  assert.equal(lab.status, 0, lab.stderr);
  // The fleet's rows: every flow of the device (Normal, as the operator marked it) and real scans (Scan).
  const lines = [LABELED_FLOW_CSV_HEADER];
  const dev = join(DATA, 'pcaps/benign/iot-sentinel/MAXGateway');
  for (const f of readdirPcaps(dev)) for (const r of await meter(join(dev, f))) lines.push(`${r.line},Normal,Normal,Normal`);
  for (const f of ['pcaphunt_ps-tcp_syn.pcap', 'pcaphunt_ps-udp.pcap']) {
    for (const r of (await meter(join(DATA, 'pcaps/attack', f))).slice(0, 150)) lines.push(`${r.line},Anomaly,Scan,Scan Port OS`);
  }
  writeFileSync(join(dir, 'fleet.csv'), lines.join('\n') + '\n');

  const res = await runFineTune({ initFrom: SHIPPED, fleet: [join(dir, 'fleet.csv')], replay: [join(dir, 'corpus', 'flows.csv')], seed: 1, out: join(dir, 'run') });
  const r = res.report!;
  const [fleet, original] = r.comparisons;
  console.log(`fine-tune (${r.rows.trainTotal} rows × ${r.settings.epochs} epochs, ${r.timings.train.toFixed(1)} s): ` +
    `device's held-out flows alerted ${(100 * fleet.old.normalFalseAlertRate!).toFixed(1)} % → ${(100 * fleet.new.normalFalseAlertRate!).toFixed(1)} %, ` +
    `scan recall ${fleet.old.perClassRecall.Scan} → ${fleet.new.perClassRecall.Scan}; original test accuracy ${original.old.accuracy.toFixed(4)} → ${original.new.accuracy.toFixed(4)}`);
  assert.equal(r.initFrom.version, JSON.parse(readFileSync(join(SHIPPED, 'manifest.json'), 'utf8')).model.version);
  assert.ok(fleet.old.normalFalseAlertRate! >= 0.05, `premise: the init model alerts on the device (${fleet.old.normalFalseAlertRate})`);
  assert.ok(fleet.new.normalFalseAlertRate! <= fleet.old.normalFalseAlertRate! / 2, 'the device\'s false alerts at least halve');
  assert.ok(fleet.new.perClassRecall.Scan >= 0.95, 'the fleet\'s scans are still caught');
  assert.ok(original.new.accuracy >= original.old.accuracy - 0.02, 'the original test accuracy stays within 2 points');
  assert.ok(existsSync(join(dir, 'run', 'report.md')) && existsSync(join(dir, 'run', 'model', 'model.json')));

  // Deterministic by seed: the same inputs give the same weights.
  const again = await runFineTune({ initFrom: SHIPPED, fleet: [join(dir, 'fleet.csv')], replay: [join(dir, 'corpus', 'flows.csv')], seed: 1, epochs: 1, replayRatio: 0.5, out: join(dir, 'a') });
  const twice = await runFineTune({ initFrom: SHIPPED, fleet: [join(dir, 'fleet.csv')], replay: [join(dir, 'corpus', 'flows.csv')], seed: 1, epochs: 1, replayRatio: 0.5, out: join(dir, 'b') });
  assert.ok(readFileSync(join(again.outDir, 'model', 'weights.bin')).equals(readFileSync(join(twice.outDir, 'model', 'weights.bin'))), 'same seed, same weights');
  // A run folder is an init model too (its float weights), and starts where it ended.
  const chained = await runFineTune({ initFrom: join(dir, 'run'), fleet: [join(dir, 'fleet.csv')], replay: [], seed: 2, epochs: 1, out: join(dir, 'c') });
  assert.equal(chained.report!.initFrom.source, 'run');
  const c = chained.report!.comparisons[0];
  assert.ok(Math.abs(c.old.accuracy - fleet.new.accuracy) < 0.1, 'the run folder starts from the fine-tuned weights');
  // --refit-scaler: a scaler fitted on the fine-tuning rows, and the report says so.
  const refit = await runFineTune({ initFrom: SHIPPED, fleet: [join(dir, 'fleet.csv')], replay: [join(dir, 'corpus', 'flows.csv')], seed: 1, epochs: 1, refitScaler: true, out: join(dir, 'refit') });
  assert.equal(refit.report!.scaler.refit, true);
  assert.match(refit.report!.scaler.reason, /refit on the fine-tuning rows/);
  assert.match(readFileSync(join(refit.outDir, 'report.md'), 'utf8'), /Scaler: refit/);
  const refitSpec = JSON.parse(readFileSync(join(refit.outDir, 'scaler.json'), 'utf8'));
  const shippedSpec = JSON.parse(readFileSync(join(SHIPPED, 'manifest.json'), 'utf8')).preprocessing;
  assert.deepEqual(refitSpec.features, shippedSpec.features, 'same features');
  assert.notDeepEqual(refitSpec.max, shippedSpec.max, 'ranges refit');
  assert.equal(r.scaler.refit, false);
  // A bundle that a run folder exported (RUN/bundle, same model file) starts from that run's float weights.
  const runBundle = join(dir, 'run', 'bundle');
  mkdirSync(runBundle);
  for (const f of ['manifest.json', 'manifest.sig', 'model.int8.onnx', 'preprocess.wasm']) copyFileSync(join(SHIPPED, f), join(runBundle, f));
  const viaBundle = await loadInitModel(runBundle);
  assert.equal(viaBundle.source, 'bundle (float weights of the run that exported it)');
  assert.equal(viaBundle.version, r.initFrom.version, 'labels, thresholds and version come from the bundle');
  const w = viaBundle.model.getWeights();
  const fromRun = await loadInitModel(join(dir, 'run'));
  fromRun.model.getWeights().forEach((x, i) => assert.deepEqual(x.dataSync(), w[i].dataSync()));
  viaBundle.model.dispose();
  fromRun.model.dispose();
});

test('train --init-from options: the first --data is the fleet\'s, the rest replay; recipe flags are refused', () => {
  const o = fineTuneOptionsFromArgs({ 'init-from': 'b', data: ['fleet.csv', 'a.csv,b.csv'], 'fleet-weight': '2', 'keep-thresholds': true, 'class-weights': 'none' });
  assert.deepEqual([o.fleet, o.replay], [['fleet.csv'], ['a.csv', 'b.csv']]);
  assert.equal(o.fleetWeight, 2);
  assert.equal(o.thresholds, 'init');
  assert.equal(o.classWeights, 'none');
  assert.throws(() => fineTuneOptionsFromArgs({ 'init-from': 'b', data: ['f.csv'], recipe: 'paper' }), (e) => isIdsError(e, 'BAD_OPTION') && /--recipe/.test((e as Error).message));
  assert.throws(() => fineTuneOptionsFromArgs({ 'init-from': 'b', data: ['f.csv'], features: 'all-numeric' }), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.throws(() => fineTuneOptionsFromArgs({ 'init-from': 'b' }), (e) => isIdsError(e, 'BAD_OPTION'));
});

const readdirPcaps = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.pcap')).sort();
