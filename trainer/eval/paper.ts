/**
 * The paper's IoTID20 results beside ours, in its layout (per-class rows Accuracy / Precision / Recall / F1 over
 * the five categories). Only figures stated in what we could find are filled in; the rest show "n/a" rather
 * than guesses:
 *  - overall accuracy above 95 % on the five IoTID20 categories;
 *  - MITM ARP Spoofing recall 0.82, its weakest class;
 *  - its F1 row equals P·R/(P+R), half the harmonic mean 2·P·R/(P+R); we print that column from our own P and R
 *    so a reader can line the two up.
 */
import { IOTID20_CATEGORIES } from '../../shared/labels.ts';
import type { TrainReport } from './report.ts';

export interface PaperFigures {
  accuracyAtLeast: number;
  perClass: Partial<Record<string, { precision?: number; recall?: number; f1?: number; accuracy?: number }>>;
}

export const PAPER_IOTID20: PaperFigures = {
  accuracyAtLeast: 0.95,
  perClass: { 'MITM ARP Spoofing': { recall: 0.82 } },
};

/** True when a run's classes are exactly IoTID20's five categories (the paper's setting). */
export function isIotid20Categories(labels: readonly string[]): boolean {
  return labels.length === IOTID20_CATEGORIES.length && IOTID20_CATEGORIES.every((c) => labels.includes(c));
}

const f3 = (v: number | undefined): string => (v === undefined ? 'n/a' : v.toFixed(3));

export function paperComparisonMarkdown(r: Pick<TrainReport, 'labels' | 'perClass' | 'accuracy'>): string | null {
  if (!isIotid20Categories(r.labels)) return null;
  const order = IOTID20_CATEGORIES;
  const lines: string[] = [];
  lines.push('## Beside the paper (IoTID20, 5 categories)');
  lines.push('');
  lines.push(
    `Paper: accuracy > ${PAPER_IOTID20.accuracyAtLeast}; ours: ${r.accuracy.toFixed(4)}. Cells read "paper / ours"; ` +
      '"n/a" = not published in what we could find. The paper\'s F1 row is P·R/(P+R) (half the true F1); the ' +
      '"paper-style F1" row computes that from our P and R for a like-for-like look.',
  );
  lines.push('');
  lines.push(`| metric | ${order.join(' | ')} |`);
  lines.push(`| :-- | ${order.map(() => '--:').join(' | ')} |`);
  for (const m of ['accuracy', 'precision', 'recall', 'f1'] as const) {
    lines.push(`| ${m === 'f1' ? 'F1' : m[0].toUpperCase() + m.slice(1)} | ${order.map((c) => `${f3(PAPER_IOTID20.perClass[c]?.[m])} / ${f3(r.perClass[c]?.[m])}`).join(' | ')} |`);
  }
  lines.push(
    `| paper-style F1 = P·R/(P+R) (ours) | ${order
      .map((c) => {
        const p = r.perClass[c];
        return p && p.precision + p.recall > 0 ? ((p.precision * p.recall) / (p.precision + p.recall)).toFixed(3) : '0.000';
      })
      .join(' | ')} |`,
  );
  return lines.join('\n');
}
