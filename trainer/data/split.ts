/**
 * Stratified, seeded train/test split by row index. Each class is shuffled on its own and cut at
 * round(n · testFraction), clamped so that a class with ≥ 2 rows has at least one row on each side
 * (a class with one row goes to train). Both index lists come back sorted ascending.
 */
import { Rng } from '../../shared/random.ts';
import { IdsError } from '../../shared/errors.ts';

export interface Split {
  train: Uint32Array;
  test: Uint32Array;
}

/**
 * Splits the rows of `y` (or, when `rows` is given, only those rows: indices into `y`, e.g. the train side of an
 * earlier split, to cut a validation set from it). Returned indices are always indices into `y`.
 * Deterministic for a given seed and input.
 */
export function stratifiedSplit(y: Int32Array, classes: number, testFraction: number, seed: number, rows?: Uint32Array): Split {
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new IdsError('BAD_OPTION', `test fraction must be in (0, 1), got ${testFraction}`);
  }
  if (!Number.isInteger(classes) || classes < 1) throw new IdsError('BAD_OPTION', `classes must be a positive integer, got ${classes}`);
  const n = rows ? rows.length : y.length;
  const rowAt = rows ? (i: number) => rows[i] : (i: number) => i;

  const counts = new Uint32Array(classes);
  for (let i = 0; i < n; i++) {
    const r = rowAt(i);
    const c = y[r];
    if (!(c >= 0 && c < classes) || r >= y.length) {
      throw new IdsError('BAD_OPTION', `row ${r}: label ${c} outside 0..${classes - 1} (or row past ${y.length})`);
    }
    counts[c]++;
  }
  // Rows grouped by class, in input order, so the shuffle below is the only source of order.
  const starts = new Uint32Array(classes + 1);
  for (let c = 0; c < classes; c++) starts[c + 1] = starts[c] + counts[c];
  const grouped = new Uint32Array(n);
  const fill = starts.slice(0, classes);
  for (let i = 0; i < n; i++) {
    const r = rowAt(i);
    grouped[fill[y[r]]++] = r;
  }

  const rng = new Rng(seed);
  let testTotal = 0;
  const testCount = new Uint32Array(classes);
  for (let c = 0; c < classes; c++) {
    const m = counts[c];
    const k = m < 2 ? 0 : Math.min(m - 1, Math.max(1, Math.round(m * testFraction)));
    testCount[c] = k;
    testTotal += k;
  }
  const train = new Uint32Array(n - testTotal);
  const test = new Uint32Array(testTotal);
  let a = 0;
  let b = 0;
  for (let c = 0; c < classes; c++) {
    const group = grouped.subarray(starts[c], starts[c + 1]);
    rng.shuffle(group);
    const k = testCount[c];
    test.set(group.subarray(0, k), b);
    train.set(group.subarray(k), a);
    b += k;
    a += group.length - k;
  }
  return { train: train.sort(), test: test.sort() };
}
