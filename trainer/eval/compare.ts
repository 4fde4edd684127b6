/**
 * Several runs' report.json side by side (e.g. the paper and default recipes over seeds 1-3) as a Markdown
 * table with per-recipe means: what the README's comparison is made from.
 *   npx tsx trainer/eval/compare.ts runs/a runs/b ...
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IdsError } from '../../shared/errors.ts';
import type { TrainReport } from './report.ts';

export function loadReport(dir: string): TrainReport {
  const p = dir.endsWith('.json') ? dir : join(dir, 'report.json');
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as TrainReport;
  } catch (e) {
    throw new IdsError('BAD_OPTION', `cannot read a run report at ${p}: ${(e as Error).message}`, { cause: e });
  }
}

const f4 = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(4));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

export function compareMarkdown(reports: readonly TrainReport[]): string {
  if (reports.length === 0) return '';
  const labels = reports[0].labels;
  const head = ['recipe', 'seed', 'accuracy', 'macro-F1', 'weighted-F1', ...labels.map((l) => `F1 ${l}`), 'epochs', 'train time', 'baseline acc', 'baseline macro-F1'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i === 0 ? ':--' : '--:')).join(' | ')} |`];
  const row = (cells: (string | number)[]) => lines.push(`| ${cells.join(' | ')} |`);
  const byRecipe = new Map<string, TrainReport[]>();
  for (const r of reports) {
    row([
      r.recipe.name, r.seed, f4(r.accuracy), f4(r.macroF1), f4(r.weightedF1), ...labels.map((l) => f4(r.perClass[l]?.f1)),
      r.history.length, `${Math.round(r.timings.train ?? 0)} s`, f4(r.baseline?.accuracy), f4(r.baseline?.macroF1),
    ]);
    byRecipe.set(r.recipe.name, [...(byRecipe.get(r.recipe.name) ?? []), r]);
  }
  for (const [name, rs] of byRecipe) {
    if (rs.length < 2) continue;
    const bl = rs.filter((r) => r.baseline);
    row([
      `**${name} mean**`, rs.map((r) => r.seed).join(','), `**${f4(mean(rs.map((r) => r.accuracy)))}**`, `**${f4(mean(rs.map((r) => r.macroF1)))}**`,
      f4(mean(rs.map((r) => r.weightedF1))), ...labels.map((l) => f4(mean(rs.map((r) => r.perClass[l]?.f1 ?? 0)))),
      '', '', bl.length ? f4(mean(bl.map((r) => r.baseline!.accuracy))) : '–', bl.length ? f4(mean(bl.map((r) => r.baseline!.macroF1))) : '–',
    ]);
  }
  return lines.join('\n') + '\n';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(compareMarkdown(process.argv.slice(2).map(loadReport)));
}
