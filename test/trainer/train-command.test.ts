import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { optionsFromArgs, parseLabelMap } from '../../trainer/train-command.ts';
import { CICIDS2017_GROUPS, BINARY_ANOMALY } from '../../shared/labels.ts';
import { isIdsError } from '../../shared/errors.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';
import { writeTinyFlows } from '../helpers/tiny-flows.ts';

test('--map takes a named map, inline JSON or a JSON file', (t) => {
  assert.equal(parseLabelMap('cicids2017').map, CICIDS2017_GROUPS);
  assert.equal(parseLabelMap('binary').map, BINARY_ANOMALY);
  assert.deepEqual(parseLabelMap('{"a":"A","b":"B"}').map, { a: 'A', b: 'B' });
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-map-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'map.json');
  writeFileSync(file, '{"BENIGN":"Normal","DDoS":"DoS"}');
  assert.deepEqual(parseLabelMap(file), { map: { BENIGN: 'Normal', DDoS: 'DoS' }, source: file });
  for (const bad of ['nosuchmap', '{"a":', '["a"]', '{"a":3}', '{}']) {
    assert.throws(() => parseLabelMap(bad), (e) => isIdsError(e, 'BAD_OPTION') && e.message.startsWith('--map'), bad);
  }
});

test('repeated --data, overrides and flags become run options', () => {
  const o = optionsFromArgs({ data: ['a.csv', 'b.csv,c'], label: 'Label', seed: '7', epochs: '5', batch: '128', lr: '0.002', 'val-fraction': '0.2', recipe: 'paper', ports: 'none', dedupe: true, baseline: false, map: 'binary' });
  assert.deepEqual(o.data, ['a.csv', 'b.csv', 'c']);
  assert.equal(o.seed, 7);
  assert.equal(o.epochs, 5);
  assert.equal(o.batchSize, 128);
  assert.equal(o.learningRate, 0.002);
  assert.equal(o.valFraction, 0.2);
  assert.equal(o.recipe, 'paper');
  assert.equal(o.ports, 'none');
  assert.equal(o.dedupe, true);
  assert.equal(o.baseline, false);
  assert.equal(o.mapSource, 'binary');
  assert.equal(optionsFromArgs({ data: 'x.csv' }).baseline, true);
});

test('bad option values name the flag', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /--data/],
    [{ data: 'a', seed: 'abc' }, /--seed must be an integer, got "abc"/],
    [{ data: 'a', epochs: '2.5' }, /--epochs/],
    [{ data: 'a', epochs: ['1', '2'] }, /--epochs given 2 times/],
    [{ data: 'a', recipe: 'fast' }, /--recipe fast/],
    [{ data: 'a', ports: 'src' }, /--ports src/],
    [{ data: 'a', backend: 'gpu' }, /--backend gpu/],
  ];
  for (const [args, msg] of cases) assert.throws(() => optionsFromArgs(args), (e) => isIdsError(e, 'BAD_OPTION') && msg.test(e.message), msg.source);
});

test('the CLI accepts repeated --data and writes report.json (npm run train interface)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = writeTinyFlows(join(dir, 'a.csv'), 150, 11);
  const b = writeTinyFlows(join(dir, 'b.csv'), 150, 12);
  const out = join(dir, 'run');
  const r = spawnSync(process.execPath, [
    join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'train', '--data', a, '--data', b, '--label', 'Label',
    '--map', '{"normal":"Normal","attack":"Attack"}', '--epochs', '1', '--seed', '2', '--out', out, '--no-baseline',
  ], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.equal(rep.data.report.rowsKept, 300);
  assert.equal(rep.baseline, null);
  assert.equal(rep.seed, 2);
  const bad = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'train', '--data', a, '--epochs', 'x'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /BAD_OPTION.*--epochs must be an integer, got "x"/);
});
