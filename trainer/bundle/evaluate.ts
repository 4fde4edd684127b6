/**
 * `iot-ids bundle eval DIR --data CSV`: how a signed bundle does on labelled flows it was not trained on, decided as
 * a hub decides (the manifest's scaler and per-class thresholds, the int8 model; onnxruntime-web by default, the
 * hub's runtime). The test split of a training run comes from the same capture as its training rows; a corpus of
 * another lab seed, or a fleet's own labelled traffic, tells how the model generalises.
 */
import { modelFileFor, verifyBundle } from '../../shared/bundle-verify.ts';
import { IdsError } from '../../shared/errors.ts';
import { NORMAL_LABEL, type LabelMap } from '../../shared/labels.ts';
import { scaleRow } from '../../shared/scaler.ts';
import { loadDataset } from '../data/dataset.ts';
import { computeMetrics, type Metrics } from '../eval/metrics.ts';
import { applyThresholds } from '../eval/thresholds.ts';
import { openSession, type Runtime } from '../export/runtimes.ts';

export interface EvaluateOptions {
  bundleDir: string;
  publicKeyPem: string;
  data: string[];
  labelColumn?: string;
  labelMap?: LabelMap;
  runtime?: Runtime;
  maxRows?: number;
}

export interface BundleEvaluation {
  model: string;
  rows: number;
  metrics: Metrics;
  /** Share of Normal rows given another class: what a benign network would see as false alerts. */
  normalFalseAlertRate: number | null;
  /** Rows whose label the bundle does not know, dropped. */
  unknownLabels: Record<string, number>;
  skipped: number;
}

export async function evaluateBundle(opts: EvaluateOptions): Promise<BundleEvaluation> {
  // The model bytes come from the verification itself, so what runs is what was checked.
  const { manifest: m, files } = await verifyBundle(opts.bundleDir, { publicKeyPem: opts.publicKeyPem });
  const p = m.preprocessing;
  const ds = await loadDataset({
    // The bundle's own feature list picks the columns (any names: an all-numeric bundle reads non-CICFlowMeter ones).
    files: opts.data, labelColumn: opts.labelColumn, labelMap: opts.labelMap, ports: p.portPolicy, keepConstant: true, features: [...p.features],
    maxRows: opts.maxRows,
  });
  const cols = p.features.map((f) => ds.features.indexOf(f));
  const missing = p.features.filter((_, j) => cols[j] < 0);
  if (missing.length) throw new IdsError('BAD_HEADER', `--data lacks feature column(s) the bundle reads: ${missing.join(', ')}`);

  // The data's classes onto the bundle's; rows of a class the model cannot output are dropped and counted.
  const toModel = ds.labels.map((l) => m.labels.indexOf(l));
  const unknownLabels: Record<string, number> = {};
  const keep: number[] = [];
  for (let i = 0; i < ds.rows; i++) {
    if (toModel[ds.y[i]] >= 0) keep.push(i);
    else unknownLabels[ds.labels[ds.y[i]]] = (unknownLabels[ds.labels[ds.y[i]]] ?? 0) + 1;
  }
  if (keep.length === 0) {
    throw new IdsError('UNKNOWN_LABEL', `no row has a label the bundle knows (${m.labels.join(', ')}); data labels: ${ds.labels.join(', ')}`);
  }

  const F = p.features.length;
  const W = ds.features.length;
  const X = new Float32Array(keep.length * F);
  const raw = new Float64Array(F);
  const y = new Int32Array(keep.length);
  keep.forEach((row, i) => {
    for (let j = 0; j < F; j++) raw[j] = ds.X[row * W + cols[j]];
    scaleRow(p, raw, X, i * F);
    y[i] = toModel[ds.y[row]];
  });

  const session = await openSession(opts.runtime ?? 'ort-web', files[modelFileFor(m)]);
  let proba: Float32Array;
  try {
    proba = (await session.run(X, keep.length, [m.model.outputName], 256))[m.model.outputName];
  } finally {
    await session.release();
  }
  const C = m.labels.length;
  const normal = m.labels.indexOf(NORMAL_LABEL);
  const thr = m.labels.map((l) => m.thresholds?.[l] ?? 0.5);
  const pred = applyThresholds(proba, keep.length, C, normal, thr);
  const metrics = computeMetrics(m.labels, y, pred);
  let normalRows = 0;
  let normalAlerts = 0;
  for (let i = 0; i < y.length; i++) {
    if (y[i] !== normal) continue;
    normalRows++;
    if (pred[i] !== normal) normalAlerts++;
  }
  const s = ds.report.skipped;
  return {
    model: `${m.model.name} ${m.model.version}`,
    rows: keep.length,
    metrics,
    normalFalseAlertRate: normal >= 0 && normalRows > 0 ? normalAlerts / normalRows : null,
    unknownLabels,
    skipped: s.wrongCellCount + s.badNumber + s.emptyLabel + s.unmappedLabel,
  };
}

export function formatEvaluation(e: BundleEvaluation): string {
  const m = e.metrics;
  const f = (x: number) => x.toFixed(4);
  const lines = [
    `${e.model} on ${e.rows} rows: accuracy ${f(m.accuracy)}, macro-F1 ${f(m.macroF1)}` +
      (e.normalFalseAlertRate !== null ? `, Normal rows alerted ${(100 * e.normalFalseAlertRate).toFixed(2)} %` : ''),
    'class | support | precision | recall | F1',
  ];
  for (const l of m.labels) {
    const c = m.perClass[l];
    lines.push(`${l} | ${c.support} | ${f(c.precision)} | ${f(c.recall)} | ${f(c.f1)}`);
  }
  const unknown = Object.entries(e.unknownLabels);
  if (unknown.length) lines.push(`dropped, label unknown to the bundle: ${unknown.map(([l, n]) => `${l} ${n}`).join(', ')}`);
  if (e.skipped) lines.push(`skipped rows (malformed or unmapped): ${e.skipped}`);
  return lines.join('\n');
}
