import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intOption, numberOption } from '../../shared/options.ts';
import { isIdsError } from '../../shared/errors.ts';

test('absent or empty options are undefined, so the caller picks the default', () => {
  assert.equal(intOption('seed', undefined), undefined);
  assert.equal(intOption('seed', ''), undefined);
  assert.equal(numberOption('speed', undefined, { min: 0.1 }), undefined);
});

test('values in range come back as numbers', () => {
  assert.equal(intOption('http', '8080', { min: 0, max: 65535 }), 8080);
  assert.equal(numberOption('lr', '1e-3'), 0.001);
  assert.equal(intOption('batch-ms', '0', { min: 0 }), 0);
});

test('bad values are BAD_OPTION errors naming the flag and the range', () => {
  const bad = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e) => isIdsError(e, 'BAD_OPTION') && re.test((e as Error).message));
  bad(() => intOption('http', '70000', { min: 0, max: 65535 }), /--http must be an integer in \[0, 65535\], got "70000"/);
  bad(() => intOption('batch', '2.5', { min: 1 }), /--batch must be an integer ≥ 1/);
  bad(() => numberOption('lr', 'fast'), /--lr must be a number, got "fast"/);
  bad(() => intOption('seed', ['1', '2']), /--seed given 2 times/);
  bad(() => numberOption('speed', 'Infinity', { max: 50 }), /--speed must be a number ≤ 50/);
});
