import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluateBundle } from '../../trainer/bundle/evaluate.ts';
import { isIdsError } from '../../shared/errors.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';
import { FLOW_COLUMNS } from '../../shared/features.ts';
import { Rng } from '../../shared/random.ts';
import { buildFixtureBundle, devKeyPair, FIXTURE_CSV_HEADER, FIXTURE_LABELS, fixtureCsvRow } from '../edge/fixtures/bundle.ts';

/**
 * The fixture model gives class k to a row whose k-th driving column is high (fixtureCsvRow). `rows` lists
 * [driving class, label] pairs; the label column is the fixture header's `Label`.
 */
function csv(path: string, rows: [number, string][]): string {
  const lines = rows.map(([k, label], i) => fixtureCsvRow(i, k).replace(/,x$/, `,${label}`));
  writeFileSync(path, FIXTURE_CSV_HEADER + '\n' + lines.join('\n') + '\n');
  return path;
}

test('bundle eval scores a bundle as a hub decides: metrics, Normal false alerts, unknown labels', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-eval-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const keys = devKeyPair();
  const bundle = await buildFixtureBundle(join(dir, 'bundle'), keys);
  const rows: [number, string][] = [];
  for (let k = 0; k < FIXTURE_LABELS.length; k++) for (let i = 0; i < 20; i++) rows.push([k, FIXTURE_LABELS[k]]);
  // 5 Normal rows that look like DoS (false alerts) and 3 rows of a class the bundle cannot output.
  for (let i = 0; i < 5; i++) rows.push([1, 'Normal']);
  for (let i = 0; i < 3; i++) rows.push([0, 'Botnet']);
  const e = await evaluateBundle({ bundleDir: bundle, publicKeyPem: keys.publicKeyPem, data: [csv(join(dir, 'flows.csv'), rows)], labelColumn: 'Label' });
  assert.equal(e.rows, 105);
  assert.deepEqual(e.unknownLabels, { Botnet: 3 });
  assert.equal(e.metrics.accuracy, 100 / 105);
  assert.equal(e.normalFalseAlertRate, 5 / 25);
  assert.equal(e.metrics.perClass.DoS.precision, 20 / 25);
  assert.equal(e.metrics.perClass.Normal.recall, 20 / 25);
  assert.equal(e.metrics.perClass.Scan.recall, 1);
  for (const runtime of ['ort-node', 'ort-web'] as const) {
    const r = await evaluateBundle({ bundleDir: bundle, publicKeyPem: keys.publicKeyPem, data: [join(dir, 'flows.csv')], labelColumn: 'Label', runtime });
    assert.deepEqual(r.metrics.confusion, e.metrics.confusion, runtime);
  }
});

test('bundle eval refuses a tampered bundle, data without the bundle\'s columns, and labels it cannot score', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-eval-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const keys = devKeyPair();
  const bundle = await buildFixtureBundle(join(dir, 'bundle'), keys);
  const good = csv(join(dir, 'flows.csv'), [[0, 'Normal'], [1, 'DoS']]);
  const base = { bundleDir: bundle, publicKeyPem: keys.publicKeyPem, labelColumn: 'Label' };
  await assert.rejects(evaluateBundle({ ...base, data: [csv(join(dir, 'alien.csv'), [[0, 'Worm'], [1, 'Worm']])] }),
    (e) => isIdsError(e, 'UNKNOWN_LABEL') && /Worm/.test(e.message));
  // Without "Total Fwd Packets" (a feature the bundle reads).
  const text = readFileSync(good, 'utf8').split('\n');
  const cut = (l: string) => l.split(',').filter((_, j) => j !== 8).join(',');
  writeFileSync(join(dir, 'narrow.csv'), text.map((l) => (l ? cut(l) : l)).join('\n'));
  await assert.rejects(evaluateBundle({ ...base, data: [join(dir, 'narrow.csv')] }), (e) => isIdsError(e, 'BAD_HEADER') && /Tot_Fwd_Pkts/.test(e.message));
  await assert.rejects(evaluateBundle({ ...base, publicKeyPem: devKeyPair().publicKeyPem, data: [good] }), (e) => isIdsError(e, 'BAD_BUNDLE'));
  appendFileSync(join(bundle, 'model.fp32.onnx'), Buffer.from([0]));
  await assert.rejects(evaluateBundle({ ...base, data: [good] }), (e) => isIdsError(e, 'BAD_BUNDLE'));
});

test('iot-ids bundle eval prints the scores and writes --json', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-eval-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const shipped = join(PROJECT_ROOT, 'models', 'iot-ids-lab-v1');
  // A lab-format CSV is what the shipped bundle reads; two rows of the fixture dialect lack its columns.
  const data = csv(join(dir, 'flows.csv'), [[0, 'Normal'], [1, 'DoS']]);
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'bundle', 'eval', shipped, '--insecure-demo-key', '--data', data, '--label', 'Label'],
    { encoding: 'utf8', cwd: PROJECT_ROOT });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /error \[BAD_HEADER\]: .*flows.csv: lacks the feature column\(s\) Fwd_Pkt_Len_Max/);
  // Every IoTID20 column, seeded values: the verdicts mean nothing, the plumbing is what is checked.
  const rng = new Rng(3);
  const lab = join(dir, 'lab.csv');
  const labRows = Array.from({ length: 200 }, (_, i) =>
    [...FLOW_COLUMNS.map((c) => (/_IP$|Flow_ID|Timestamp/.test(c) ? 'x' : String(Math.round(rng.next() * 1000)))), i % 2 ? 'DoS' : 'Normal'].join(','));
  writeFileSync(lab, [...FLOW_COLUMNS, 'Cat'].join(',') + '\n' + labRows.join('\n') + '\n');
  const ok = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'bundle', 'eval', shipped, '--insecure-demo-key', '--data', lab, '--json', join(dir, 'e.json')],
    { encoding: 'utf8', cwd: PROJECT_ROOT });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^cnn-lstm \S+ on \d+ rows: accuracy 0\.\d{4}, macro-F1 0\.\d{4}, Normal rows alerted/);
  const j = JSON.parse(readFileSync(join(dir, 'e.json'), 'utf8'));
  assert.equal(j.rows, 200);
  assert.equal(j.metrics.confusion.flat().reduce((a: number, b: number) => a + b, 0), 200);
});
