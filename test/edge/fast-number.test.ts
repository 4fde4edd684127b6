import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fastDecimal } from '../../edge/inputs/fast-number.ts';
import { Rng } from '../../shared/random.ts';

/** What the CSV reader does with a cell: the fast path, else Number(). */
const read = (s: string): number => {
  if (s.length === 0) return NaN; // the reader treats an empty cell as missing before either path
  const f = fastDecimal(`,${s},`, 1, s.length + 1);
  return f === f ? f : Number(s);
};

test('fastDecimal gives exactly the double Number() gives (or declines)', () => {
  const rng = new Rng(17);
  const alphabet = '0123456789.-+eE x';
  let fast = 0;
  for (let i = 0; i < 200_000; i++) {
    let s: string;
    const r = rng.next();
    if (r < 0.6) {
      // Realistic: CICFlowMeter-style decimals with up to 20 digits and up to 12 decimals.
      const int = String(rng.int(0, 10 ** rng.int(0, 10)));
      const dec = rng.next() < 0.6 ? '.' + String(rng.int(0, 10 ** rng.int(1, 12))).padStart(rng.int(1, 13), '0') : '';
      s = (rng.next() < 0.2 ? '-' : '') + int + dec;
    } else if (r < 0.8) {
      s = String((rng.next() - 0.5) * 10 ** rng.int(-8, 20));
    } else {
      s = Array.from({ length: rng.int(0, 8) }, () => alphabet[rng.int(0, alphabet.length)]).join('');
    }
    const want = s.length === 0 ? NaN : Number(s);
    const got = read(s);
    assert.ok(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)), `"${s}": ${got} vs Number() ${want}`);
    if (fastDecimal(s, 0, s.length) === fastDecimal(s, 0, s.length)) fast++;
  }
  assert.ok(fast > 100_000, `fast path taken ${fast} times`);
});

test('edge cases', () => {
  for (const s of ['0', '-0', '5.', '.5', '007', '0.000000000000000000001', '123456789012345', '1234567890123456',
    '9007199254740993', '0.1', '-', '.', '1.2.3', '1e5', '+3', ' 4', 'inf']) {
    const want = s.length === 0 ? NaN : Number(s);
    const got = read(s);
    assert.ok(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)), `"${s}": ${got} vs ${want}`);
  }
  assert.ok(Object.is(fastDecimal('-0', 0, 2), -0));
  assert.ok(Number.isNaN(fastDecimal('1e5', 0, 3)), 'exponents take the slow path');
});
