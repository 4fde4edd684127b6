import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildCnnLstm } from '../../trainer/model/cnn-lstm.ts';
import { saveModel, loadModel } from '../../trainer/model/model-io.ts';
import { isIdsError } from '../../shared/errors.ts';

test('saveModel/loadModel round trip gives the same predictions', async () => {
  await tf.setBackend('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'model-io-'));
  try {
    const model = buildCnnLstm({ features: 12, classes: 3, seed: 5 });
    const x = tf.randomUniform([4, 12, 1], 0, 1, 'float32', 1);
    const before = (model.predict(x) as tf.Tensor).dataSync().slice();
    await saveModel(model, dir, { note: 'test' });
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    assert.equal(json.format, 'layers-model');
    assert.deepEqual(json.userDefinedMetadata, { note: 'test' });
    const loaded = await loadModel(dir);
    const after = (loaded.predict(x) as tf.Tensor).dataSync();
    assert.equal(after.length, before.length);
    for (let i = 0; i < before.length; i++) assert.equal(after[i], before[i], `prediction ${i}`);
    // The weights are the same numbers, not just close.
    const wa = model.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = loaded.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(wb, wa);
    // A different model gives different predictions (the comparison above can fail).
    const other = buildCnnLstm({ features: 12, classes: 3, seed: 6 });
    assert.notDeepEqual(Array.from((other.predict(x) as tf.Tensor).dataSync()), Array.from(before));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('loadModel names the file when model.json is missing, corrupt, or weights are truncated', async () => {
  await tf.setBackend('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'model-io-bad-'));
  try {
    await assert.rejects(loadModel(dir), (e: unknown) => isIdsError(e, 'BAD_MODEL') && /model\.json/.test((e as Error).message));
    await saveModel(buildCnnLstm({ features: 8, classes: 2 }), dir);
    await truncate(join(dir, 'weights.bin'), 100);
    await assert.rejects(loadModel(dir), (e: unknown) => isIdsError(e, 'BAD_MODEL') && /weights\.bin/.test((e as Error).message));
    await writeFile(join(dir, 'model.json'), '{not json');
    await assert.rejects(loadModel(dir), (e: unknown) => isIdsError(e, 'BAD_MODEL'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
