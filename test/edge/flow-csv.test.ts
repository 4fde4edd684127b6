import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { MAX_LINE_CHARS, readFlowCsv } from '../../edge/inputs/flow-csv.ts';
import type { FlowSink } from '../../edge/inputs/sink.ts';
import { RAW_COLUMNS, rawIndex } from '../../edge/raw-columns.ts';
import { STAT_FEATURES } from '../../shared/features.ts';
import { isIdsError } from '../../shared/errors.ts';
import { Rng } from '../../shared/random.ts';
import { sharedData } from '../helpers/shared-data.ts';

/** A sink that keeps what it is offered. */
class Collect implements FlowSink {
  readonly inputs = RAW_COLUMNS.length;
  readonly full = false;
  readonly overflow = 'drop' as const;
  rows: Float64Array[] = [];
  keys: string[] = [];
  offer(row: ArrayLike<number>, offset: number, src: string, dst: string, sport: number, dport: number, proto: number): boolean {
    this.rows.push(Float64Array.from({ length: this.inputs }, (_, k) => row[offset + k]));
    this.keys.push(`${src}|${dst}|${sport}|${dport}|${proto}`);
    return true;
  }
  room(): Promise<void> {
    return Promise.resolve();
  }
}

const col = (name: string) => rawIndex(name)!;

test('IoTID20 and CIC-IDS2017 headers both map to the raw layout; inf/nan/empty cells and CRLF handled', async () => {
  const text =
    ' Source IP, Destination IP, Source Port, Destination Port, Protocol, Flow Duration, Flow Bytes/s, Flow Packets/s, Fwd Header Length, Fwd Header Length\r\n' +
    '10.0.0.1,10.0.0.2,1234,80,6,100,inf,-Infinity,40,41\r\n' +
    '10.0.0.3,10.0.0.4,5,53,17,,NaN,nan,1,2\r\n';
  const sink = new Collect();
  const r = await readFlowCsv(Readable.from([text]), sink, { required: ['Flow_Duration'] });
  assert.deepEqual(r, { rows: 2, accepted: 2, shed: 0, malformed: 0 });
  assert.deepEqual(sink.keys, ['10.0.0.1|10.0.0.2|1234|80|6', '10.0.0.3|10.0.0.4|5|53|17']);
  const [a, b] = sink.rows;
  assert.equal(a[col('Flow_Duration')], 100);
  assert.equal(a[col('Flow_Byts/s')], Infinity);
  assert.equal(a[col('Flow_Pkts/s')], -Infinity);
  assert.equal(a[col('Fwd_Header_Len')], 40, 'the first of a duplicated column is used');
  assert.ok(Number.isNaN(a[col('Idle_Min')]), 'columns the CSV lacks are NaN (missing → 0 after scaling)');
  assert.ok(Number.isNaN(b[col('Flow_Duration')]));
  assert.ok(Number.isNaN(b[col('Flow_Byts/s')]));
});

test('malformed rows are counted with their line numbers, never thrown; the rest still flows', async () => {
  const lines = ['Src_IP,Dst_IP,Flow_Duration,Tot_Fwd_Pkts', '1.1.1.1,2.2.2.2,5,6', 'a,b,not-a-number,1', 'a,b,1',
    'a,b,1,2,3', 'Src_IP,Dst_IP,Flow_Duration,Tot_Fwd_Pkts', '\u0000\u0001\u0002garbage', 'x'.repeat(100_000), '3.3.3.3,4.4.4.4,7,8'];
  const bad: string[] = [];
  const sink = new Collect();
  // Split mid-line and mid-character to exercise the chunk boundaries.
  const text = lines.join('\n');
  const chunks = [text.slice(0, 50), text.slice(50, 51), text.slice(51, 70000), text.slice(70000)];
  const r = await readFlowCsv(Readable.from(chunks), sink, { onMalformed: (line, reason) => bad.push(`${line}: ${reason}`) });
  assert.equal(r.accepted, 2);
  assert.equal(r.malformed, 6);
  assert.equal(bad.length, 6);
  assert.match(bad[0], /^3: .*line 3: column 3 \(Flow_Duration\) is not a number/);
  assert.match(bad[1], /^4: .*3 cells, header has 4/);
  assert.match(bad[2], /^5: .*more than 4 cells/);
  assert.match(bad[3], /^6: .*repeated header/);
  assert.deepEqual(sink.keys.map((k) => k.split('|')[0]), ['1.1.1.1', '3.3.3.3']);
});

test('numeric cells are decimals only: 0x10, 0b1, 0o7 and 1_000 are malformed, not 16, 1, 7', async () => {
  const text = ['Src_IP,Dst_IP,Flow_Duration,Tot_Fwd_Pkts', 'a,b,0x10,1', 'a,b,0b1,1', 'a,b,1,0o7', 'a,b,1_000,1', 'a,b, 12 ,+3', 'a,b,1e3,.5'].join('\n');
  const bad: string[] = [];
  const sink = new Collect();
  const r = await readFlowCsv(Readable.from([text]), sink, { onMalformed: (_l, reason) => bad.push(reason) });
  assert.equal(r.malformed, 4, bad.join('; '));
  assert.match(bad[0], /line 2: column 3 \(Flow_Duration\) is not a number/);
  assert.deepEqual(sink.rows.map((row) => [row[col('Flow_Duration')], row[col('Tot_Fwd_Pkts')]]), [[12, 3], [1000, 0.5]]);
});

test('a line past MAX_LINE_CHARS (32 MB without a newline) is skipped as malformed; the rows after it still flow', async () => {
  const header = 'Src_IP,Dst_IP,Flow_Duration,Tot_Fwd_Pkts\n';
  const piece = '1'.repeat(1 << 16);
  // 512 chunks of 64 Ki characters: one 32 Mi-character line, then a good row.
  const chunks = [header, '1.1.1.1,2.2.2.2,5,6\n', ...Array.from({ length: 512 }, () => piece), '\n3.3.3.3,4.4.4.4,7,8\n'];
  const bad: string[] = [];
  const sink = new Collect();
  const r = await readFlowCsv(Readable.from(chunks), sink, { onMalformed: (line, reason) => bad.push(`${line}: ${reason}`) });
  assert.deepEqual(r, { rows: 3, accepted: 2, shed: 0, malformed: 1 });
  assert.match(bad[0], new RegExp(`^3: .*line 3: line longer than ${MAX_LINE_CHARS} characters: skipped`));
  assert.deepEqual(sink.keys.map((k) => k.split('|')[0]), ['1.1.1.1', '3.3.3.3']);
  await assert.rejects(readFlowCsv(Readable.from(['x'.repeat(MAX_LINE_CHARS + 1)]), new Collect()),
    (e) => isIdsError(e, 'BAD_HEADER') && /header line longer than/.test(e.message));
});

test('random garbage never crashes the reader', async () => {
  const rng = new Rng(4);
  for (let round = 0; round < 20; round++) {
    const parts = ['Flow Duration,Src_IP,Tot_Fwd_Pkts\n'];
    for (let i = 0; i < 50; i++) {
      const len = rng.int(0, 60);
      parts.push(String.fromCharCode(...Array.from({ length: len }, () => rng.pick([44, 10, 13, 48, 49, 46, 101, 45, 0, 255, 34, 97]))));
    }
    const r = await readFlowCsv(Readable.from(parts), new Collect());
    assert.equal(r.accepted + r.malformed, r.rows);
  }
});

test('a header without a required model feature is BAD_HEADER naming it; empty input is EMPTY_INPUT', async () => {
  await assert.rejects(readFlowCsv(Readable.from(['Src_IP,Dst_IP\n1,2\n']), new Collect(), { required: ['Flow_Duration', 'Idle_Min'] }),
    (e) => isIdsError(e, 'BAD_HEADER') && /Flow_Duration, Idle_Min/.test(e.message));
  await assert.rejects(readFlowCsv(Readable.from(['']), new Collect()), (e) => isIdsError(e, 'EMPTY_INPUT'));
});

for (const [dir, file, rows] of [
  ['iotid20', 'first24-labeled.csv', 24],
  ['cicflowmeter-reference', 'test.pcap_CIC.csv', 96],
  ['cicflowmeter-reference', 'out_test.csv', 96],
] as const) {
  test(`real CSV ${file}: every row read, all 76 statistical features present`, async (t) => {
    const f = sharedData(t, dir, file);
    if (!f) return;
    const sink = new Collect();
    const r = await readFlowCsv(f, sink, { required: STAT_FEATURES });
    assert.equal(r.malformed, 0);
    assert.equal(r.accepted, rows);
    const missing = STAT_FEATURES.filter((c) => sink.rows.every((row) => Number.isNaN(row[col(c)])));
    assert.deepEqual(missing, []);
  });
}
