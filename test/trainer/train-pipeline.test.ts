import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTraining, type RunOptions } from '../../trainer/train.ts';
import { isIdsError } from '../../shared/errors.ts';
import { checkXml } from '../helpers/xml.ts';
import { writeTinyFlows } from '../helpers/tiny-flows.ts';
import { verifyBundle } from '../../shared/bundle-verify.ts';
import { readDevPublicKey } from '../../trainer/bundle/dev-key.ts';

const MAP = { normal: 'Normal', attack: 'Attack' };

test('runTraining end to end on a tiny CSV writes the report, plots, model and scaler', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-train-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const csv = writeTinyFlows(join(dir, 'flows.csv'), 400, 1, { withOther: true, badRows: true });
  const out = join(dir, 'run');
  const res = await runTraining({
    data: [csv], label: 'Label', map: MAP, mapSource: 'inline', seed: 3, epochs: 2, batchSize: 32, out,
    forest: { trees: 10 }, backend: 'auto',
  });
  assert.equal(res.interrupted, false);
  const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  for (const k of ['labels', 'accuracy', 'macroF1', 'weightedF1', 'perClass', 'confusion', 'baseline', 'recipe', 'seed', 'timings', 'history', 'data']) {
    assert.ok(k in r, `report.json lacks ${k}`);
  }
  assert.deepEqual(r.labels, ['Normal', 'Attack']);
  assert.equal(r.seed, 3);
  assert.equal(r.history.length, 2);
  assert.equal(r.recipe.name, 'default');
  assert.equal(r.recipe.epochs, 2, 'CLI-style override of the recipe');
  // Default recipe: thresholds tuned on validation for every class, Normal's unused; headline = that decision.
  assert.equal(r.decision, 'thresholds tuned on validation');
  assert.deepEqual(Object.keys(r.thresholds), ['Normal', 'Attack']);
  assert.ok(r.thresholds.Attack >= 0.5 && r.thresholds.Attack < 1);
  assert.equal(typeof r.argmax.accuracy, 'number');
  const testRows = r.split.rows.test;
  assert.equal(r.perClass.Normal.support + r.perClass.Attack.support, testRows);
  assert.equal(r.confusion.flat().reduce((a: number, b: number) => a + b, 0), testRows);
  assert.ok(r.accuracy >= 0 && r.accuracy <= 1 && Number.isFinite(r.macroF1));
  // The tiny problem is trivially separable for trees.
  assert.ok(r.baseline.accuracy > 0.95, `baseline accuracy ${r.baseline.accuracy}`);
  // The label map left 'other' out (counted), and the short row was skipped (counted).
  assert.equal(r.data.report.skipped.unmappedLabel, 8);
  assert.equal(r.data.report.skipped.wrongCellCount, 1);
  for (const f of ['curves.svg', 'confusion.svg', 'baseline-confusion.svg']) assert.equal(checkXml(readFileSync(join(out, f), 'utf8')), 'svg');
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /## Per class/);
  assert.ok(existsSync(join(out, 'model', 'model.json')));
  const scaler = JSON.parse(readFileSync(join(out, 'scaler.json'), 'utf8'));
  assert.deepEqual(scaler.features, r.model.features);
  assert.ok(!scaler.features.includes('Flow_ID') && !scaler.features.includes('Src_IP'), 'identifiers are not features');
});

test('an interrupted run leaves a checkpoint and --resume finishes it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-train-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const csv = writeTinyFlows(join(dir, 'flows.csv'), 240, 2);
  const out = join(dir, 'run');
  const ac = new AbortController();
  const common: RunOptions = { data: [csv], label: 'Label', map: MAP, seed: 5, epochs: 3, batchSize: 32, out, baseline: false, valFraction: 0 };
  const first = await runTraining({ ...common, signal: ac.signal, log: (l) => { if (l.startsWith('epoch 1:')) ac.abort(); } });
  assert.equal(first.interrupted, true);
  assert.equal(first.report, undefined);
  assert.equal(existsSync(join(out, 'report.json')), false);
  assert.ok(existsSync(join(out, 'checkpoints')));
  const epochs: string[] = [];
  const second = await runTraining({ ...common, resume: true, log: (l) => { if (l.startsWith('epoch')) epochs.push(l); } });
  assert.equal(second.interrupted, false);
  assert.deepEqual(epochs.map((l) => l.split(':')[0]), ['epoch 2', 'epoch 3'], 'resumed after epoch 1');
  assert.deepEqual(second.report!.history.map((h) => h.epoch), [1, 2, 3]);
});

test('bad runs fail with clear errors before training', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-train-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const csv = writeTinyFlows(join(dir, 'flows.csv'), 60, 3);
  await assert.rejects(runTraining({ data: [], out: join(dir, 'a') }), (e) => isIdsError(e, 'BAD_OPTION'));
  await assert.rejects(runTraining({ data: [csv], label: 'Label', map: { normal: 'Normal' }, out: join(dir, 'b'), epochs: 1 }),
    (e) => isIdsError(e, 'BAD_OPTION') && /one class/.test(e.message));
  await assert.rejects(runTraining({ data: [csv], label: 'Label', map: MAP, out: join(dir, 'c'), resume: true }),
    (e) => isIdsError(e, 'BAD_OPTION') && /--resume/.test(e.message));
  await assert.rejects(runTraining({ data: [csv], label: 'Label', map: MAP, out: join(dir, 'd'), seed: -1 }),
    (e) => isIdsError(e, 'BAD_OPTION') && /--seed/.test(e.message));
  await assert.rejects(runTraining({ data: [join(dir, 'missing.csv')], label: 'Label', out: join(dir, 'e') }), (e) => isIdsError(e));
});

test('--export leaves model.fp32.onnx, export.md and a verified bundle/ in the run folder', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-train-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const csv = writeTinyFlows(join(dir, 'flows.csv'), 300, 4);
  const out = join(dir, 'run');
  await runTraining({ data: [csv], label: 'Label', map: MAP, seed: 2, epochs: 2, batchSize: 32, out, baseline: false, export: true });
  assert.ok(existsSync(join(out, 'model.fp32.onnx')));
  assert.ok(existsSync(join(out, 'export.md')));
  const { manifest } = await verifyBundle(join(out, 'bundle'), { publicKeyPem: readDevPublicKey() });
  assert.deepEqual(manifest.labels, ['Normal', 'Attack']);
  const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.ok(r.export, 'report.json records the export');
});
