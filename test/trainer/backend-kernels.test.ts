/**
 * Every kernel we fill on the wasm backend must compute what the cpu backend computes: forward values and
 * gradients (through tf.grad, i.e. the registered backward kernels) within 1e-5 relative.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/backend/index.ts';
import { Rng } from '../../shared/random.ts';
import { isIdsError } from '../../shared/errors.ts';

before(async () => {
  assert.equal(await initBackend('wasm'), 'wasm');
});

function randomTensor(shape: number[], rng: Rng, reluLike = false): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  // reluLike: a third of the values are exactly 0, so max-pool windows have ties (first max must win).
  for (let i = 0; i < n; i++) v[i] = reluLike && rng.next() < 0.33 ? 0 : rng.normal();
  return tf.tensor(v, shape);
}

/** Run fn on both backends with the same inputs (as plain arrays) and compare every output. */
async function compareBackends(
  name: string,
  inputs: { shape: number[]; values: Float32Array }[],
  fn: (...xs: tf.Tensor[]) => tf.Tensor[],
): Promise<void> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    return tf.tidy(() => fn(...inputs.map((i) => tf.tensor(i.values, i.shape))).map((t) => t.dataSync().slice()));
  };
  const cpu = await run('cpu');
  const wasm = await run('wasm');
  assert.equal(cpu.length, wasm.length);
  for (let k = 0; k < cpu.length; k++) {
    assert.equal(cpu[k].length, wasm[k].length, `${name} output ${k} size`);
    let scale = 0;
    for (const v of cpu[k]) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < cpu[k].length; i++) {
      const err = Math.abs(cpu[k][i] - wasm[k][i]);
      assert.ok(
        err <= 1e-5 * Math.max(1, scale),
        `${name} output ${k}[${i}]: cpu ${cpu[k][i]} wasm ${wasm[k][i]} (|err| ${err}, scale ${scale})`,
      );
    }
  }
}

const inputsOf = (rng: Rng, ...specs: [number[], boolean?][]) =>
  specs.map(([shape, relu]) => {
    const t = randomTensor(shape, rng, relu);
    const values = t.dataSync() as Float32Array;
    t.dispose();
    return { shape, values };
  });

const CONV_CASES: { x: number[]; f: number[]; strides: number; pad: 'same' | 'valid' }[] = [
  { x: [3, 1, 11, 1], f: [1, 3, 1, 4], strides: 1, pad: 'same' }, // Conv1D k3 'same', one input channel
  { x: [2, 1, 9, 5], f: [1, 3, 5, 6], strides: 1, pad: 'same' }, // Conv1D k3 'same', several channels
  { x: [2, 5, 7, 3], f: [3, 2, 3, 4], strides: 2, pad: 'valid' }, // a real 2-D case with stride
  { x: [2, 6, 6, 2], f: [3, 3, 2, 3], strides: 1, pad: 'same' },
];

test('Conv2DBackpropFilter and Conv2DBackpropInput fills match cpu (values and gradients)', async () => {
  const rng = new Rng(7);
  for (const c of CONV_CASES) {
    const inputs = inputsOf(rng, [c.x], [c.f]);
    await compareBackends(`conv2d ${JSON.stringify(c)}`, inputs, (x, f) => {
      const y = tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.strides, c.pad);
      // A non-uniform upstream gradient so every output position is weighted differently.
      const w = tf.range(1, y.size + 1).reshape(y.shape).div(y.size);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad).mul(w).sum(),
      )([x, f]);
      return [y, ...g];
    });
  }
});

test('Conv1D (as used by the model) gradients match cpu', async () => {
  const rng = new Rng(11);
  const inputs = inputsOf(rng, [[4, 13, 3]], [[3, 3, 8]]);
  await compareBackends('conv1d', inputs, (x, f) =>
    tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.conv1d(a as tf.Tensor3D, b as tf.Tensor3D, 1, 'same').square().sum(),
    )([x, f]),
  );
});

test('MaxPoolGrad fill matches cpu, including ties and an odd width', async () => {
  const rng = new Rng(3);
  for (const [shape, size, stride, pad] of [
    [[3, 1, 13, 4], [1, 2], [1, 2], 'valid'],
    [[2, 5, 6, 3], [2, 2], [2, 2], 'valid'],
    [[2, 5, 5, 2], [3, 3], [2, 2], 'same'],
  ] as [number[], [number, number], [number, number], 'same' | 'valid'][]) {
    const inputs = inputsOf(rng, [shape, true]);
    await compareBackends(`maxPool ${shape} ${size} ${pad}`, inputs, (x) => {
      const w = tf.range(1, 1 + tf.maxPool(x as tf.Tensor4D, size, stride, pad).size).div(7);
      return [
        tf.grad((a: tf.Tensor) =>
          tf.maxPool(a as tf.Tensor4D, size, stride, pad).reshape([-1]).mul(w).sum(),
        )(x),
      ];
    });
  }
});

test('BatchMatMul fill (transpose first) matches cpu for every transpose combination, 2-D and batched', async () => {
  const rng = new Rng(5);
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
    for (const batch of [0, 3]) {
      const lead = batch ? [batch] : [];
      const aShape = [...lead, ...(ta ? [4, 5] : [5, 4])];
      const bShape = [...lead, ...(tb ? [6, 4] : [4, 6])];
      const inputs = inputsOf(rng, [aShape], [bShape]);
      await compareBackends(`matMul ta=${ta} tb=${tb} batch=${batch}`, inputs, (a, b) => {
        const y = tf.matMul(a, b, ta, tb);
        // The backward pass of a matmul is itself two transposed matmuls.
        const g = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.matMul(p, q, ta, tb).square().sum())([a, b]);
        return [y, ...g];
      });
    }
  }
});

test('the fills are what the wasm backend runs', () => {
  for (const name of ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'BatchMatMul']) {
    const k = tf.getKernel(name, 'wasm');
    assert.ok(k, `${name} registered`);
    assert.equal(k.setupFunc, undefined, `${name} is our fill (stock wasm kernels have a setup function)`);
  }
});

test('filled kernels leak no wasm memory', async () => {
  await tf.setBackend('wasm');
  const x = tf.randomNormal([2, 1, 9, 3]);
  const f = tf.randomNormal([1, 3, 3, 4]);
  const step = () =>
    tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').sum())([x, f]));
  step().forEach((t) => t.dispose());
  const before = tf.memory().numBytes;
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  for (let i = 0; i < 20; i++) step().forEach((t) => t.dispose());
  assert.equal(tf.memory().numBytes, before);
  assert.equal(backend.numDataIds(), ids);
  x.dispose();
  f.dispose();
});

test('initBackend leaves no emscripten crash handlers behind; unknown or missing backends are BAD_OPTION', async () => {
  assert.equal(await initBackend('wasm'), 'wasm');
  const names = (ev: 'uncaughtException' | 'unhandledRejection') =>
    (ev === 'uncaughtException' ? process.listeners('uncaughtException') : process.listeners('unhandledRejection')).map((l) => String(l));
  for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
    assert.ok(!names(ev).some((src) => /ExitStatus|throw reason/.test(src)), `${ev} handlers: ${names(ev)}`);
  }
  // Where tfjs-node is not installed (these machines): an explicit request says so; 'auto' falls through to wasm.
  const name = '@tensorflow/tfjs-node';
  const hasNode = await import(name).then(() => true, () => false);
  if (!hasNode) {
    await assert.rejects(initBackend('node'), (e: unknown) => isIdsError(e, 'BAD_OPTION') && /tfjs-node/.test((e as Error).message));
    assert.equal(await initBackend('auto'), 'wasm');
  }
  await assert.rejects(initBackend('gpu' as never), (e: unknown) => isIdsError(e, 'BAD_OPTION'));
  assert.equal(await initBackend('cpu'), 'cpu');
  assert.equal(await initBackend('wasm'), 'wasm');
});
