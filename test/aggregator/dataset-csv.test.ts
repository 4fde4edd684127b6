import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelCells } from '../../aggregator/dataset-csv.ts';

test('label cells: a mark naming a sub-category exports its category as Cat (what models learn) and itself as Sub_Cat', () => {
  assert.equal(labelCells('Normal'), 'Normal,Normal,Normal');
  assert.equal(labelCells('dos'), 'Anomaly,DoS,');
  assert.equal(labelCells('MITM ARP Spoofing'), 'Anomaly,MITM ARP Spoofing,MITM ARP Spoofing');
  assert.equal(labelCells('Mirai-UDP Flooding'), 'Anomaly,Mirai,Mirai-UDP Flooding');
  assert.equal(labelCells('dos-synflooding'), 'Anomaly,DoS,DoS-Synflooding');
  assert.equal(labelCells('Scan Port OS'), 'Anomaly,Scan,Scan Port OS');
  // A model's own class outside IoTID20's vocabulary stays as it is.
  assert.equal(labelCells('Botnet'), 'Anomaly,Botnet,');
});

test('categoryOf: sub-categories fold onto their category (how the rollout pre-flight counts a corrected mark)', async () => {
  const { categoryOf } = await import('../../shared/labels.ts');
  assert.equal(categoryOf('mirai-hostbruteforceg'), 'Mirai');
  assert.equal(categoryOf('Scan Hostport'), 'Scan');
  assert.equal(categoryOf('DoS'), 'DoS');
  assert.equal(categoryOf('Botnet'), 'Botnet');
});
