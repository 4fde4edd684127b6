import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveRecipe, recipeLabel, classWeightsFor, batchFor, RECIPES } from '../../trainer/recipes.ts';
import { isIdsError } from '../../shared/errors.ts';

test('the paper recipe is as published', () => {
  const p = resolveRecipe('paper');
  assert.equal(p.learningRate, 1e-4);
  assert.equal(p.batchSize, 32);
  assert.equal(p.epochs, 30);
  assert.equal(p.log, 'none');
  assert.equal(p.classWeights, 'none');
  assert.equal(p.earlyStopping, null);
  assert.equal(p.lrSchedule, 'constant');
  assert.equal(p.testFraction, 0.3);
  assert.equal(p.tuneThresholds, false, 'plain arg-max, as published');
});

test('overrides replace single fields and never mutate the named recipe', () => {
  const r = resolveRecipe('default', { epochs: 3, learningRate: 0.01, batchSize: 256, patience: 2 });
  assert.equal(r.epochs, 3);
  assert.equal(r.learningRate, 0.01);
  assert.equal(r.batchSize, 256);
  assert.equal(r.earlyStopping?.patience, 2);
  assert.notEqual(RECIPES.default.epochs, 3);
  assert.notEqual(RECIPES.default.earlyStopping?.patience, 2);
  assert.equal(resolveRecipe(undefined).name, 'default');
  // No validation split: nothing for early stopping to watch.
  assert.equal(resolveRecipe('default', { valFraction: 0 }).earlyStopping, null);
  assert.equal(resolveRecipe('default', { valFraction: 0 }).tuneThresholds, false);
  // The weight average and the early-stopping monitor: 0 turns the average off.
  const e = resolveRecipe('default', { emaDecay: 0.998, monitor: 'valLoss' });
  assert.equal(e.emaDecay, 0.998);
  assert.equal(e.earlyStopping?.monitor, 'valLoss');
  assert.equal(RECIPES.default.earlyStopping?.monitor, 'valMacroF1');
  assert.equal(resolveRecipe('default', { emaDecay: 0 }).emaDecay, null);
});

test('bad recipe names and values are BAD_OPTION naming the flag', () => {
  assert.throws(() => resolveRecipe('turbo'), (e) => isIdsError(e, 'BAD_OPTION') && /--recipe turbo/.test(e.message));
  assert.throws(() => resolveRecipe('paper', { epochs: 0 }), (e) => isIdsError(e, 'BAD_OPTION') && /--epochs/.test(e.message));
  assert.throws(() => resolveRecipe('paper', { learningRate: -1 }), (e) => isIdsError(e, 'BAD_OPTION') && /--lr/.test(e.message));
  assert.throws(() => resolveRecipe('paper', { valFraction: 0.95 }), (e) => isIdsError(e, 'BAD_OPTION') && /--val-fraction/.test(e.message));
  assert.throws(() => resolveRecipe('default', { emaDecay: 1 }), (e) => isIdsError(e, 'BAD_OPTION') && /--ema/.test(e.message));
});

test('class weights: balanced is n/(k·n_c), sqrt its root, both with sample-mean 1', () => {
  const y = Int32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // 9 : 1
  assert.equal(classWeightsFor(y, 2, 'none'), null);
  const b = classWeightsFor(y, 2, 'balanced')!;
  assert.ok(Math.abs(b[1] / b[0] - 9) < 1e-5, `ratio ${b[1] / b[0]}`);
  const mean = (w: Float32Array) => (9 * w[0] + w[1]) / 10;
  assert.ok(Math.abs(mean(b) - 1) < 1e-6);
  const s = classWeightsFor(y, 2, 'sqrt')!;
  assert.ok(Math.abs(s[1] / s[0] - 3) < 1e-5);
  assert.ok(Math.abs(mean(s) - 1) < 1e-6);
  // An absent class gets weight 0 rather than Infinity.
  const z = classWeightsFor(Int32Array.from([0, 1]), 3, 'balanced')!;
  assert.equal(z[2], 0);
});

test('the default recipe picks the batch from the training rows unless --batch is given', () => {
  const d = resolveRecipe('default');
  assert.equal(batchFor(d, 4000), 16);
  assert.equal(batchFor(d, 30000), 128);
  assert.equal(batchFor(resolveRecipe('default', { batchSize: 64 }), 30000), 64);
  assert.equal(batchFor(resolveRecipe('paper'), 30000), 32);
});

test("'rare' weighting lifts only classes under 1% of the rows, and is no weighting when none is rare", () => {
  const y = new Int32Array(1000);
  for (let i = 0; i < 5; i++) y[i] = 2; // 0.5%: counts as 1% → weight 2
  for (let i = 5; i < 65; i++) y[i] = 1; // 6%: left alone
  const w = classWeightsFor(y, 3, 'rare')!;
  assert.equal(w[0], w[1]);
  assert.ok(Math.abs(w[2] / w[0] - 2) < 1e-6, `ratio ${w[2] / w[0]}`);
  assert.ok(Math.abs((935 * w[0] + 60 * w[1] + 5 * w[2]) / 1000 - 1) < 1e-6, 'sample-mean weight 1');
  const common = Int32Array.from({ length: 100 }, (_, i) => (i < 10 ? 1 : 0));
  assert.equal(classWeightsFor(common, 2, 'rare'), null);
});

test('recipeLabel names the recipe and only what the overrides changed', () => {
  assert.equal(recipeLabel(resolveRecipe('default')), 'default');
  assert.equal(recipeLabel(resolveRecipe('paper', { epochs: 30 })), 'paper', 'an override equal to the base is no change');
  assert.equal(
    recipeLabel(resolveRecipe('default', { epochs: 20, classWeights: 'balanced', pruneCorrelated: 0.99 })),
    'default (epochs 20, classWeights balanced, pruneCorrelated 0.99)',
  );
  assert.equal(recipeLabel(resolveRecipe('default', { batchSize: 64 })), 'default (batchSize 64)');
  assert.equal(recipeLabel(resolveRecipe('default', { patience: 5 })), 'default (earlyStopping {"patience":5,"monitor":"valMacroF1","restoreBest":true})');
});
