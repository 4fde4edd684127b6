import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportOnnx } from '../../trainer/export/onnx-export.ts';
import { decodeModel, encodeModel, opCounts } from '../../trainer/export/onnx-model.ts';
import { calibrate } from '../../trainer/export/calibrate.ts';
import { activationParams, quantizeQdq, quantizeWeights, quantizableTensors } from '../../trainer/export/quantize.ts';
import { argmaxRows, openSession } from '../../trainer/export/runtimes.ts';
import { isIdsError } from '../../shared/errors.ts';
import { randomCnnLstm, randomRows } from './export-fixture.ts';

test('activation parameters: uint8 range always holds 0; ReLU outputs get zero point 0', () => {
  const r = activationParams({ min: 0, max: 2.55 });
  assert.ok(Math.abs(r.scale - 0.01) < 1e-12 && r.zeroPoint === 0, JSON.stringify(r));
  const p = activationParams({ min: -1, max: 1 });
  assert.ok(Math.abs(p.scale - 2 / 255) < 1e-12);
  assert.equal(p.zeroPoint, 128);
  assert.equal(activationParams({ min: 0.2, max: 0.7 }).zeroPoint, 0); // widened to [0, 0.7]
  assert.equal(activationParams({ min: 0, max: 0 }).scale, 1); // never a zero scale
});

test('weights: symmetric int8 per output channel round-trips within half a step', () => {
  // dims [out=2, in=1, k=3]: channel 1 is 100× larger than channel 0.
  const w = new Float32Array([0.01, -0.02, 0.005, 1, -2, 0.5]);
  const { q, scales } = quantizeWeights(w, [2, 1, 3], 0, true);
  assert.equal(scales.length, 2);
  assert.ok(Math.abs(scales[0] - 0.02 / 127) < 1e-9 && Math.abs(scales[1] - 2 / 127) < 1e-9);
  assert.deepEqual([q[1], q[4]], [-127, -127]); // each channel's largest |w| maps to the end of the range
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(q[i] * scales[i < 3 ? 0 : 1] - w[i]) <= scales[i < 3 ? 0 : 1] / 2 + 1e-9);
  // Per tensor, the small channel loses its precision: the reason for per-channel scales.
  const t = quantizeWeights(w, [2, 1, 3], 0, false);
  assert.equal(t.scales.length, 1);
  assert.deepEqual([...t.q.subarray(0, 3)], [1, -1, 0]);
  // MatMul weights [in=2, out=3], per column (axis 1).
  const m = quantizeWeights(new Float32Array([1, 10, 100, -1, -10, -100]), [2, 3], 1, true);
  assert.deepEqual([...m.q], [127, 127, 127, -127, -127, -127]);
});

test('calibration: min-max is the observed range; the percentile range sits inside it', async () => {
  const F = 16;
  const ex = exportOnnx(randomCnnLstm(F, 3, 4));
  const X = randomRows(300, F, 8);
  const tensors = quantizableTensors(ex.model);
  assert.ok(tensors.includes('conv1_2_relu_out') && tensors.includes('lstm_last_out'), tensors.join());
  const cal = await calibrate(ex.model, tensors, X, 300, { percentile: 99 });
  // The input transposed to NCW holds exactly X's values.
  const r = cal.ranges.minmax.to_ncw_out;
  assert.equal(r.min, Math.min(...X));
  assert.equal(r.max, Math.max(...X));
  for (const t of tensors) {
    const mm = cal.ranges.minmax[t];
    const pc = cal.ranges.percentile[t];
    assert.ok(pc.min >= mm.min - 1e-6 && pc.max <= mm.max + 1e-6, `${t}: percentile ${JSON.stringify(pc)} outside ${JSON.stringify(mm)}`);
  }
  assert.equal(cal.ranges.minmax.conv1_1_relu_out.min, 0);
  assert.ok(cal.ranges.percentile.conv2_2_relu_out.max < cal.ranges.minmax.conv2_2_relu_out.max);
  await assert.rejects(calibrate(ex.model, tensors, X, 7), (e: unknown) => isIdsError(e, 'BAD_OPTION'));
});

test('int8 QDQ model: < 0.5× the fp32 size, close to fp32, and fused into QLinearConv by onnxruntime', async () => {
  const F = 78;
  const ex = exportOnnx(randomCnnLstm(F, 5, 3));
  const X = randomRows(512, F, 5);
  const T = randomRows(400, F, 6);
  const cal = await calibrate(ex.model, quantizableTensors(ex.model), X, 512);
  const fp = await openSession('ort-node', ex.bytes);
  const ref = (await fp.run(T, 400)).probabilities;
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-q-'));
  for (const lstm of ['int8-weights', 'dynamic', 'fp32'] as const) {
    const q = quantizeQdq(ex.model, { ranges: cal.ranges.minmax, lstm, keepFp32: ['conv1_1'] });
    const bytes = encodeModel(q);
    const ops = opCounts(q);
    if (lstm !== 'fp32') assert.ok(bytes.length <= 0.5 * ex.bytes.length, `${lstm}: ${bytes.length} vs fp32 ${ex.bytes.length}`);
    if (lstm === 'dynamic') assert.equal(ops['com.microsoft:DynamicQuantizeLSTM'], 1);
    const optPath = join(dir, `${lstm}.onnx`);
    const s = await openSession('ort-node', bytes, { optimizedModelFilePath: optPath });
    const p = (await s.run(T, 400)).probabilities;
    let maxDiff = 0;
    for (let i = 0; i < p.length; i++) maxDiff = Math.max(maxDiff, Math.abs(p[i] - ref[i]));
    const a = argmaxRows(p, 5);
    const b = argmaxRows(ref, 5);
    const agree = a.filter((v, i) => v === b[i]).length / a.length;
    assert.ok(maxDiff < 0.1 && agree > 0.9, `${lstm}: max |Δp| ${maxDiff}, argmax agreement ${agree}`);
    const opt = opCounts(decodeModel(new Uint8Array(readFileSync(optPath))));
    assert.equal(opt['com.microsoft:QLinearConv'], 3, `${lstm}: optimised graph ${JSON.stringify(opt)}`);
    // The per-step Dense and the classifier are QGemms; the only DequantizeLinear left feeds the LSTM its input
    // (plus its weights' in int8-weights form); the five ReLUs run on bytes as Max.
    assert.equal(opt['com.microsoft:QGemm'], 2, JSON.stringify(opt));
    assert.equal(opt.DequantizeLinear, lstm === 'int8-weights' ? 3 : 1, JSON.stringify(opt));
    assert.equal(opt.Max, 5, JSON.stringify(opt));
    assert.equal(opt.Relu, undefined, JSON.stringify(opt));
    await s.release();
  }
  // A graph without ranges for its tensors is refused, naming the tensor.
  assert.throws(() => quantizeQdq(ex.model, { ranges: {} }), (e: unknown) => isIdsError(e, 'BAD_MODEL') && /to_ncw_out/.test((e as Error).message));
});

test('the int8 model passes the ONNX reference checker too', async (t) => {
  const { onnxChecker } = await import('./export-fixture.ts');
  const check = onnxChecker();
  if (!check) {
    t.skip('python3-onnx not available at /usr/bin/python3 (apt-get install -y python3-onnx): checker skipped');
    return;
  }
  const ex = exportOnnx(randomCnnLstm(20, 3, 3));
  const cal = await calibrate(ex.model, quantizableTensors(ex.model), randomRows(200, 20, 5), 200);
  const path = join(mkdtempSync(join(tmpdir(), 'iot-ids-q-')), 'model.int8.onnx');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(path, encodeModel(quantizeQdq(ex.model, { ranges: cal.ranges.minmax, lstm: 'int8-weights', keepFp32: ['conv1_1'] })));
  const r = check(path);
  assert.ok(r.ok, r.output);
});
