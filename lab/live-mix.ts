/**
 * Real-tool recordings of the live lab (`iot-ids lab live --out DIR`: `DIR/<scenario>/flows.csv`, or
 * `flows-compat.csv` for a compat-mode corpus, labelled per flow) mixed into a corpus. A recording is never both
 * trained on and tested on: whole scenarios are split, per
 * attack family (the most common non-Normal Cat of the scenario's flows), with the same seeded rule as the benign
 * devices (a family with one scenario trains). Train scenarios' rows join flows.csv, at most `maxPerScenario` each
 * (a seeded sample: a flood must not drown the corpus); test scenarios' rows go whole to `live-test.csv`.
 * `skip` leaves scenarios out by name: attacks whose single flows are ordinary traffic (a reflected DNS or SSDP
 * answer, a version probe's complete session) teach a flow model to call real devices' answers attacks, and are
 * the watchers' to see (many sources answering one victim, one source probing many services).
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LABELED_FLOW_CSV_HEADER } from '../asm/flow-csv.ts';
import type { MeterMode } from '../asm/flowmeter-host.ts';
import { IdsError } from '../shared/errors.ts';
import { Rng } from '../shared/random.ts';

export interface LiveScenarioReport {
  scenario: string;
  family: string;
  side: 'train' | 'test';
  flows: number;
  /** Rows written (train: after the per-scenario cap). */
  used: number;
  byCat: Record<string, number>;
}

const CAT_COLUMN = LABELED_FLOW_CSV_HEADER.split(',').length - 2;

/** The scenario's flows in the corpus's meter mode: the live lab writes flows.csv (corrected) and flows-compat.csv. */
function flowsFile(dir: string, mode: MeterMode | undefined): string | undefined {
  const f = join(dir, mode === 'cicflowmeter-compat' ? 'flows-compat.csv' : 'flows.csv');
  return existsSync(f) ? f : undefined;
}

function readRows(path: string): string[] {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/).filter((l) => l.length > 0);
  if (lines[0]?.trim() !== LABELED_FLOW_CSV_HEADER) throw new IdsError('BAD_HEADER', `${path}: expected the 86 IoTID20 columns (…,Label,Cat,Sub_Cat)`);
  return lines.slice(1);
}

function familyOf(rows: string[]): { family: string; byCat: Record<string, number> } {
  const byCat: Record<string, number> = {};
  for (const r of rows) {
    const cat = r.split(',')[CAT_COLUMN] ?? '';
    byCat[cat] = (byCat[cat] ?? 0) + 1;
  }
  const attacks = Object.entries(byCat).filter(([c]) => c !== 'Normal').sort((a, b) => b[1] - a[1]);
  return { family: attacks[0]?.[0] ?? 'Normal', byCat };
}

/**
 * Appends train scenarios' rows via `write` and writes test scenarios' rows to `testCsv`; returns one report per
 * scenario (sorted by name).
 */
export function mixLive(dir: string, opts: { seed: number; test: number; maxPerScenario: number; mode?: MeterMode; skip?: string[] }, write: (row: string) => void, testCsv: string): LiveScenarioReport[] {
  if (!existsSync(dir)) throw new IdsError('BAD_OPTION', `--live ${dir}: no such folder`);
  const skip = new Set(opts.skip ?? []);
  const scenarios = readdirSync(dir).sort().filter((n) => !skip.has(n) && statSync(join(dir, n)).isDirectory() && flowsFile(join(dir, n), opts.mode));
  if (scenarios.length === 0) throw new IdsError('EMPTY_INPUT', `--live ${dir}: no <scenario>/flows.csv in it`);
  const loaded = scenarios.map((s) => {
    const rows = readRows(flowsFile(join(dir, s), opts.mode)!);
    return { scenario: s, rows, ...familyOf(rows) };
  });
  const rng = new Rng((opts.seed ^ 0x11fe_1ab5) >>> 0);
  const side = new Map<string, 'train' | 'test'>();
  for (const fam of [...new Set(loaded.map((l) => l.family))].sort()) {
    const group = rng.shuffle(loaded.filter((l) => l.family === fam).map((l) => l.scenario));
    const nTest = Math.min(Math.round(group.length * opts.test), group.length - 1);
    group.forEach((s, i) => side.set(s, i < nTest ? 'test' : 'train'));
  }
  const fd = openSync(testCsv, 'w');
  const reports: LiveScenarioReport[] = [];
  try {
    writeSync(fd, LABELED_FLOW_CSV_HEADER + '\n');
    for (const l of loaded) {
      const s = side.get(l.scenario)!;
      let used = 0;
      if (s === 'test') {
        if (l.rows.length) writeSync(fd, l.rows.join('\n') + '\n');
        used = l.rows.length;
      } else {
        const keep = Math.min(1, opts.maxPerScenario / Math.max(1, l.rows.length));
        for (const r of l.rows) if (keep >= 1 || rng.next() < keep) (write(r), used++);
      }
      reports.push({ scenario: l.scenario, family: l.family, side: s, flows: l.rows.length, used, byCat: l.byCat });
    }
  } finally {
    closeSync(fd);
  }
  return reports;
}
