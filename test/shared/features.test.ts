import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  IOTID20_COLUMNS, FLOW_COLUMNS, STAT_FEATURES, canonicalColumn, portColumnsFor,
} from '../../shared/features.ts';
import { sharedData } from '../helpers/shared-data.ts';

test('the schema has IoTID20 header order exactly', (t) => {
  const p = sharedData(t, 'iotid20', 'header.csv');
  if (!p) return;
  const header = readFileSync(p, 'utf8').trim().split(',');
  assert.deepEqual([...IOTID20_COLUMNS], header);
});

test('83 flow columns and 76 statistical features', () => {
  assert.equal(IOTID20_COLUMNS.length, 86);
  assert.equal(FLOW_COLUMNS.length, 83);
  assert.equal(STAT_FEATURES.length, 76);
  assert.ok(!STAT_FEATURES.includes('Dst_Port'));
  assert.deepEqual(portColumnsFor('dst'), ['Dst_Port']);
});

test('every CICFlowMeter dialect header maps onto IoTID20 names', (t) => {
  const short = sharedData(t, 'cicflowmeter-reference', 'out_test.csv');
  const long = sharedData(t, 'cicflowmeter-reference', 'test.pcap_CIC.csv');
  const improved = sharedData(t, 'cicids2017-improved-sample', 'BENIGN_5000.csv');
  if (!short || !long || !improved) return;
  const head = (p: string) => readFileSync(p, 'utf8').split('\n', 1)[0].split(',');
  // The v4 short header with spaces is IoTID20's header with underscores, position by position.
  assert.deepEqual(head(short).map(canonicalColumn), FLOW_COLUMNS.concat(['Label']));
  // The long CIC-IDS2017 header has one duplicated column (Fwd Header Length) and otherwise the same order.
  const longMapped = head(long).map(canonicalColumn);
  assert.equal(longMapped.filter((c) => c === undefined).length, 0);
  assert.deepEqual([...new Set(longMapped)], FLOW_COLUMNS.concat(['Label']));
  // The improved release adds columns we do not use; every IoTID20 flow column is found in it.
  const imp = new Set(head(improved).map(canonicalColumn));
  for (const c of FLOW_COLUMNS) assert.ok(imp.has(c), `improved header lacks ${c}`);
});

test('unknown columns stay unknown', () => {
  assert.equal(canonicalColumn('Total TCP Flow Time'), undefined);
  assert.equal(canonicalColumn(' Flow Duration'), 'Flow_Duration');
});
