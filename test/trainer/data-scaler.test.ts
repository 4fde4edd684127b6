import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fitScaler, applyScaler, saveScaler, loadScaler } from '../../trainer/data/scaler-fit.ts';
import { scaleRow } from '../../shared/scaler.ts';
import { isIdsError } from '../../shared/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'iot-ids-scaler-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Columns: a (linear, 0..10), rate (heavy tail, has inf/NaN), flag (0/1), win (-1 sentinel, heavy tail).
const features = ['a', 'rate', 'flag', 'win'];
const rowsOf = (rows: number[][]) => ({ features, X: Float32Array.from(rows.flat()) });
const ds = rowsOf([
  [0, 1, 0, -1],
  [5, 2, 1, 10],
  [10, 3, 0, 20],
  [2, 1e6, 1, 65535],
  [4, Infinity, 0, 30],
  [6, NaN, 1, 40],
  // rows 6, 7: "test" rows, outside the training range
  [20, 5e6, 1, 100],
  [-5, -Infinity, 0, 1],
]);
const train = Uint32Array.from([0, 1, 2, 3, 4, 5]);

test('min/max fitted on the given rows only, over finite values', () => {
  const s = fitScaler(ds, train, { log: 'none' });
  assert.deepEqual(s.features, features);
  assert.deepEqual(s.transforms, ['none', 'none', 'none', 'none']);
  assert.deepEqual(s.min, [0, 1, 0, -1]);
  assert.deepEqual(s.max, [10, 1e6, 1, 65535]);
  const all = fitScaler(ds, Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), { log: 'none' });
  assert.deepEqual(all.min.slice(0, 2), [-5, 1]);
  assert.deepEqual(all.max.slice(0, 2), [20, 5e6]);
});

test("log 'auto': heavy-tailed non-negative features get log1p, small-range ones stay linear", () => {
  const s = fitScaler(ds, train, { log: 'auto' });
  assert.deepEqual(s.transforms, ['none', 'log1p', 'none', 'log1p']);
  assert.ok(Math.abs(s.max[1] - Math.log1p(1e6)) < 1e-9);
  assert.ok(Math.abs(s.min[3] + Math.log(2)) < 1e-12, 'sign-preserving: -1 → -ln 2');
  // A negative-valued heavy tail is not log-scaled.
  const neg = fitScaler(rowsOf([[0, 1, 0, -1000], [1, 1, 1, 1e6], [2, 2, 0, 0]]), Uint32Array.from([0, 1, 2]), { log: 'auto' });
  assert.equal(neg.transforms[3], 'none');
});

test('applyScaler: [0,1], clipping outside the train range, inf → 1, -inf → 0, NaN → 0; matches scaleRow', () => {
  const s = fitScaler(ds, train, { log: 'none' });
  const all = Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  const out = applyScaler(s, ds, all);
  assert.equal(out.length, 8 * 4);
  for (const v of out) assert.ok(v >= 0 && v <= 1, `value ${v} in [0,1]`);
  const at = (r: number, j: number) => out[r * 4 + j];
  assert.equal(at(1, 0), 0.5);
  assert.equal(at(4, 1), 1, 'inf → 1');
  assert.equal(at(5, 1), 0, 'NaN → missing value 0 → below min 1 → 0');
  assert.equal(at(6, 0), 1, 'above train max clipped to 1');
  assert.equal(at(7, 0), 0, 'below train min clipped to 0');
  assert.equal(at(7, 1), 0, '-inf → 0');
  const ref = new Float32Array(4);
  scaleRow(s, ds.X.subarray(12, 16), ref);
  assert.deepEqual([...out.subarray(12, 16)], [...ref]);
});

test('applyScaler maps features by name (another column order) and rejects data lacking a feature', () => {
  const s = fitScaler(ds, train, { log: 'auto' });
  const reordered = { features: ['win', 'flag', 'rate', 'a', 'extra'], X: new Float32Array(5) };
  reordered.X.set([20, 0, 3, 10, 99]);
  const out = applyScaler(s, reordered, Uint32Array.from([0]));
  const direct = applyScaler(s, ds, Uint32Array.from([2]));
  assert.deepEqual([...out], [...direct]);
  assert.throws(() => applyScaler(s, { features: ['a', 'rate'], X: new Float32Array(2) }, Uint32Array.from([0])),
    (e) => isIdsError(e, 'BAD_HEADER') && /flag, win/.test(e.message));
  assert.throws(() => applyScaler(s, ds, Uint32Array.from([8])), (e) => isIdsError(e, 'BAD_OPTION'));
});

test('JSON round-trip, and a broken scaler file is a clear error', () => {
  const s = fitScaler(ds, train, { log: 'auto' });
  const p = join(dir, 'scaler.json');
  saveScaler(p, s);
  const back = loadScaler(p);
  assert.deepEqual(back, s);
  assert.deepEqual(applyScaler(back, ds, train), applyScaler(s, ds, train));

  const bad = (name: string, text: string, re: RegExp) => {
    const q = join(dir, name);
    writeFileSync(q, text);
    assert.throws(() => loadScaler(q), (e) => isIdsError(e, 'BAD_BUNDLE') && e.message.includes(q) && re.test(e.message));
  };
  bad('notjson.json', '{features:', /JSON/);
  bad('short.json', JSON.stringify({ ...s, min: [0] }), /min must have 4/);
  bad('transform.json', JSON.stringify({ ...s, transforms: ['none', 'log2', 'none', 'none'] }), /log2/);
  bad('order.json', JSON.stringify({ ...s, min: [5, 0, 0, 0], max: [1, 1, 1, 1] }), /min 5 > max 1/);
  bad('nullmin.json', JSON.stringify({ ...s, min: [null, 0, 0, 0] }), /finite/);
  assert.throws(() => loadScaler(join(dir, 'absent.json')), (e) => isIdsError(e, 'BAD_OPTION'));
});

test('fitting needs rows and a known log policy', () => {
  assert.throws(() => fitScaler(ds, new Uint32Array(0), { log: 'none' }), (e) => isIdsError(e, 'EMPTY_INPUT'));
  assert.throws(() => fitScaler(ds, train, { log: 'always' as never }), (e) => isIdsError(e, 'BAD_OPTION'));
});
