import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeMetrics } from '../../trainer/eval/metrics.ts';
import { writeReport, REPORT_FILES, type TrainReport } from '../../trainer/eval/report.ts';
import { trainingCurvesSvg, confusionSvg, niceTicks } from '../../trainer/eval/plots.ts';
import { paperComparisonMarkdown } from '../../trainer/eval/paper.ts';
import { resolveRecipe } from '../../trainer/recipes.ts';
import type { EpochLog } from '../../trainer/train-loop.ts';
import { checkXml } from '../helpers/xml.ts';

function fakeReport(labels: string[], withBaseline = true): TrainReport {
  const k = labels.length;
  const yTrue = Array.from({ length: 40 }, (_, i) => i % k);
  const yPred = yTrue.map((y, i) => (i % 7 === 0 ? (y + 1) % k : y));
  const m = computeMetrics(labels, yTrue, yPred);
  const history: EpochLog[] = Array.from({ length: 6 }, (_, i) => ({
    epoch: i + 1, loss: 1 / (i + 1), accuracy: 0.8 + i * 0.03, valLoss: 1.2 / (i + 1), valAccuracy: 0.78 + i * 0.03,
    valMacroF1: 0.7 + i * 0.04, lr: 1e-3, samplesPerSec: 2000, seconds: 1.5,
  }));
  const metrics = { labels: m.labels, accuracy: m.accuracy, macroF1: m.macroF1, weightedF1: m.weightedF1, macroPrecision: m.macroPrecision, macroRecall: m.macroRecall, perClass: m.perClass, confusion: m.confusion };
  return {
    ...metrics,
    decision: 'thresholds tuned on validation',
    thresholds: Object.fromEntries(labels.map((l) => [l, 0.5])),
    argmax: metrics,
    baseline: withBaseline ? { ...metrics, name: 'random-forest', description: 'random forest <test> & co', trainSeconds: 1, predictSeconds: 0.1 } : null,
    model: { name: 'cnn-lstm', backend: 'cpu', features: ['Flow_Duration', 'Flow_Byts/s'], trainSamplesPerSec: 2000 },
    data: {
      files: ['a.csv'], labelColumn: 'Cat', labelMap: 'none', ports: 'dst', dedupe: false,
      report: {
        files: [{ path: 'a.csv', rows: 40, skipped: 1 }], rowsRead: 41, rowsKept: 40,
        skipped: { wrongCellCount: 1, badNumber: 0, unmappedLabel: 0, emptyLabel: 0 }, examples: ['a.csv:7: 3 cells, expected 5'],
        nonFinite: { 'Flow_Byts/s': 2 }, constantColumns: ['Fwd_URG_Flags'], ignoredColumns: [], duplicatesRemoved: 0,
        classCounts: Object.fromEntries(labels.map((l) => [l, 40 / k])),
      },
    },
    split: { testFraction: 0.3, valFraction: 0.15, rows: { train: 100, validation: 20, test: 40 }, classCounts: { train: {}, validation: {}, test: {} } },
    recipe: resolveRecipe('default'),
    classWeights: null,
    seed: 7,
    timings: { load: 0.1, train: 9, total: 10 },
    history,
    bestEpoch: 5,
    stoppedEarly: true,
    createdAt: new Date(0).toISOString(),
  };
}

test('writeReport writes parseable JSON with the keys the checks use, Markdown and well-formed SVG', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'iot-ids-report-'));
  try {
    const r = fakeReport(['Normal', 'DoS', 'Scan']);
    await writeReport(dir, r);
    const json = JSON.parse(await readFile(join(dir, REPORT_FILES.json), 'utf8'));
    for (const k of ['labels', 'accuracy', 'macroF1', 'weightedF1', 'perClass', 'confusion', 'baseline', 'recipe', 'seed', 'timings', 'history', 'thresholds', 'argmax']) {
      assert.ok(k in json, `report.json lacks ${k}`);
    }
    for (const l of json.labels) for (const k of ['precision', 'recall', 'f1', 'support']) assert.equal(typeof json.perClass[l][k], 'number');
    for (const k of ['name', 'accuracy', 'macroF1']) assert.ok(k in json.baseline);
    assert.equal(json.confusion.length, 3);
    assert.equal(json.accuracy, r.accuracy);
    for (const f of [REPORT_FILES.curves, REPORT_FILES.confusion, REPORT_FILES.baselineConfusion]) {
      assert.equal(checkXml(await readFile(join(dir, f), 'utf8')), 'svg', f);
    }
    const md = await readFile(join(dir, REPORT_FILES.markdown), 'utf8');
    assert.match(md, /\| accuracy \| 0\.\d{4} \| 0\.\d{4} \|/);
    assert.match(md, /!\[training curves\]\(curves\.svg\)/);
    assert.match(md, /a\.csv:7: 3 cells/);
    assert.match(md, /alert thresholds tuned on the validation split/);
    assert.doesNotMatch(md, /Beside the paper/, 'the paper table is for IoTID20 5-class runs only');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('report.json and report.md name paths relative to the working directory, never a machine\'s absolute folders', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'iot-ids-report-'));
  try {
    const r = fakeReport(['Normal', 'Anomaly'], false);
    const data = join(process.cwd(), 'data', 'x.csv');
    r.data.files = [data];
    r.data.report.files = [{ path: data, rows: 1, skipped: 0 }];
    r.data.report.examples = [`${data}:7: 3 cells, expected 5`];
    r.export = { bundleDir: join(process.cwd(), '.tmp', 'run', 'bundle'), fp32: { accuracy: 1, macroF1: 1, bytes: 1 }, int8: { accuracy: 1, macroF1: 1, bytes: 1 }, checksPass: true };
    await writeReport(dir, r);
    const json = JSON.parse(await readFile(join(dir, REPORT_FILES.json), 'utf8'));
    assert.deepEqual(json.data.files, [join('data', 'x.csv')]);
    assert.equal(json.data.report.files[0].path, join('data', 'x.csv'));
    assert.equal(json.data.report.examples[0], `${join('data', 'x.csv')}:7: 3 cells, expected 5`);
    assert.equal(json.export.bundleDir, join('.tmp', 'run', 'bundle'));
    for (const f of [REPORT_FILES.json, REPORT_FILES.markdown]) {
      assert.ok(!(await readFile(join(dir, f), 'utf8')).includes(process.cwd()), `${f} names ${process.cwd()}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('without a baseline the report says null and writes no baseline plot', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'iot-ids-report-'));
  try {
    await writeReport(dir, fakeReport(['Normal', 'Anomaly'], false));
    const json = JSON.parse(await readFile(join(dir, REPORT_FILES.json), 'utf8'));
    assert.equal(json.baseline, null);
    assert.equal(existsSync(join(dir, REPORT_FILES.baselineConfusion)), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('IoTID20 5-class runs get the paper layout, with paper-style F1 = half of ours', () => {
  const r = fakeReport(['Normal', 'DoS', 'MITM ARP Spoofing', 'Mirai', 'Scan']);
  const md = paperComparisonMarkdown(r)!;
  assert.ok(md, 'expected the paper table');
  assert.match(md, /0\.820 \//, 'the paper\'s ARP recall');
  const row = md.split('\n').find((l) => l.startsWith('| paper-style F1'))!;
  const cells = row.split('|').slice(2, -1).map((c) => Number(c.trim()));
  const ours = ['Normal', 'Mirai', 'DoS', 'Scan', 'MITM ARP Spoofing'].map((c) => r.perClass[c].f1);
  cells.forEach((v, i) => assert.ok(Math.abs(v - ours[i] / 2) < 0.0006, `${v} vs ${ours[i]} / 2`));
});

test('SVG plots escape labels and stay well-formed on edge cases', () => {
  assert.equal(checkXml(confusionSvg(['a<b', 'c&d', '"e"'], [[1, 0, 0], [0, 0, 0], [2, 0, 5]], { title: 'x & y' })), 'svg');
  assert.equal(checkXml(trainingCurvesSvg([])), 'svg');
  const one: EpochLog[] = [{ epoch: 1, loss: Number.NaN, accuracy: 0.5, lr: 1, samplesPerSec: 1, seconds: 1 }];
  const svg = trainingCurvesSvg(one, { bestEpoch: 1 });
  assert.equal(checkXml(svg), 'svg');
  assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
});

test('niceTicks gives round steps covering the range', () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(1, 30, 8), [5, 10, 15, 20, 25, 30]);
  assert.deepEqual(niceTicks(1, 30, 5), [10, 20, 30]);
});

test('the XML checker itself rejects broken markup', () => {
  assert.throws(() => checkXml('<svg><g></svg>'));
  assert.throws(() => checkXml('<svg><text>a & b</text></svg>'));
  assert.throws(() => checkXml('<svg x=1></svg>'));
});
