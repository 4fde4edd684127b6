import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_RECORD_CHARS, readRecords, splitQuoted, splitRecord } from '../../trainer/data/csv-lines.ts';
import { isIdsError } from '../../shared/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'iot-ids-csv-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function records(text: string | Buffer): Promise<[string, number][]> {
  const p = join(dir, `f${Math.random().toString(36).slice(2)}.csv`);
  writeFileSync(p, text);
  const out: [string, number][] = [];
  await readRecords(p, (r, line) => void out.push([r, line]));
  return out;
}

test('splitQuoted handles commas, doubled quotes and newlines inside quotes', () => {
  assert.deepEqual(splitQuoted('a,"b,c",d'), ['a', 'b,c', 'd']);
  assert.deepEqual(splitQuoted('"say ""hi""",2'), ['say "hi"', '2']);
  assert.deepEqual(splitQuoted('"x\ny",,'), ['x\ny', '', '']);
  assert.deepEqual(splitQuoted('1, "Web Attack, XSS"'), ['1', 'Web Attack, XSS']);
  assert.deepEqual(splitRecord('1,2,3'), ['1', '2', '3']);
  assert.deepEqual(splitRecord(''), ['']);
});

test('readRecords: LF, CRLF, BOM, missing final newline, line numbers', async () => {
  assert.deepEqual(await records('h1,h2\n1,2\n3,4\n'), [['h1,h2', 1], ['1,2', 2], ['3,4', 3]]);
  assert.deepEqual(await records('\uFEFFh1,h2\r\n1,2\r\n3,4'), [['h1,h2', 1], ['1,2', 2], ['3,4', 3]]);
  // A BOM written as bytes, as Excel does.
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('a,b\n1,2\n')]);
  assert.deepEqual(await records(bom), [['a,b', 1], ['1,2', 2]]);
});

test('readRecords keeps a quoted newline inside one record and counts physical lines', async () => {
  const got = await records('a,b\n1,"two\nlines"\n3,4\n');
  assert.deepEqual(got, [['a,b', 1], ['1,"two\nlines"', 2], ['3,4', 4]]);
  assert.deepEqual(splitRecord(got[1][0]), ['1', 'two\nlines']);
});

test('readRecords: records crossing 1 MiB chunk boundaries arrive whole, quoted or not', async () => {
  const rows: string[] = ['id,text,value'];
  for (let i = 0; i < 40000; i++) rows.push(i % 997 === 0 ? `${i},"q,${i}\nx",${i * 2}` : `${i},plain${i},${i * 2}`);
  const got = await records(rows.join('\n') + '\n');
  assert.equal(got.length, 40001);
  let sum = 0;
  for (let i = 1; i < got.length; i++) {
    const cells = splitRecord(got[i][0]);
    assert.equal(cells.length, 3, `record ${i}: ${got[i][0]}`);
    assert.equal(Number(cells[0]), i - 1);
    sum += Number(cells[2]);
  }
  assert.equal(sum, 2 * ((40000 * 39999) / 2));
});

test('readRecords stops when the sink returns false', async () => {
  const p = join(dir, 'stop.csv');
  writeFileSync(p, 'a\n1\n2\n3\n');
  const seen: string[] = [];
  const r = await readRecords(p, (rec) => (seen.push(rec), seen.length < 2));
  assert.deepEqual(seen, ['a', '1']);
  assert.equal(r.stopped, true);
});

test('readRecords: a missing file is a clear BAD_OPTION naming it', async () => {
  const p = join(dir, 'nope.csv');
  await assert.rejects(readRecords(p, () => {}), (e) => isIdsError(e, 'BAD_OPTION') && e.message.includes(p));
});

test('readRecords: an unbalanced quote fails with BAD_ROW instead of reading the whole file as one record', async () => {
  const p = join(dir, 'unbalanced.csv');
  writeFileSync(p, 'a,b\n1,"oops\n' + '2,3\n'.repeat(1_300_000));
  await assert.rejects(readRecords(p, () => {}), (e) => isIdsError(e, 'BAD_ROW') && e.message.includes(p));
});

test('readRecords: a 32 MB line without a newline fails at once with BAD_ROW naming the cap, not after reading it whole', async () => {
  const p = join(dir, 'long.csv');
  writeFileSync(p, 'a,b\n' + '1'.repeat(32 << 20) + '\n');
  let seen = 0;
  await assert.rejects(readRecords(p, () => void seen++, () => undefined),
    (e) => isIdsError(e, 'BAD_ROW') && e.message.includes(`longer than ${MAX_RECORD_CHARS} characters`) && e.message.includes(`${p}:2`));
  assert.equal(seen, 1, 'the header was delivered');
});
