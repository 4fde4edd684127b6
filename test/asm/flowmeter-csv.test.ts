import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sharedData } from '../helpers/shared-data.ts';
import { STAT_FEATURES } from '../../shared/features.ts';
import {
  FLOW_CSV_HEADER, LABELED_FLOW_CSV_HEADER, cicFlowId, formatFlowCsvRow, formatIotid20Timestamp, ipBytes,
} from '../../asm/flow-csv.ts';

test('headers are IoTID20 header.csv: 83 flow columns, 86 with labels', (t) => {
  const p = sharedData(t, 'iotid20', 'header.csv');
  if (!p) return;
  const header = readFileSync(p, 'utf8').trim().replace(/^\uFEFF/, '');
  assert.equal(LABELED_FLOW_CSV_HEADER, header);
  assert.equal(FLOW_CSV_HEADER.split(',').length, 83);
  assert.ok(header.startsWith(FLOW_CSV_HEADER + ',Label'));
});

test('Flow_ID orders addresses as CICFlowMeter does (signed bytes): matches real IoTID20 rows', () => {
  // From first52-unlabeled.csv: src 222.160.179.132 → dst 192.168.0.13 has id "192.168.0.13-222.160.179.132-554-2179-6".
  assert.equal(
    cicFlowId({ srcIp: '222.160.179.132', srcPort: 2179, dstIp: '192.168.0.13', dstPort: 554, protocol: 6 }),
    '192.168.0.13-222.160.179.132-554-2179-6',
  );
  // 10.x sorts after 188.x because 188 is negative as a Java byte (reference out_test.csv row 2).
  assert.equal(
    cicFlowId({ srcIp: '10.200.2.252', srcPort: 61559, dstIp: '188.120.225.17', dstPort: 8080, protocol: 6 }),
    '188.120.225.17-10.200.2.252-8080-61559-6',
  );
  assert.deepEqual(Array.from(ipBytes('2001:db8::1')), [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(Array.from(ipBytes('::ffff:1.2.3.4')).slice(10), [0xff, 0xff, 1, 2, 3, 4]);
});

test('timestamps in IoTID20 form, 12-hour clock with AM/PM, UTC', () => {
  assert.equal(formatIotid20Timestamp(Date.UTC(2019, 6, 25, 3, 25, 53) * 1000 + 999_999), '25/07/2019 03:25:53 AM');
  assert.equal(formatIotid20Timestamp(Date.UTC(2019, 4, 26, 22, 11, 6) * 1000), '26/05/2019 10:11:06 PM');
  assert.equal(formatIotid20Timestamp(Date.UTC(2019, 4, 26, 0, 0, 1) * 1000), '26/05/2019 12:00:01 AM');
  assert.equal(formatIotid20Timestamp(Date.UTC(2019, 4, 26, 12, 0, 1) * 1000), '26/05/2019 12:00:01 PM');
});

test('a row has 83 cells (86 with labels); inf and NaN spelled as IoTID20 does', () => {
  const features = new Float64Array(STAT_FEATURES.length).fill(1.5);
  features[STAT_FEATURES.indexOf('Flow_Byts/s')] = Infinity;
  features[STAT_FEATURES.indexOf('Flow_Pkts/s')] = NaN;
  const rec = { srcIp: '192.168.0.13', srcPort: 10000, dstIp: '192.168.0.16', dstPort: 10101, protocol: 17, startUs: 0, features };
  const row = formatFlowCsvRow(rec);
  const cells = row.split(',');
  assert.equal(cells.length, 83);
  assert.equal(cells[0], '192.168.0.13-192.168.0.16-10000-10101-17');
  assert.equal(cells[6], '01/01/1970 12:00:00 AM');
  assert.equal(cells[7 + STAT_FEATURES.indexOf('Flow_Byts/s')], 'inf');
  assert.equal(cells[7 + STAT_FEATURES.indexOf('Flow_Pkts/s')], 'NaN');
  const labeled = formatFlowCsvRow(rec, { label: 'Anomaly', cat: 'DoS', subCat: 'DoS-Synflooding' }).split(',');
  assert.equal(labeled.length, 86);
  assert.deepEqual(labeled.slice(83), ['Anomaly', 'DoS', 'DoS-Synflooding']);
});
