import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fastNumber, parseCell, parseRecord, BAD, SKIP, LABEL, type ParsedRecord } from '../../trainer/data/row-parse.ts';
import { Rng } from '../../shared/random.ts';

test('fastNumber is bit-identical to Number() wherever it answers, and declines what it cannot read exactly', () => {
  const rng = new Rng(3);
  const samples: string[] = ['0', '-0', '0.0', '1.', '.5', '+7', '00012.500', '123456789012345', '0.000001', '9.999999999999999'];
  for (let i = 0; i < 20000; i++) {
    const v = (rng.next() - 0.3) * 10 ** rng.int(-8, 12);
    samples.push(String(v), v.toFixed(rng.int(0, 12)), String(Math.round(v)), v.toPrecision(rng.int(1, 16)));
  }
  let fast = 0;
  for (const s of samples) {
    const f = fastNumber(s, 0, s.length);
    if (f === f) {
      fast++;
      assert.ok(Object.is(f, Number(s)), `${s}: fast ${f} vs Number ${Number(s)}`);
    }
  }
  assert.ok(fast > samples.length * 0.5, `fast path used for ${fast}/${samples.length}`);
  for (const s of ['1e5', 'inf', '', '-', '.', '1.2.3', '12345678901234567', ' 1', '0x10']) assert.ok(Number.isNaN(fastNumber(s, 0, s.length)), s);
});

test('parseCell: non-finite spellings kept, blanks missing, text BAD', () => {
  assert.equal(parseCell('Infinity'), Infinity);
  assert.equal(parseCell('-inf'), -Infinity);
  assert.equal(parseCell(' INF '), Infinity);
  assert.ok(Number.isNaN(parseCell('NaN') as number));
  assert.ok(Number.isNaN(parseCell('') as number));
  assert.ok(Number.isNaN(parseCell('   ') as number));
  assert.equal(parseCell('1e3'), 1000);
  assert.equal(parseCell('abc'), BAD);
  assert.equal(parseCell('constructor'), BAD);
});

test('parseCell reads decimals only: hex, binary, octal and digit separators are BAD, not numbers', () => {
  for (const s of ['0x10', '0X1f', '0b1', '0o7', '1_000', '1e', '--1', '1..2']) assert.equal(parseCell(s), BAD, s);
  assert.equal(parseCell(' 12 '), 12);
  assert.equal(parseCell('+3'), 3);
  assert.equal(parseCell('.5'), 0.5);
  assert.equal(parseCell('5.'), 5);
  assert.equal(parseCell('-1.25E-2'), -0.0125);
  const values = new Float64Array(1);
  const out: ParsedRecord = { cells: 0, badCell: -1, label: '' };
  parseRecord('0x10,Normal', Int32Array.of(0, LABEL), values, out);
  assert.equal(out.badCell, 0, 'the record with 0x10 is flagged');
});

test('parseRecord: slots, label, cell count, first bad cell, quoted records', () => {
  const slots = Int32Array.from([SKIP, 1, 0, LABEL]);
  const values = new Float64Array(2);
  const out: ParsedRecord = { cells: 0, badCell: -1, label: '' };
  parseRecord('id,2.5,-3,Mirai', slots, values, out);
  assert.deepEqual([...values], [-3, 2.5]);
  assert.deepEqual(out, { cells: 4, badCell: -1, label: 'Mirai' });
  parseRecord('id,x,1e2,Normal,extra', slots, values, out);
  assert.equal(out.cells, 5);
  assert.equal(out.badCell, 1);
  assert.equal(values[0], 100);
  parseRecord('"a,b",inf,,"Web Attack, XSS"', slots, values, out);
  assert.deepEqual(out, { cells: 4, badCell: -1, label: 'Web Attack, XSS' });
  assert.equal(values[1], Infinity);
  assert.ok(Number.isNaN(values[0]));
  parseRecord('id,1', slots, values, out);
  assert.deepEqual(out, { cells: 2, badCell: -1, label: '' });
});
