import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareMarkdown, loadReport } from '../../trainer/eval/compare.ts';
import { resolveRecipe } from '../../trainer/recipes.ts';
import type { TrainReport } from '../../trainer/eval/report.ts';
import { isIdsError } from '../../shared/errors.ts';

const rep = (recipe: 'paper' | 'default', seed: number, acc: number, f1: number): TrainReport => ({
  labels: ['Normal', 'Anomaly'], accuracy: acc, macroF1: f1, weightedF1: acc, macroPrecision: 0, macroRecall: 0,
  perClass: { Normal: { accuracy: acc, precision: 0, recall: 0, f1: f1 - 0.02, support: 1 }, Anomaly: { accuracy: acc, precision: 0, recall: 0, f1: f1 + 0.02, support: 1 } },
  confusion: [[1, 0], [0, 1]], decision: 'argmax', thresholds: null, argmax: { accuracy: acc, macroF1: f1, weightedF1: acc, perClass: {}, confusion: [] }, baseline: null, recipe: resolveRecipe(recipe), seed, timings: { train: 10 }, history: [],
  model: { name: 'cnn-lstm', backend: 'cpu', features: [], trainSamplesPerSec: 0 }, classWeights: null, bestEpoch: 0, stoppedEarly: false, createdAt: '',
  data: {} as TrainReport['data'], split: {} as TrainReport['split'],
});

test('compareMarkdown lists every run and the mean per recipe', () => {
  const md = compareMarkdown([rep('paper', 1, 0.94, 0.5), rep('paper', 2, 0.96, 0.7), rep('default', 1, 0.99, 0.95)]);
  const lines = md.trim().split('\n');
  assert.equal(lines.length, 2 + 3 + 1, 'header, 3 runs, one mean (default has a single run)');
  const meanRow = lines.find((l) => l.includes('paper mean'))!;
  assert.match(meanRow, /\*\*0\.9500\*\* \| \*\*0\.6000\*\*/);
  assert.match(lines[2], /\| paper \| 1 \| 0\.9400 \| 0\.5000 \|/);
});

test('loadReport names the missing file', () => {
  assert.throws(() => loadReport('/nonexistent/run'), (e) => isIdsError(e, 'BAD_OPTION') && /nonexistent\/run\/report\.json/.test(e.message));
});
