import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset, type DatasetOptions } from '../../trainer/data/dataset.ts';
import { isIdsError, type ErrorCode } from '../../shared/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'iot-ids-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const file = (text: string, name = `d${seq++}.csv`): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

// A small IoTID20-format file: identifiers, ports, protocol, three features, the three label columns.
const HEADER = 'Flow_ID,Src_IP,Src_Port,Dst_IP,Dst_Port,Protocol,Timestamp,Flow_Duration,Tot_Fwd_Pkts,Flow_Byts/s,Label,Cat,Sub_Cat';
const row = (dur: number | string, pkts: number | string, rate: number | string, cat = 'Mirai', dport = 80, proto = 6) =>
  `1.1.1.1-2.2.2.2-${dport}-6,1.1.1.1,4444,2.2.2.2,${dport},${proto},25/07/2019 03:25:53 AM,${dur},${pkts},${rate},Anomaly,${cat},${cat}-x`;
const GOOD = [HEADER, row(10, 1, 100, 'Mirai'), row(20, 2, 200, 'Normal', 443), row(30, 3, 300, 'DoS', 23, 17), row(40, 4, 400, 'Mirai')].join('\n') + '\n';

async function rejectsWith(opts: DatasetOptions, code: ErrorCode, ...mention: string[]) {
  await assert.rejects(loadDataset(opts), (e: unknown) => {
    assert.ok(isIdsError(e, code), `expected IdsError ${code}, got ${String(e)}`);
    for (const m of mention) assert.ok(e.message.includes(m), `message "${e.message}" should mention "${m}"`);
    return true;
  });
}

test('IoTID20 format: identifiers and source port dropped, schema order, Normal first, raw values', async () => {
  const ds = await loadDataset({ files: [file(GOOD)] });
  assert.deepEqual(ds.features, ['Dst_Port', 'Protocol', 'Flow_Duration', 'Tot_Fwd_Pkts', 'Flow_Byts/s']);
  assert.deepEqual(ds.labels, ['Normal', 'DoS', 'Mirai']);
  assert.equal(ds.rows, 4);
  assert.deepEqual([...ds.y], [2, 0, 1, 2]);
  assert.deepEqual([...ds.X.subarray(5, 10)], [443, 6, 20, 2, 200]);
  assert.deepEqual(ds.report.classCounts, { Normal: 1, DoS: 1, Mirai: 2 });
  for (const c of ['Flow_ID', 'Src_IP', 'Dst_IP', 'Timestamp', 'Src_Port', 'Label', 'Sub_Cat']) {
    assert.ok(ds.report.ignoredColumns.some((x) => x.startsWith(c + ' ')), `${c} reported as ignored`);
  }
  assert.equal(ds.report.rowsRead, 4);
  assert.equal(ds.report.rowsKept, 4);
});

test('ports, protocol and drop options', async () => {
  const p = file(GOOD);
  assert.deepEqual((await loadDataset({ files: [p], ports: 'none' })).features, ['Protocol', 'Flow_Duration', 'Tot_Fwd_Pkts', 'Flow_Byts/s']);
  // Src_Port is the same on every row: kept by 'both', then removed as constant (and listed).
  const both = await loadDataset({ files: [p], ports: 'both' });
  assert.deepEqual(both.report.constantColumns, ['Src_Port']);
  const noProto = await loadDataset({ files: [p], keepProtocol: false, drop: ['Flow Bytes/s', 'tot fwd pkts'] });
  assert.deepEqual(noProto.features, ['Dst_Port', 'Flow_Duration']);
  await rejectsWith({ files: [p], ports: 'all' as never }, 'BAD_OPTION', 'ports');
});

test('label column by another name, matched ignoring case and spaces; label map drops and counts', async () => {
  const ds = await loadDataset({ files: [file(GOOD)], labelColumn: ' sub cat ' });
  assert.deepEqual(ds.labels, ['Normal-x', 'DoS-x', 'Mirai-x'].sort());
  assert.ok(ds.report.ignoredColumns.includes('Cat (another label column)'));
  const mapped = await loadDataset({ files: [file(GOOD)], labelMap: { Mirai: 'Attack', Normal: 'Normal' } });
  assert.deepEqual(mapped.labels, ['Normal', 'Attack']);
  assert.equal(mapped.rows, 3);
  assert.equal(mapped.report.skipped.unmappedLabel, 1);
  assert.match(mapped.report.examples[0], /d\d+\.csv:4: label 'DoS' is not in the class map/);
  // Prototype names are not labels.
  const proto = await loadDataset({ files: [file([HEADER, row(1, 1, 1, 'constructor'), row(2, 2, 2, 'Mirai')].join('\n'))], labelMap: { Mirai: 'Mirai' } });
  assert.equal(proto.report.skipped.unmappedLabel, 1);
});

test('CIC-IDS2017 dialects: leading spaces, long names, unknown columns ignored, duplicated column keeps the first', async () => {
  const head = 'id, Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp, Flow Duration,' +
    ' Total Fwd Packets, Fwd Header Length, Bwd Header Length, Fwd Header Length,Total TCP Flow Time, Label,Attempted Category';
  const r = (id: number, hdr: number, label: string) =>
    `${id},f,1.1.1.1,5555,2.2.2.2,${80 + id},${id % 2 ? 6 : 17},2017-07-07 13:39:36,${id * 10},${id},${hdr},${7 + id},999,5,${label},-1`;
  const p = file([head, r(1, 40, 'BENIGN'), r(2, 60, 'DDoS'), r(3, 80, 'BENIGN')].join('\n') + '\n');
  const ds = await loadDataset({ files: [p], labelColumn: 'Label' });
  assert.deepEqual(ds.features, ['Dst_Port', 'Protocol', 'Flow_Duration', 'Tot_Fwd_Pkts', 'Fwd_Header_Len', 'Bwd_Header_Len']);
  assert.deepEqual(ds.report.constantColumns, []);
  // The first 'Fwd Header Length' (40), not the duplicate (999).
  assert.deepEqual([...ds.X.subarray(0, 6)], [81, 6, 10, 1, 40, 8]);
  const ign = ds.report.ignoredColumns;
  for (const c of ['id (not in the schema)', 'Total TCP Flow Time (not in the schema)', 'Attempted Category (not in the schema)']) assert.ok(ign.includes(c), c);
  assert.ok(ign.some((c) => c.startsWith('Fwd Header Length (duplicate')), ign.join('; '));
  assert.deepEqual(ds.labels, ['BENIGN', 'DDoS']);
});

test('bad header: no label column, no known feature, headerless data', async () => {
  const noLabel = file('Flow_Duration,Tot_Fwd_Pkts\n1,2\n');
  await rejectsWith({ files: [noLabel] }, 'BAD_HEADER', noLabel, "'Cat'");
  const noFeature = file('foo,bar,Cat\n1,2,Mirai\n');
  await rejectsWith({ files: [noFeature] }, 'BAD_HEADER', noFeature, 'known feature');
  const headerless = file(GOOD.split('\n').slice(1).join('\n'));
  await rejectsWith({ files: [headerless] }, 'BAD_HEADER', headerless, 'label column', 'known feature');
});

test('empty inputs: 0-byte file, blank file, no rows kept, empty folder; missing file', async () => {
  const empty = file('');
  await rejectsWith({ files: [empty] }, 'EMPTY_INPUT', empty);
  await rejectsWith({ files: [file('\n\n  \n')] }, 'EMPTY_INPUT', 'no header');
  await rejectsWith({ files: [file(HEADER + '\n')] }, 'EMPTY_INPUT', 'no rows kept');
  await rejectsWith({ files: [file(GOOD)], labelMap: { Nothing: 'x' } }, 'EMPTY_INPUT', '4 unmapped label');
  const folder = join(dir, 'empty-folder');
  mkdirSync(folder);
  await rejectsWith({ files: [folder] }, 'EMPTY_INPUT', folder);
  const missing = join(dir, 'missing.csv');
  await rejectsWith({ files: [missing] }, 'BAD_OPTION', missing);
  await rejectsWith({ files: [] }, 'BAD_OPTION');
});

test('malformed rows are counted skips with file:line examples, never a crash', async () => {
  const lines = [
    HEADER,
    row(10, 1, 100),                     // 2 ok
    row(20, 2, 200) + ',extra',          // 3 too many cells
    row(30, 3, 300).split(',').slice(0, 9).join(','), // 4 too few
    row('abc', 4, 400),                  // 5 text in numeric cell
    row(50, 5, 500, ''),                 // 6 empty label
    row(60, 6, 600),                     // 7 ok
    row(70, 7, 700, 'Normal'),           // 8 ok
    row(80, 8, 800).slice(0, 40),        // 9 truncated last line (file cut mid-row, no newline)
  ];
  const p = file(lines.join('\n'));
  const ds = await loadDataset({ files: [p] });
  assert.equal(ds.rows, 3);
  assert.equal(ds.report.rowsRead, 8);
  assert.deepEqual(ds.report.skipped, { wrongCellCount: 3, badNumber: 1, unmappedLabel: 0, emptyLabel: 1 });
  assert.deepEqual(ds.report.files, [{ path: p, rows: 3, skipped: 5 }]);
  const ex = ds.report.examples.join('\n');
  for (const where of [':3: 14 cells', ':4: 9 cells', ":5: column 'Flow_Duration' holds 'abc'", ':6: empty label', ':9: ']) {
    assert.ok(ex.includes(p + where), `examples mention ${where}:\n${ex}`);
  }
});

test('inf, Infinity, -inf, NaN and empty cells are kept as non-finite values and counted per feature', async () => {
  const p = file([HEADER, row(10, 1, 'inf'), row(20, '', 'Infinity'), row(30, 3, '-inf'), row('NaN', 4, 5), row(' ', 5, 6)].join('\n') + '\n');
  const ds = await loadDataset({ files: [p] });
  assert.equal(ds.rows, 5);
  const col = (name: string) => {
    const j = ds.features.indexOf(name);
    return Array.from({ length: ds.rows }, (_, r) => ds.X[r * ds.features.length + j]);
  };
  assert.deepEqual(col('Flow_Byts/s'), [Infinity, Infinity, -Infinity, 5, 6]);
  assert.deepEqual(col('Tot_Fwd_Pkts'), [1, NaN, 3, 4, 5]);
  assert.deepEqual(col('Flow_Duration'), [10, 20, 30, NaN, NaN]);
  assert.deepEqual(ds.report.nonFinite, { 'Flow_Byts/s': 3, Tot_Fwd_Pkts: 1, Flow_Duration: 2 });
  assert.equal(ds.report.skipped.badNumber, 0);
});

test('constant columns are removed from features and listed', async () => {
  const p = file([HEADER, row(10, 7, 1), row(20, 7, 2), row(30, 7, 3)].join('\n'));
  const ds = await loadDataset({ files: [p] });
  assert.deepEqual(ds.report.constantColumns, ['Dst_Port', 'Protocol', 'Tot_Fwd_Pkts']);
  assert.deepEqual(ds.features, ['Flow_Duration', 'Flow_Byts/s']);
  assert.deepEqual([...ds.X], [10, 1, 20, 2, 30, 3]);
});

test('dedupe removes exact duplicates (features + label) only, and counts them', async () => {
  const p = file([HEADER, row(10, 1, 1), row(10, 1, 1), row(10, 1, 1, 'Normal'), row(11, 1, 1), row(10, 1, 1)].join('\n'));
  const plain = await loadDataset({ files: [p] });
  assert.equal(plain.rows, 5);
  assert.equal(plain.report.duplicatesRemoved, 0);
  const ds = await loadDataset({ files: [p], dedupe: true });
  assert.equal(ds.rows, 3);
  assert.equal(ds.report.duplicatesRemoved, 2);
  assert.deepEqual(ds.report.classCounts, { Normal: 1, Mirai: 2 });
  // Rows differing only in identifiers are duplicates: identifiers are not features.
  const ids = file([HEADER, row(10, 1, 1), row(10, 1, 1).replace('1.1.1.1,', '9.9.9.9,'), row(12, 1, 1)].join('\n'));
  assert.equal((await loadDataset({ files: [ids], dedupe: true })).rows, 2);
});

test('folders: every *.csv sorted, header-only files are fine, incompatible feature sets name both files', async () => {
  const folder = join(dir, 'folder');
  mkdirSync(folder);
  writeFileSync(join(folder, 'b.csv'), [HEADER, row(30, 3, 3, 'DoS'), row(40, 4, 4)].join('\n'));
  writeFileSync(join(folder, 'a.csv'), [HEADER, row(10, 1, 1, 'Normal')].join('\n'));
  writeFileSync(join(folder, 'c.csv'), HEADER);
  writeFileSync(join(folder, 'notes.txt'), 'not data');
  const ds = await loadDataset({ files: [folder] });
  assert.deepEqual(ds.report.files.map((f) => [f.path.slice(folder.length + 1), f.rows]), [['a.csv', 1], ['b.csv', 2], ['c.csv', 0]]);
  assert.deepEqual(ds.labels, ['Normal', 'DoS', 'Mirai']);
  assert.deepEqual([...ds.y], [0, 1, 2]);
  const other = file('Flow_Duration,Tot_Bwd_Pkts,Cat\n1,2,Mirai\n', 'other.csv');
  await rejectsWith({ files: [folder, other] }, 'BAD_HEADER', join(folder, 'a.csv'), other, 'Tot_Bwd_Pkts');
});

test('maxRows stops early; onProgress reports rows and bytes', async () => {
  const lines = [HEADER];
  for (let i = 0; i < 70000; i++) lines.push(row(i, i % 7, i % 13, i % 3 ? 'Mirai' : 'Normal'));
  const p = file(lines.join('\n') + '\n');
  const calls: [number, number, number][] = [];
  const ds = await loadDataset({ files: [p], onProgress: (r, b, t) => calls.push([r, b, t]) });
  assert.equal(ds.rows, 70000);
  const last = calls.at(-1)!;
  assert.equal(last[0], 70000);
  assert.equal(last[1], last[2]);
  assert.ok(calls.length >= 2);
  const few = await loadDataset({ files: [p], maxRows: 1000 });
  assert.equal(few.rows, 1000);
  assert.equal(few.report.rowsKept, 1000);
  assert.equal(few.X[999 * few.features.length + few.features.indexOf('Flow_Duration')], 999);
});

test('a trailing comma on every line (an empty last header cell) is ignored, not a wrong cell count', async () => {
  const p = file([HEADER + ',', row(10, 1, 1) + ',', row(20, 2, 2, 'Normal') + ','].join('\r\n') + '\r\n');
  const ds = await loadDataset({ files: [p] });
  assert.equal(ds.rows, 2);
  assert.ok(ds.report.ignoredColumns.includes('column 14 (empty name) (not in the schema)'), ds.report.ignoredColumns.join('; '));
});

test('quoted cells (commas inside a label) are read correctly', async () => {
  const p = file([HEADER, row(10, 1, 1, '"Web Attack, XSS"'), row(20, 2, 2, 'Normal')].join('\n'));
  const ds = await loadDataset({ files: [p] });
  assert.deepEqual(ds.labels, ['Normal', 'Web Attack, XSS']);
  assert.equal(ds.report.skipped.wrongCellCount, 0);
});
