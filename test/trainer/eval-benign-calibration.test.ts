import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calibrateOnBenign } from '../../trainer/eval/benign-calibration.ts';
import { applyThresholds } from '../../trainer/eval/thresholds.ts';

/** Rows of [Normal, A, B] probabilities. */
const rows = (xs: number[][]) => Float32Array.from(xs.flat());

test('calibrateOnBenign raises the class that alerts on benign rows, to the budget, and leaves the other alone', () => {
  // 10 benign rows: 4 called A with 0.6-0.9, the rest Normal; A's real attacks sit at 0.99, B's at 0.7.
  const benign = rows([
    [0.4, 0.6, 0], [0.3, 0.7, 0], [0.2, 0.8, 0], [0.1, 0.9, 0],
    ...Array.from({ length: 6 }, () => [0.9, 0.05, 0.05]),
  ]);
  const val = rows([[0.01, 0.99, 0], [0.01, 0.99, 0], [0.3, 0, 0.7], [0.3, 0, 0.7], [0.9, 0.1, 0]]);
  const valY = Int32Array.from([1, 1, 2, 2, 0]);
  const r = calibrateOnBenign(3, 0, [0.5, 0.5, 0.5], 0.1, benign, val, valY);
  assert.equal(r.before, 0.4);
  assert.ok(r.after <= 0.1, `after ${r.after}`);
  assert.equal(r.thresholds[2], 0.5, 'B never alerted on benign rows: untouched');
  assert.ok(r.thresholds[1] > 0.8 && r.thresholds[1] <= 0.99, `A ${r.thresholds[1]}`);
  assert.equal(r.validationCorrectAfter, 1, 'the attacks at 0.99 still pass');
  const pred = applyThresholds(benign, 10, 3, 0, r.thresholds);
  assert.ok(pred.filter((p) => p !== 0).length <= 1);
});

test('calibrateOnBenign within budget changes nothing; a budget no raise can meet leaves the thresholds', () => {
  const benign = rows([[0.9, 0.1, 0], [0.0, 0.9995, 0.0005]]);
  const val = rows([[0.9, 0.1, 0]]);
  const valY = Int32Array.from([0]);
  assert.deepEqual(calibrateOnBenign(3, 0, [0.5, 0.6, 0.7], 0.5, benign, val, valY).thresholds, [0.5, 0.6, 0.7]);
  const r = calibrateOnBenign(3, 0, [0.5, 0.5, 0.5], 0, benign, val, valY);
  assert.deepEqual(r.thresholds, [0.5, 0.5, 0.5], 'a row at 0.9995 passes every grid threshold: no raise helps');
  assert.equal(r.after, 0.5);
});

test('calibrateOnBenign never costs an attack class more than maxRecallDrop of its validation recall', () => {
  // Benign rows called A at 0.70-0.97; A's validation attacks at 0.72, 0.955 and eight at 0.99: a threshold up to
  // 0.95 gives up one of ten, 0.97 two.
  const benign = rows(Array.from({ length: 10 }, (_, i) => [0.3 - i * 0.03, 0.7 + i * 0.03, 0]));
  const valA = [0.72, 0.955, ...new Array(8).fill(0.99)].map((p) => [1 - p, p, 0]);
  const val = rows(valA);
  const valY = Int32Array.from(valA.map(() => 1));
  const strict = calibrateOnBenign(3, 0, [0.5, 0.5, 0.5], 0, benign, val, valY, 0.1);
  const pass = (thr: number[]) => applyThresholds(val, 10, 3, 0, thr).filter((p) => p === 1).length;
  assert.ok(pass(strict.thresholds) >= 9, `at most one of ten validation attacks given up, got ${10 - pass(strict.thresholds)}`);
  assert.ok(strict.after > 0 && strict.after < 1, `budget missed but some benign alerts removed: ${strict.after}`);
  const loose = calibrateOnBenign(3, 0, [0.5, 0.5, 0.5], 0, benign, val, valY, 1);
  assert.ok(loose.after < strict.after, 'a looser limit buys fewer benign alerts');
});
