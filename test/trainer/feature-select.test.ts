import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keepColumns, selectUncorrelated } from '../../trainer/data/feature-select.ts';
import type { Dataset } from '../../trainer/data/dataset.ts';
import { Rng } from '../../shared/random.ts';
import { isIdsError } from '../../shared/errors.ts';
import { runTraining } from '../../trainer/train.ts';
import { verifyBundle } from '../../shared/bundle-verify.ts';
import { readDevPublicKey } from '../../trainer/bundle/dev-key.ts';
import { writeTinyFlows } from '../helpers/tiny-flows.ts';

const NAMES = ['a', 'affine', 'negated', 'noise', 'nearly', 'flat'];

/** Columns: a; 2a+1 (r = 1); −a (r = −1); independent; a + small noise (r ≈ 0.995); constant. */
function matrix(rows: number): Float32Array {
  const rng = new Rng(4);
  const X = new Float32Array(rows * NAMES.length);
  for (let i = 0; i < rows; i++) {
    const a = rng.next();
    X.set([a, 2 * a + 1, -a, rng.next(), a + (rng.next() - 0.5) * 0.05, 3], i * NAMES.length);
  }
  return X;
}

test('selectUncorrelated keeps the first of each near-copy group, in schema order', () => {
  const X = matrix(2000);
  const sel = selectUncorrelated(X, NAMES.length, 2000, NAMES, 0.99);
  assert.deepEqual(sel.keep, [0, 3, 5], 'a, the independent column and the constant stay');
  assert.deepEqual(sel.dropped.map((d) => [d.feature, d.like]), [['affine', 'a'], ['negated', 'a'], ['nearly', 'a']]);
  assert.equal(sel.dropped[1].r, -1);
  assert.ok(sel.dropped[2].r > 0.99 && sel.dropped[2].r < 1, `r ${sel.dropped[2].r}`);
  // A stricter threshold keeps the noisy copy and still drops the exact ones.
  assert.deepEqual(selectUncorrelated(X, NAMES.length, 2000, NAMES, 0.9999).keep, [0, 3, 4, 5]);
  // Only the first `rows` rows count: on one row nothing varies, so nothing is a copy.
  assert.deepEqual(selectUncorrelated(X, NAMES.length, 1, NAMES, 0.99).keep, [0, 1, 2, 3, 4, 5]);
});

test('selectUncorrelated and keepColumns refuse bad arguments', () => {
  const X = matrix(10);
  for (const th of [0, -0.5, 1.5, NaN]) {
    assert.throws(() => selectUncorrelated(X, NAMES.length, 10, NAMES, th), (e) => isIdsError(e, 'BAD_OPTION'));
  }
  assert.throws(() => selectUncorrelated(X, NAMES.length, 10, NAMES.slice(1), 0.9), (e) => isIdsError(e, 'BAD_OPTION'));
  const ds = { features: [...NAMES], X, rows: 10 } as Dataset;
  assert.throws(() => keepColumns(ds, [2, 1]), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.throws(() => keepColumns(ds, [0, 6]), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.throws(() => keepColumns(ds, []), (e) => isIdsError(e, 'BAD_OPTION'));
});

test('keepColumns compacts rows in place to exactly the kept cells', () => {
  const rows = 50;
  const X = matrix(rows);
  const copy = X.slice();
  const keep = [1, 3, 4];
  const out = keepColumns({ features: [...NAMES], X, rows } as Dataset, keep);
  assert.deepEqual(out.features, ['affine', 'noise', 'nearly']);
  assert.equal(out.X.length, rows * keep.length);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < keep.length; c++) assert.equal(out.X[i * keep.length + c], copy[i * NAMES.length + keep[c]]);
  }
});

test('--prune-correlated trains and bundles on the kept features only', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-prune-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // In the tiny flows ACK_Flag_Cnt is 1 − SYN_Flag_Cnt (r = −1). Ports as numbers: as a benign-share lookup the
  // port would itself be the label here, and both flags would copy it.
  const csv = writeTinyFlows(join(dir, 'flows.csv'), 300, 4);
  const out = join(dir, 'run');
  await runTraining({
    data: [csv], label: 'Label', map: { normal: 'Normal', attack: 'Attack' }, seed: 2, epochs: 1, batchSize: 32, out,
    baseline: false, export: true, pruneCorrelated: 0.99, portEncoding: 'value',
  });
  const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.ok(r.model.pruned.some((p: { feature: string; like: string }) => p.feature === 'ACK_Flag_Cnt' && p.like === 'SYN_Flag_Cnt'),
    JSON.stringify(r.model.pruned));
  assert.ok(!r.model.features.includes('ACK_Flag_Cnt') && r.model.features.includes('SYN_Flag_Cnt'));
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /Dropped as near-copies.*ACK_Flag_Cnt/);
  const { manifest } = await verifyBundle(join(out, 'bundle'), { publicKeyPem: readDevPublicKey() });
  assert.deepEqual(manifest.preprocessing.features, r.model.features);
  assert.deepEqual(manifest.model.inputShape, [-1, r.model.features.length, 1]);
});
