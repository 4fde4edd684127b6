import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stratifiedSplit } from '../../trainer/data/split.ts';
import { isIdsError } from '../../shared/errors.ts';

// 1000 rows of class 0, 90 of class 1, 7 of class 2, 2 of class 3, 1 of class 4, interleaved.
function labels(): Int32Array {
  const ys: number[] = [];
  const want = [1000, 90, 7, 2, 1];
  want.forEach((n, c) => { for (let i = 0; i < n; i++) ys.push(c); });
  // Deterministic interleave so that classes are not in blocks.
  return Int32Array.from(ys.map((c, i) => [((i * 7919) % ys.length), c]).sort((a, b) => a[0] - b[0]).map((p) => p[1]));
}

const countBy = (y: Int32Array, idx: Uint32Array, classes: number) => {
  const n = new Array(classes).fill(0);
  for (const i of idx) n[y[i]]++;
  return n;
};

test('stratified 70/30: per-class shares, small classes on both sides, a disjoint cover of all rows', () => {
  const y = labels();
  const { train, test: te } = stratifiedSplit(y, 5, 0.3, 42);
  assert.deepEqual(countBy(y, te, 5), [300, 27, 2, 1, 0]);
  assert.deepEqual(countBy(y, train, 5), [700, 63, 5, 1, 1]);
  const all = new Set([...train, ...te]);
  assert.equal(all.size, y.length);
  assert.equal(train.length + te.length, y.length);
  for (let i = 1; i < train.length; i++) assert.ok(train[i - 1] < train[i], 'train sorted');
  for (let i = 1; i < te.length; i++) assert.ok(te[i - 1] < te[i], 'test sorted');
});

test('deterministic per seed, different across seeds', () => {
  const y = labels();
  const a = stratifiedSplit(y, 5, 0.3, 7);
  const b = stratifiedSplit(y, 5, 0.3, 7);
  const c = stratifiedSplit(y, 5, 0.3, 8);
  assert.deepEqual(a, b);
  assert.notDeepEqual([...a.test], [...c.test]);
});

test('a validation split of the train rows returns indices into y, inside train, still stratified', () => {
  const y = labels();
  const { train, test: te } = stratifiedSplit(y, 5, 0.3, 1);
  const { train: fit, test: val } = stratifiedSplit(y, 5, 0.2, 2, train);
  const trainSet = new Set(train);
  const testSet = new Set(te);
  for (const i of [...fit, ...val]) {
    assert.ok(trainSet.has(i), `row ${i} comes from train`);
    assert.ok(!testSet.has(i));
  }
  assert.equal(fit.length + val.length, train.length);
  assert.deepEqual(countBy(y, val, 5), [140, 13, 1, 0, 0]);
});

test('bad arguments are BAD_OPTION errors', () => {
  const y = Int32Array.from([0, 1, 2]);
  assert.throws(() => stratifiedSplit(y, 3, 0, 1), (e) => isIdsError(e, 'BAD_OPTION') && /fraction/.test(e.message));
  assert.throws(() => stratifiedSplit(y, 3, 1, 1), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.throws(() => stratifiedSplit(y, 2, 0.3, 1), (e) => isIdsError(e, 'BAD_OPTION') && /label 2/.test(e.message));
});
