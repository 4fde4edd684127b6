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

test("ports 'benign-rate': a lookup of each port's smoothed Normal share on the fitted rows, saved and reloaded", () => {
  // Dst_Port 80: 6 Normal of 6; 23: 0 of 6; 9000: 1 flow (under PORT_MIN_ROWS: falls back); test row port 443 unseen.
  const feats = ['Dst_Port', 'x'];
  const X: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < 6; i++) X.push(80, i), y.push(0);
  for (let i = 0; i < 6; i++) X.push(23, i), y.push(1);
  X.push(9000, 1), y.push(0);
  X.push(443, 1), y.push(1); // row 13: not fitted
  const data = { features: feats, X: Float32Array.from(X) };
  const fitRows = Uint32Array.from({ length: 13 }, (_, i) => i);
  const s = fitScaler(data, fitRows, { log: 'none', ports: 'benign-rate', y, normal: 0 });
  assert.deepEqual(s.transforms, ['lookup', 'none']);
  const prior = 7 / 13;
  const t = s.lookups![0]!;
  assert.deepEqual(t.keys, [23, 80]);
  assert.ok(Math.abs(t.values[0] - (0 + 10 * prior) / 16) < 1e-12);
  assert.ok(Math.abs(t.values[1] - (6 + 10 * prior) / 16) < 1e-12);
  assert.ok(Math.abs(t.fallback - prior) < 1e-12);
  assert.equal(s.lookups![1], null);
  const out = applyScaler(s, data, Uint32Array.from([0, 6, 12, 13]));
  assert.ok(out[0] > out[4] && out[4] > out[2], `80 (${out[0]}) above the overall share (${out[4]}) above 23 (${out[2]})`);
  assert.ok(Math.abs(out[4] - prior) < 1e-6 && Math.abs(out[6] - prior) < 1e-6, 'rare and unseen ports get the overall share');
  const path = join(dir, 'ports.json');
  saveScaler(path, s);
  assert.deepEqual(loadScaler(path), s);
  // Without a Normal class (or labels) there is nothing to measure: ports stay numbers.
  assert.deepEqual(fitScaler(data, fitRows, { log: 'none', ports: 'benign-rate', y, normal: -1 }).transforms, ['none', 'none']);
  // 'value' (the default) leaves them numbers too.
  assert.equal(fitScaler(data, fitRows, { log: 'none' }).lookups, undefined);
});

test('a scaler file with a malformed lookup table is refused with the feature named', () => {
  const good = { features: ['Dst_Port'], transforms: ['lookup'], lookups: [{ keys: [23, 80], values: [0.1, 0.9], fallback: 0.5 }], min: [0], max: [1] };
  const bad = [
    { ...good, lookups: [{ keys: [80, 23], values: [0.1, 0.9], fallback: 0.5 }] }, // not ascending
    { ...good, lookups: [{ keys: [23, 80], values: [0.1], fallback: 0.5 }] }, // lengths differ
    { ...good, lookups: [null] }, // lookup without a table
    { ...good, transforms: ['none'] }, // a table on a non-lookup feature
    { ...good, lookups: [] }, // wrong length
  ];
  const path = join(dir, 'lookup.json');
  writeFileSync(path, JSON.stringify(good));
  assert.deepEqual(loadScaler(path), good);
  for (const b of bad) {
    writeFileSync(path, JSON.stringify(b));
    assert.throws(() => loadScaler(path), (e: unknown) => isIdsError(e, 'BAD_BUNDLE') && /lookup/.test((e as Error).message), JSON.stringify(b));
  }
  // A transform the hub does not know (its wasm would run it as 'none') is refused, named.
  writeFileSync(path, JSON.stringify({ features: ['a'], transforms: ['sqrt'], min: [0], max: [1] }));
  assert.throws(() => loadScaler(path), (e: unknown) => isIdsError(e, 'BAD_BUNDLE') && /unknown transform 'sqrt'/.test((e as Error).message));
});
