import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyThresholds, tuneThresholds } from '../../trainer/eval/thresholds.ts';

// Two classes, Normal = 0. Rows: [P(Normal), P(Attack)].
const P = Float32Array.from([
  0.9, 0.1, // normal, confident
  0.4, 0.6, // normal, but the model leans to Attack
  0.35, 0.65, // normal, leans to Attack
  0.2, 0.8, // attack
  0.05, 0.95, // attack
  0.1, 0.9, // attack
]);
const Y = Int32Array.from([0, 0, 0, 1, 1, 1]);

test('an attack below its threshold falls back to Normal; Normal ignores its own threshold', () => {
  assert.deepEqual([...applyThresholds(P, 6, 2, 0, [0.5, 0.5])], [0, 1, 1, 1, 1, 1]);
  assert.deepEqual([...applyThresholds(P, 6, 2, 0, [0.5, 0.7])], [0, 0, 0, 1, 1, 1]);
  assert.deepEqual([...applyThresholds(P, 6, 2, 0, [0.99, 0.7])], [0, 0, 0, 1, 1, 1]);
  assert.deepEqual([...applyThresholds(P, 6, 2, 0, [0.5, 0.85])], [0, 0, 0, 0, 1, 1]);
});

test('tuning finds the threshold that separates the classes on validation rows', () => {
  const t = tuneThresholds(['Normal', 'Attack'], P, Y, 0);
  assert.ok(t.thresholds[1] >= 0.65 && t.thresholds[1] <= 0.8, `threshold ${t.thresholds[1]}`);
  assert.equal(t.valMacroF1, 1);
  assert.ok(t.valMacroF1Argmax < 1);
});

test('tuning keeps 0.5 when arg-max is already best, and without a Normal class', () => {
  const Y2 = Int32Array.from([0, 1, 1, 1, 1, 1]);
  assert.deepEqual(tuneThresholds(['Normal', 'Attack'], P, Y2, 0).thresholds, [0.5, 0.5]);
  assert.deepEqual(tuneThresholds(['A', 'B'], P, Y, -1).thresholds, [0.5, 0.5]);
});
