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

test('wasm scaler lookup tables (ports): exact keys map to codes, other values and NaN to the fallback, as scaleRow', async (t) => {
  if (!existsSync(WASM)) return t.skip('asm/build/preprocess.wasm not built');
  const rng = new Rng(7);
  const f = 12;
  const base = randomSpec(rng, f);
  // Features 2, 5 and 9 are lookups with tables of different sizes (one empty: everything falls back).
  const sizes: Record<number, number> = { 2: 50, 5: 1, 9: 0 };
  const lookups = base.features.map((_, j) => {
    if (!(j in sizes)) return null;
    const keys = [...new Set(Array.from({ length: sizes[j] }, () => rng.int(0, 65535)))].sort((a, b) => a - b);
    return { keys, values: keys.map(() => rng.next()), fallback: 0.25 + j / 100 };
  });
  const spec: ScalerSpec = {
    ...base,
    transforms: base.transforms.map((tr, j) => (lookups[j] ? 'lookup' : tr)),
    lookups,
    min: base.min.map((m, j) => (lookups[j] ? 0 : m)),
    max: base.max.map((m, j) => (lookups[j] ? 1 : m)),
  };
  const sc = new WasmScaler(await instantiatePreprocess(readFileSync(WASM)), spec, Array.from({ length: f }, (_, j) => j), f);
  const rows = 500;
  sc.reserve(rows);
  const input = sc.input();
  const raw: number[][] = [];
  let hits = 0;
  for (let i = 0; i < rows; i++) {
    const r = Array.from({ length: f }, (_, j) => {
      const table = lookups[j];
      if (table && table.keys.length && rng.next() < 0.6) {
        hits++;
        return table.keys[rng.int(0, table.keys.length - 1)];
      }
      return table && rng.next() < 0.1 ? NaN : table ? rng.int(0, 65535) + 0.5 : randomValue(rng);
    });
    raw.push(r);
    input.set(r, i * f);
  }
  const out = sc.scale(rows);
  const want = new Float32Array(f);
  for (let i = 0; i < rows; i++) {
    scaleRow(spec, raw[i], want);
    for (let j = 0; j < f; j++) assert.ok(Math.abs(out[i * f + j] - want[j]) <= 1e-6, `row ${i} feature ${j}: ${out[i * f + j]} vs ${want[j]}`);
  }
  assert.ok(hits > 100, `only ${hits} table hits: the test would not see the lookup path`);
  // A key maps to its code, a miss to the fallback (checked directly, not only against the reference).
  const t2 = lookups[2]!;
  input.fill(0, 0, f);
  input[2] = t2.keys[3];
  input[5] = lookups[5]!.keys[0] + 1;
  const one = sc.scale(1);
  assert.ok(Math.abs(one[2] - t2.values[3]) < 1e-6);
  assert.ok(Math.abs(one[5] - lookups[5]!.fallback) < 1e-6);
  assert.ok(Math.abs(one[9] - lookups[9]!.fallback) < 1e-6);
});

test('a scaler with lookups refuses a preprocess.wasm built before them, naming the missing export', async (t) => {
  if (!existsSync(WASM)) return t.skip('asm/build/preprocess.wasm not built');
  const inst = await instantiatePreprocess(readFileSync(WASM));
  const old = Object.fromEntries(Object.entries(inst.exports).filter(([k]) => !k.startsWith('sc_lookup')));
  const spec: ScalerSpec = { features: ['Dst_Port'], transforms: ['lookup'], lookups: [{ keys: [80], values: [0.9], fallback: 0.1 }], min: [0], max: [1] };
  assert.throws(() => new WasmScaler({ exports: old } as WebAssembly.Instance, spec, [0], 1), (e: unknown) => isIdsError(e, 'BAD_BUNDLE') && /sc_lookupReserve/.test((e as Error).message));
  // Without lookups the old module is still fine.
  const plain: ScalerSpec = { features: ['a'], transforms: ['none'], min: [0], max: [1] };
  assert.doesNotThrow(() => new WasmScaler({ exports: old } as WebAssembly.Instance, plain, [0], 1));
});
