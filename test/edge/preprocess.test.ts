import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../shared/random.ts';
import { scaleRow, type ScalerSpec, type FeatureTransform } from '../../shared/scaler.ts';
import { instantiatePreprocess, WasmScaler } from '../../edge/preprocess.ts';
import { isIdsError } from '../../shared/errors.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';

const WASM = join(PROJECT_ROOT, 'asm', 'build', 'preprocess.wasm');

function randomSpec(rng: Rng, f: number): ScalerSpec {
  const transforms: FeatureTransform[] = [];
  const min: number[] = [];
  const max: number[] = [];
  for (let j = 0; j < f; j++) {
    transforms.push(rng.next() < 0.5 ? 'log1p' : 'none');
    const lo = (rng.next() - 0.3) * 100;
    // A few constant features (range 0) exercise the degenerate branch.
    max.push(j % 11 === 3 ? lo : lo + rng.next() * 1000);
    min.push(lo);
  }
  return { features: Array.from({ length: f }, (_, j) => `f${j}`), transforms, min, max };
}

function randomValue(rng: Rng): number {
  const r = rng.next();
  if (r < 0.05) return NaN;
  if (r < 0.1) return Infinity;
  if (r < 0.13) return -Infinity;
  if (r < 0.2) return 0;
  return (rng.next() - 0.4) * Math.pow(10, rng.int(0, 8));
}

test('wasm scaler matches shared/scaler scaleRow on random rows incl. NaN and ±inf', async (t) => {
  if (!existsSync(WASM)) return t.skip('asm/build/preprocess.wasm not built: run npm run build:asm');
  const rng = new Rng(42);
  const f = 40;
  const nIn = 57;
  const spec = randomSpec(rng, f);
  // Model feature j reads a shuffled input column: the map is exercised, not the identity.
  const cols = rng.shuffle(Array.from({ length: nIn }, (_, k) => k)).slice(0, f);
  const inst = await instantiatePreprocess(readFileSync(WASM));
  const sc = new WasmScaler(inst, spec, cols, nIn);
  for (const rows of [1, 7, 300, 1000]) {
    sc.reserve(rows);
    const input = sc.input();
    const raw: number[][] = [];
    for (let i = 0; i < rows; i++) {
      const r: number[] = [];
      for (let k = 0; k < nIn; k++) {
        const v = randomValue(rng);
        r.push(v);
        input[i * nIn + k] = v;
      }
      raw.push(r);
    }
    const out = sc.scale(rows);
    assert.equal(out.length, rows * f);
    const want = new Float32Array(f);
    let maxErr = 0;
    for (let i = 0; i < rows; i++) {
      scaleRow(spec, cols.map((c) => raw[i][c]), want);
      for (let j = 0; j < f; j++) {
        const got = out[i * f + j];
        assert.ok(got >= 0 && got <= 1, `row ${i} feature ${j}: ${got} outside [0,1]`);
        maxErr = Math.max(maxErr, Math.abs(got - want[j]));
      }
    }
    assert.ok(maxErr <= 1e-6, `max |wasm - reference| = ${maxErr} for ${rows} rows`);
  }
});

test('wasm scaler maps +inf to 1, -inf to 0 and NaN like 0', async (t) => {
  if (!existsSync(WASM)) return t.skip('asm/build/preprocess.wasm not built');
  const spec: ScalerSpec = { features: ['a', 'b', 'c'], transforms: ['log1p', 'none', 'none'], min: [0, -10, 5], max: [10, 10, 5] };
  const sc = new WasmScaler(await instantiatePreprocess(readFileSync(WASM)), spec, [0, 1, 2], 3);
  const input = sc.input();
  input.set([Infinity, -Infinity, NaN, NaN, NaN, 6, Math.expm1(5), 0, 4]);
  const out = Array.from(sc.scale(3));
  assert.deepEqual(out.slice(0, 3), [1, 0, 0]);
  assert.deepEqual(out.slice(3, 6), [0, 0.5, 1]);
  assert.ok(Math.abs(out[6] - 0.5) < 1e-6);
  assert.deepEqual(out.slice(7), [0.5, 0]);
});

test('a wasm without the scaler exports or a bad column map is refused with a clear error', async (t) => {
  if (!existsSync(WASM)) return t.skip('asm/build/preprocess.wasm not built');
  // The smallest valid module: magic + version, no exports.
  const empty = await instantiatePreprocess(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  const spec: ScalerSpec = { features: ['a'], transforms: ['none'], min: [0], max: [1] };
  assert.throws(() => new WasmScaler(empty, spec, [0], 1), (e) => isIdsError(e, 'BAD_BUNDLE'));
  const inst = await instantiatePreprocess(readFileSync(WASM));
  assert.throws(() => new WasmScaler(inst, spec, [3], 2), (e) => isIdsError(e, 'BAD_OPTION') && /column map entry 0/.test(e.message));
  await assert.rejects(instantiatePreprocess(new Uint8Array([1, 2, 3])), (e) => isIdsError(e, 'BAD_BUNDLE'));
});
