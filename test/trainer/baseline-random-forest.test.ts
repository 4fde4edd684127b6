import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trainForest, forestProba } from '../../trainer/baseline/random-forest.ts';
import { runBaseline } from '../../trainer/baseline/run.ts';
import { Rng } from '../../shared/random.ts';
import { isIdsError } from '../../shared/errors.ts';

/** Three classes separated by an interaction (XOR of two features) plus noise features: no single threshold works. */
function synthetic(n: number, seed: number) {
  const F = 6;
  const rng = new Rng(seed);
  const X = new Float32Array(n * F);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = rng.next();
    const b = rng.next();
    const c = rng.next();
    y[i] = c < 0.2 ? 2 : (a > 0.5) !== (b > 0.5) ? 1 : 0;
    X[i * F] = a * 1000;
    X[i * F + 1] = b;
    X[i * F + 2] = y[i] === 2 ? 5 + rng.next() : rng.next() * 4; // class 2: its own range, heavy scale
    for (let j = 3; j < F; j++) X[i * F + j] = rng.normal();
    if (i % 97 === 0) X[i * F + 3] = Number.NaN; // missing cells must not break binning
    if (i % 89 === 0) X[i * F + 4] = Number.POSITIVE_INFINITY;
  }
  return { X, y, F };
}

const range = (a: number, b: number) => Uint32Array.from({ length: b - a }, (_, i) => a + i);

test('the forest learns a non-linear separable problem on held-out rows', () => {
  const { X, y, F } = synthetic(1500, 3);
  const r = runBaseline({ X, features: F, y, labels: ['a', 'b', 'c'], train: range(0, 1000), test: range(1000, 1500) }, { trees: 30, seed: 5 });
  assert.ok(r.accuracy > 0.95, `accuracy ${r.accuracy}`);
  assert.ok(r.macroF1 > 0.94, `macro-F1 ${r.macroF1}`);
  assert.ok(r.trainSeconds >= 0 && r.trainSeconds < 30);
  assert.equal(r.perClass.c.support, [...y.subarray(1000)].filter((v) => v === 2).length);
  assert.match(r.description, /30 trees/);
});

test('a single shallow tree cannot learn the XOR: depth matters (the test can fail)', () => {
  const { X, y, F } = synthetic(1500, 3);
  const r = runBaseline({ X, features: F, y, labels: ['a', 'b', 'c'], train: range(0, 1000), test: range(1000, 1500) }, { trees: 1, maxDepth: 1, seed: 5 });
  assert.ok(r.accuracy < 0.8, `a stump reached ${r.accuracy}`);
});

test('same seed, same forest; probabilities are distributions', () => {
  const { X, y, F } = synthetic(600, 9);
  const rows = range(0, 400);
  const f1 = trainForest(X, F, y, 3, rows, { trees: 5, seed: 11 });
  const f2 = trainForest(X, F, y, 3, rows, { trees: 5, seed: 11 });
  const test = range(400, 600);
  const p1 = forestProba(f1, X, test);
  assert.deepEqual(p1, forestProba(f2, X, test));
  for (let i = 0; i < test.length; i++) {
    const s = p1[i * 3] + p1[i * 3 + 1] + p1[i * 3 + 2];
    assert.ok(Math.abs(s - 1) < 1e-5, `row ${i} sums to ${s}`);
  }
  const f3 = trainForest(X, F, y, 3, rows, { trees: 5, seed: 12 });
  assert.notDeepEqual(p1, forestProba(f3, X, test));
});

test('bad options and empty input are clear errors', () => {
  const { X, y, F } = synthetic(50, 1);
  assert.throws(() => trainForest(X, F, y, 3, new Uint32Array(0)), (e) => isIdsError(e, 'EMPTY_INPUT'));
  assert.throws(() => trainForest(X, F, y, 3, range(0, 50), { trees: 0 }), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.throws(() => trainForest(X, F, y, 3, range(0, 50), { bins: 1000 }), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.throws(() => trainForest(X, F, y, 3, range(0, 50), { maxFeatures: -2 }), (e) => isIdsError(e, 'BAD_OPTION') && /maxFeatures/.test(e.message));
});
