import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeMetrics, confusionMatrix, metricsFromConfusion, argmaxRows } from '../../trainer/eval/metrics.ts';
import { isIdsError } from '../../shared/errors.ts';

const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-9, `${msg ?? ''} ${a} != ${b}`);

test('three classes, worked by hand', () => {
  // true A A A B B C, predicted A A B B C C
  const m = computeMetrics(['A', 'B', 'C'], [0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2]);
  assert.deepEqual(m.confusion, [[2, 1, 0], [0, 1, 1], [0, 0, 1]]);
  close(m.accuracy, 4 / 6);
  // A: P 2/2, R 2/3, F1 0.8; one-vs-rest accuracy (2 + 3) / 6.
  close(m.perClass.A.precision, 1);
  close(m.perClass.A.recall, 2 / 3);
  close(m.perClass.A.f1, 0.8);
  close(m.perClass.A.accuracy, 5 / 6);
  assert.equal(m.perClass.A.support, 3);
  // B: P 1/2, R 1/2, F1 1/2; C: P 1/2, R 1, F1 2/3.
  close(m.perClass.B.f1, 0.5);
  close(m.perClass.B.accuracy, 4 / 6);
  close(m.perClass.C.precision, 0.5);
  close(m.perClass.C.recall, 1);
  close(m.perClass.C.f1, 2 / 3);
  close(m.perClass.C.accuracy, 5 / 6);
  close(m.macroF1, (0.8 + 0.5 + 2 / 3) / 3);
  close(m.weightedF1, (0.8 * 3 + 0.5 * 2 + (2 / 3) * 1) / 6);
  close(m.macroPrecision, (1 + 0.5 + 0.5) / 3);
});

test('F1 is the harmonic mean, not half of it (the paper printed P·R/(P+R))', () => {
  const m = computeMetrics(['N', 'X'], [0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 0, 0]);
  const { precision: p, recall: r, f1 } = m.perClass.X;
  close(p, 2 / 3);
  close(r, 1 / 2);
  close(f1, (2 * p * r) / (p + r));
  assert.ok(f1 > (p * r) / (p + r) * 1.99);
});

test('a class never present and never predicted gives zeros, not NaN', () => {
  const m = metricsFromConfusion(['A', 'B', 'Z'], [[3, 1, 0], [0, 2, 0], [0, 0, 0]]);
  assert.deepEqual(m.perClass.Z, { accuracy: 1, precision: 0, recall: 0, f1: 0, support: 0 });
  for (const c of Object.values(m.perClass)) for (const v of Object.values(c)) assert.ok(Number.isFinite(v));
  assert.ok(Number.isFinite(m.macroF1) && Number.isFinite(m.weightedF1));
  // A predicted-but-absent class: precision 0 (all its predictions wrong), recall 0.
  const n = metricsFromConfusion(['A', 'B'], [[1, 1], [0, 0]]);
  assert.equal(n.perClass.B.precision, 0);
  assert.equal(n.perClass.B.recall, 0);
  assert.equal(n.perClass.B.support, 0);
});

test('no rows at all: every figure is 0', () => {
  const m = computeMetrics(['A', 'B'], [], []);
  assert.equal(m.accuracy, 0);
  assert.equal(m.macroF1, 0);
  assert.equal(m.weightedF1, 0);
  assert.equal(m.total, 0);
});

test('perfect predictions give 1 everywhere', () => {
  const y = [0, 1, 2, 2, 1, 0];
  const m = computeMetrics(['a', 'b', 'c'], y, y);
  assert.equal(m.accuracy, 1);
  assert.equal(m.macroF1, 1);
  assert.equal(m.weightedF1, 1);
});

test('bad input is a clear error', () => {
  assert.throws(() => confusionMatrix([0, 1], [0], 2), (e) => isIdsError(e, 'BAD_OPTION') && /2 true labels but 1/.test(e.message));
  assert.throws(() => confusionMatrix([0, 3], [0, 1], 2), (e) => isIdsError(e, 'BAD_OPTION') && /row 1/.test(e.message));
});

test('argmaxRows picks the largest probability per row', () => {
  const p = Float32Array.from([0.1, 0.7, 0.2, 0.5, 0.3, 0.2, 0.1, 0.1, 0.8]);
  assert.deepEqual([...argmaxRows(p, 3, 3)], [1, 0, 2]);
});
