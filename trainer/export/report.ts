/** export.md: fp32 vs int8 side by side, the calibration candidates, the fusion check and the bundle summary. */
import type { BundleManifest } from '../../shared/manifest.ts';
import type { ExportComparison, VariantReport } from './index.ts';

const pct = (x: number | undefined) => (x === undefined ? '–' : `${(x * 100).toFixed(2)}%`);
const num = (x: number | undefined) => (x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));

function row(label: string, f: (v: VariantReport) => string, vs: VariantReport[]): string {
  return `| ${label} | ${vs.map(f).join(' | ')} |`;
}

export function renderExportReport(c: ExportComparison, m: BundleManifest, labels: string[]): string {
  const vs = [c.fp32, c.int8];
  const lines: string[] = [];
  lines.push(`# Export report: ${m.model.name} ${m.model.version}`, '');
  lines.push(`Created ${m.model.createdAt}; ONNX opset ${m.model.opset}; input \`${m.model.inputName}\` [N, ${m.model.inputShape[1]}, 1], output \`${m.model.outputName}\` [N, ${labels.length}].`, '');
  lines.push('## fp32 vs int8 on the test split', '');
  lines.push(`| | fp32 | int8 (${c.chosenCalibration} calibration, LSTM ${c.lstm}) |`, '| --- | ---: | ---: |');
  lines.push(row('accuracy', (v) => pct(v.accuracy), vs));
  lines.push(row('macro-F1', (v) => pct(v.macroF1), vs));
  for (const l of labels) lines.push(row(`recall ${l}`, (v) => pct(v.perClassRecall[l]), vs));
  lines.push(row('argmax agrees with fp32', (v) => pct(v.agreementWithFp32), vs));
  lines.push(row('model file (bytes)', (v) => num(v.bytes), vs));
  lines.push(row('onnxruntime-web flows/s (1 thread, batch 256)', (v) => num(v.ortWebFlowsPerSec), vs));
  lines.push(row('onnxruntime-node flows/s (1 thread, reference)', (v) => num(v.ortNodeFlowsPerSec), vs));
  lines.push('', 'Speeds: medians of 3 interleaved rounds on this machine at export time (shared machines are noisy; `npm run bench -- inference` measures more carefully).');
  lines.push('');
  const k = c.checks;
  lines.push('## Checks', '');
  lines.push(`- accuracy drop ${k.accuracyDropPts.toFixed(2)} points (limit 0.5): ${k.accuracyDropPts <= 0.5 ? 'ok' : 'FAILED'}`);
  lines.push(`- largest recall drop ${k.maxRecallDropPts.toFixed(2)} points, class ${k.maxRecallDropClass} (limit 1): ${k.maxRecallDropPts <= 1 ? 'ok' : 'FAILED'}`);
  lines.push(`- int8 size ${(k.sizeRatio * 100).toFixed(1)}% of fp32 (limit 50%): ${k.sizeRatio <= 0.5 ? 'ok' : 'FAILED'}`);
  lines.push(`- parity of the fp32 ONNX with tfjs on ${c.parity.rows} test rows: max |Δp| ${c.parity.ortNodeMaxAbsDiff.toExponential(2)} (onnxruntime-node), ${c.parity.ortWebMaxAbsDiff.toExponential(2)} (onnxruntime-web)`);
  const fused = c.optimizedOps['com.microsoft:QLinearConv'] ?? 0;
  lines.push(`- onnxruntime fused QDQ Conv into QLinearConv: ${fused > 0 ? `yes (${fused})` : 'NO'}; optimised graph: ${Object.entries(c.optimizedOps).map(([o, n]) => `${o}×${n}`).join(', ')}`);
  lines.push('');
  lines.push('## Calibration methods', '');
  lines.push('The shipped method is the one whose argmax agrees more often with fp32 on the calibration rows (training data), so the test split plays no part in the choice.', '');
  lines.push('| method | agreement with fp32 (calibration rows) | test accuracy | test macro-F1 | agreement with fp32 (test) |', '| --- | ---: | ---: | ---: | ---: |');
  for (const v of c.candidates) {
    lines.push(`| ${v.calibration}${v.calibration === c.chosenCalibration ? ' (shipped)' : ''} | ${pct(v.calibrationAgreement)} | ${pct(v.accuracy)} | ${pct(v.macroF1)} | ${pct(v.agreementWithFp32)} |`);
  }
  lines.push('');
  lines.push('## Decision thresholds', '');
  lines.push('A hub takes the most probable class c and raises an alert only when p(c) ≥ thresholds[c]; otherwise the verdict is Normal. ' +
    'The default is 0.5 for every class (a class must be more likely than all others together); pass per-class thresholds to change it.', '');
  lines.push(`| class | threshold | int8 precision | int8 recall | support |`, '| --- | ---: | ---: | ---: | ---: |');
  for (const l of labels) {
    const pc = m.metrics.perClass[l];
    lines.push(`| ${l} | ${m.thresholds[l]} | ${pct(pc?.precision)} | ${pct(pc?.recall)} | ${pc?.support ?? '–'} |`);
  }
  lines.push('');
  lines.push('## Bundle', '');
  for (const [f, v] of Object.entries(m.files)) lines.push(`- \`${f}\`: ${v.bytes} bytes, sha256 ${v.sha256}`);
  lines.push('', `Training data: ${m.training.data.join(', ')}; rows ${m.training.rows.train} train / ${m.training.rows.test} test; recipe ${m.training.recipe}; seed ${m.training.seed}.`, '');
  return lines.join('\n');
}
