/**
 * The evaluation report of a training run: report.json (machine-readable; the keys the checks use are
 * labels, accuracy, macroF1, weightedF1, perClass, confusion, baseline), report.md for people, and SVG plots
 * beside them (curves.svg, confusion.svg, baseline-confusion.svg).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import type { Metrics } from './metrics.ts';
import type { EpochLog } from '../train-loop.ts';
import type { DataReport } from '../data/dataset.ts';
import type { PrunedFeature } from '../data/feature-select.ts';
import type { Recipe } from '../recipes.ts';
import type { BenignCalibration } from './benign-calibration.ts';
import { trainingCurvesSvg, confusionSvg } from './plots.ts';
import { paperComparisonMarkdown } from './paper.ts';

/** A model's Metrics as a report carries them (the row count is not required). */
export type ReportMetrics = Omit<Metrics, 'total'>;

export interface TrainReport extends ReportMetrics {
  /** How the headline figures decide a class: plain arg-max, or arg-max with per-class alert thresholds. */
  decision: 'argmax' | 'thresholds tuned on validation';
  /** Per class alert threshold (the bundle manifest's), when tuned; null for plain arg-max. */
  thresholds: Record<string, number> | null;
  /** Present when thresholds were raised for held-out benign devices (--benign-val; eval/benign-calibration.ts). */
  benignCalibration?: Omit<BenignCalibration, 'thresholds'> & { files: string[]; thresholds: Record<string, number> };
  /** The same model's figures with plain arg-max (equal to the headline when decision is 'argmax'). */
  argmax: Pick<ReportMetrics, 'accuracy' | 'macroF1' | 'weightedF1' | 'perClass' | 'confusion'>;
  baseline: (ReportMetrics & { name: string; description: string; trainSeconds: number; predictSeconds: number }) | null;
  /** pruned: features dropped as near-copies of a kept one (--prune-correlated); absent in older reports. */
  model: { name: string; backend: string; features: string[]; pruned?: PrunedFeature[]; trainSamplesPerSec: number };
  data: { files: string[]; labelColumn: string; labelMap: string; ports: string; dedupe: boolean; report: DataReport };
  split: {
    testFraction: number;
    valFraction: number;
    rows: { train: number; validation: number; test: number };
    classCounts: { train: Record<string, number>; validation: Record<string, number>; test: Record<string, number> };
  };
  recipe: Recipe;
  classWeights: Record<string, number> | null;
  seed: number;
  timings: Record<string, number>;
  history: EpochLog[];
  bestEpoch: number;
  stoppedEarly: boolean;
  createdAt: string;
  /** Present after --export: the bundle and its fp32/int8 scores on the same test split. */
  export?: {
    bundleDir: string;
    fp32: { accuracy: number; macroF1: number; bytes: number };
    int8: { accuracy: number; macroF1: number; bytes: number };
    checksPass: boolean;
  };
}

export const REPORT_FILES = {
  json: 'report.json',
  markdown: 'report.md',
  curves: 'curves.svg',
  confusion: 'confusion.svg',
  baselineConfusion: 'baseline-confusion.svg',
} as const;

/** A path as the report shows it: relative to the working directory, so a report names no machine's folders. */
const shown = (p: string, cwd: string): string => (isAbsolute(p) ? relative(cwd, p) || '.' : p);

/** The report with its paths (data files, bundle folder) relative to `cwd`. */
export function portableReport(r: TrainReport, cwd = process.cwd()): TrainReport {
  const d = r.data.report;
  // Examples start with the file's path ("FILE:LINE: reason"): shown the same way.
  const rename = (e: string) => r.data.files.reduce((t, f) => (t.startsWith(f + ':') ? shown(f, cwd) + t.slice(f.length) : t), e);
  const report = { ...d, files: d.files.map((f) => ({ ...f, path: shown(f.path, cwd) })), examples: d.examples.map(rename) };
  return {
    ...r,
    data: { ...r.data, files: r.data.files.map((f) => shown(f, cwd)), report },
    ...(r.export ? { export: { ...r.export, bundleDir: shown(r.export.bundleDir, cwd) } } : {}),
  };
}

export async function writeReport(dir: string, report: TrainReport): Promise<void> {
  const r = portableReport(report);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, REPORT_FILES.json), JSON.stringify(r, null, 1) + '\n');
  await writeFile(
    join(dir, REPORT_FILES.curves),
    trainingCurvesSvg(r.history, { title: `CNN-LSTM training (${r.recipe.name} recipe, seed ${r.seed})`, bestEpoch: r.recipe.earlyStopping?.restoreBest ? r.bestEpoch : undefined }),
  );
  await writeFile(join(dir, REPORT_FILES.confusion), confusionSvg(r.labels, r.confusion, { title: 'CNN-LSTM confusion matrix (test split)' }));
  if (r.baseline) {
    await writeFile(join(dir, REPORT_FILES.baselineConfusion), confusionSvg(r.baseline.labels, r.baseline.confusion, { title: 'Baseline confusion matrix (test split)' }));
  }
  await writeFile(join(dir, REPORT_FILES.markdown), reportMarkdown(r));
}

const f4 = (v: number): string => v.toFixed(4);
const secs = (v: number | undefined): string => (v === undefined ? '–' : v < 60 ? `${v.toFixed(1)} s` : `${(v / 60).toFixed(1)} min`);

function table(head: string[], rows: (string | number)[][], align?: string[]): string {
  const a = align ?? head.map((_, i) => (i === 0 ? ':--' : '--:'));
  return [`| ${head.join(' | ')} |`, `| ${a.join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function reportMarkdown(r: TrainReport): string {
  const b = r.baseline;
  const out: string[] = [];
  const last = r.history[r.history.length - 1];
  out.push(`# Training report: CNN-LSTM, ${r.recipe.name} recipe, seed ${r.seed}`);
  out.push('');
  out.push(`Data: ${r.data.files.map((f) => `\`${f}\``).join(', ')} · label column \`${r.data.labelColumn}\` · map ${r.data.labelMap} · ports ${r.data.ports}${r.data.dedupe ? ' · de-duplicated' : ''}`);
  out.push(`Rows: train ${r.split.rows.train}, validation ${r.split.rows.validation}, test ${r.split.rows.test} (stratified, seed ${r.seed}) · ${r.model.features.length} features · backend ${r.model.backend} · ${r.createdAt}`);
  if (r.model.pruned?.length) {
    out.push('');
    out.push(`Dropped as near-copies (\`--prune-correlated ${r.recipe.pruneCorrelated}\`, |r| on the training rows): ` +
      r.model.pruned.map((p) => `${p.feature} (≈ ${p.like}, r ${p.r})`).join(', '));
  }
  out.push('');
  out.push('## Results on the test split');
  out.push('');
  const rows: (string | number)[][] = [
    ['accuracy', f4(r.accuracy), b ? f4(b.accuracy) : '–'],
    ['macro-F1', f4(r.macroF1), b ? f4(b.macroF1) : '–'],
    ['weighted-F1', f4(r.weightedF1), b ? f4(b.weightedF1) : '–'],
    ['macro precision', f4(r.macroPrecision), b ? f4(b.macroPrecision) : '–'],
    ['macro recall', f4(r.macroRecall), b ? f4(b.macroRecall) : '–'],
    ['training time', secs(r.timings.train), b ? secs(b.trainSeconds) : '–'],
  ];
  out.push(table(['metric', 'CNN-LSTM', b ? `baseline: ${b.description}` : 'baseline (not run)'], rows));
  out.push('');
  if (r.thresholds) {
    out.push(
      `Decisions use per-class alert thresholds tuned on the validation split (as the hub applies them: an attack ` +
        `class below its threshold falls back to Normal): ${Object.entries(r.thresholds).filter(([l]) => l !== 'Normal').map(([l, t]) => `${l} ${t}`).join(', ')}. ` +
        `With plain arg-max the same model scores accuracy ${f4(r.argmax.accuracy)}, macro-F1 ${f4(r.argmax.macroF1)}.`,
    );
    const bc = r.benignCalibration;
    if (bc) {
      const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
      out.push('');
      out.push(
        `The thresholds were then raised for benign devices no training row came from (${bc.files.map((f) => `\`${f}\``).join(', ')}, ` +
          `${bc.rows} flows): alerted ${pct(bc.before)} → ${pct(bc.after)} (target ${pct(bc.target)}, no attack class giving up more than ` +
          `${pct(bc.maxRecallDrop)} of its validation recall); validation-split accuracy ` +
          `${f4(bc.validationCorrectBefore)} → ${f4(bc.validationCorrectAfter)}.`,
      );
    }
    out.push('');
  }
  if (b) {
    const gap = r.macroF1 - b.macroF1;
    out.push(`The CNN-LSTM's macro-F1 is ${gap >= 0 ? `${f4(gap)} above` : `${f4(-gap)} below`} the baseline's.`);
    out.push('');
  }
  out.push('## Per class');
  out.push('');
  out.push('Accuracy is one-vs-rest: (TP + TN) / all. F1 = 2·P·R / (P + R).');
  out.push('');
  out.push(
    table(
      ['class', 'support', 'accuracy', 'precision', 'recall', 'F1', ...(b ? ['baseline P', 'baseline R', 'baseline F1'] : [])],
      r.labels.map((l) => {
        const c = r.perClass[l];
        const bc = b?.perClass[l];
        return [l, c.support, f4(c.accuracy), f4(c.precision), f4(c.recall), f4(c.f1), ...(bc ? [f4(bc.precision), f4(bc.recall), f4(bc.f1)] : [])];
      }),
    ),
  );
  out.push('');
  out.push('## Confusion matrix');
  out.push('');
  out.push(`![CNN-LSTM confusion matrix](${REPORT_FILES.confusion})`);
  out.push('');
  out.push('Rows: true class; columns: predicted.');
  out.push('');
  out.push(table(['true \\ predicted', ...r.labels], r.labels.map((l, i) => [l, ...r.confusion[i]])));
  out.push('');
  if (b) {
    out.push(`Baseline: ![baseline confusion matrix](${REPORT_FILES.baselineConfusion})`);
    out.push('');
  }
  const paper = paperComparisonMarkdown(r);
  if (paper) {
    out.push(paper);
    out.push('');
  }
  if (r.export) {
    const e = r.export;
    out.push('## Export');
    out.push('');
    out.push(table(['model', 'accuracy', 'macro-F1', 'bytes'], [
      ['fp32 ONNX', f4(e.fp32.accuracy), f4(e.fp32.macroF1), e.fp32.bytes],
      ['int8 ONNX (bundle)', f4(e.int8.accuracy), f4(e.int8.macroF1), e.int8.bytes],
    ]));
    out.push('');
    out.push(`Bundle: \`${e.bundleDir}\`; export checks ${e.checksPass ? 'pass' : 'FAIL'} (see export.md there).`);
    out.push('');
  }
  out.push('## Training');
  out.push('');
  out.push(`![training curves](${REPORT_FILES.curves})`);
  out.push('');
  out.push(
    `${r.history.length} epochs${r.stoppedEarly ? ' (stopped early)' : ''}; ` +
      (r.recipe.earlyStopping?.restoreBest ? `weights of epoch ${r.bestEpoch} restored (best validation ${r.recipe.earlyStopping.monitor === 'valMacroF1' ? 'macro-F1' : 'loss'}); ` : '') +
      `median ${Math.round(r.model.trainSamplesPerSec)} samples/s` +
      (last ? `; last epoch loss ${f4(last.loss)}, accuracy ${f4(last.accuracy)}` : '') +
      '.',
  );
  out.push('');
  out.push(
    table(
      ['epoch', 'loss', 'accuracy', 'val loss', 'val accuracy', 'val macro-F1', 'lr', 'samples/s', 'seconds'],
      r.history.map((e) => [
        e.epoch, f4(e.loss), f4(e.accuracy),
        e.valLoss !== undefined ? f4(e.valLoss) : '–', e.valAccuracy !== undefined ? f4(e.valAccuracy) : '–',
        e.valMacroF1 !== undefined ? f4(e.valMacroF1) : '–', e.lr.toExponential(2), Math.round(e.samplesPerSec), e.seconds.toFixed(1),
      ]),
    ),
  );
  out.push('');
  out.push('## Recipe');
  out.push('');
  out.push(`${r.recipe.name}: ${r.recipe.description}.`);
  out.push('');
  out.push('```json');
  out.push(JSON.stringify({ ...r.recipe, description: undefined, classWeights: r.recipe.classWeights, weights: r.classWeights }, null, 1));
  out.push('```');
  out.push('');
  out.push('## Data');
  out.push('');
  const d = r.data.report;
  out.push(
    table(
      ['', 'count'],
      [
        ['rows read', d.rowsRead],
        ['rows kept', d.rowsKept],
        ['skipped: wrong cell count', d.skipped.wrongCellCount],
        ['skipped: text in a numeric cell', d.skipped.badNumber],
        ['skipped: label not in the map', d.skipped.unmappedLabel],
        ['skipped: empty label', d.skipped.emptyLabel],
        ['duplicates removed', d.duplicatesRemoved],
      ],
    ),
  );
  out.push('');
  out.push(`Classes (all kept rows): ${Object.entries(d.classCounts).map(([k, v]) => `${k} ${v}`).join(', ')}.`);
  const nf = Object.entries(d.nonFinite ?? {}).filter(([, v]) => v > 0);
  if (nf.length) out.push(`Non-finite cells kept (inf/NaN/empty; the scaler clips or zeroes them): ${nf.map(([k, v]) => `${k} ${v}`).join(', ')}.`);
  if (d.constantColumns?.length) out.push(`Constant columns dropped: ${d.constantColumns.join(', ')}.`);
  if (d.examples?.length) {
    out.push('');
    out.push('First skip reasons:');
    out.push('');
    for (const e of d.examples) out.push(`- ${e}`);
  }
  out.push('');
  out.push('## Timings');
  out.push('');
  out.push(table(['stage', 'time'], Object.entries(r.timings).map(([k, v]) => [k, secs(v)])));
  out.push('');
  return out.join('\n');
}
