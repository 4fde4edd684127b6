/**
 * Loads flow CSVs (IoTID20, its 1% sample, CIC-IDS2017 and other CICFlowMeter dialects) into one raw feature
 * matrix with class labels, streaming file by file and counting everything it skips.
 *
 * Label order (the y values): 'Normal' first when present, then the other classes sorted by UTF-16 code units
 * ('Anomaly' < 'DoS' < 'Mirai'). It depends only on which classes occur, never on file or row order, so the same
 * data always gives the same label indices.
 *
 * Several files must select the same feature set (after identifier/port/drop rules); otherwise BAD_HEADER names
 * both files. A file with a header and no rows is fine (CIC-IDS2017's data_header_reference.csv).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LabelMap } from '../../shared/labels.ts';
import { NORMAL_LABEL } from '../../shared/labels.ts';
import type { PortPolicy } from '../../shared/features.ts';
import { IdsError } from '../../shared/errors.ts';
import { readRecords, splitRecord } from './csv-lines.ts';
import { parseRecord, cellText, SKIP, LABEL, type ParsedRecord } from './row-parse.ts';
import { planColumns, planListedColumns, type ColumnPlan } from './header.ts';
import { numericColumns } from './numeric-columns.ts';
import { RowStore, DuplicateFilter } from './row-store.ts';

export interface DatasetOptions {
  files: string[];            // files or folders (a folder = every *.csv in it, sorted)
  labelColumn?: string;       // default 'Cat'; matched case/space-insensitively; may be a non-IoTID20 name like 'Label'
  labelMap?: LabelMap;        // raw label -> class; raw labels it does not name are dropped and counted
  drop?: string[];            // extra columns to drop (any dialect name)
  ports?: PortPolicy;         // default 'dst' (see shared/features.ts for the reason)
  keepProtocol?: boolean;     // default true
  dedupe?: boolean;           // default false; removes exact duplicate rows (features+label), counted
  keepConstant?: boolean;     // default false; true keeps constant columns (evaluating a bundle needs its exact features)
  maxRows?: number;
  /**
   * Which columns are features: by default the IoTID20 schema's (any CICFlowMeter dialect, schema order); a list
   * takes exactly those columns in that order (data/header.ts planListedColumns); 'all-numeric' every numeric
   * column of the first file (data/numeric-columns.ts), the label column never.
   */
  features?: readonly string[] | 'all-numeric';
  onProgress?: (rowsRead: number, bytesRead: number, bytesTotal: number) => void;
}

export interface DataReport {
  files: { path: string; rows: number; skipped: number }[];
  rowsRead: number; rowsKept: number;
  skipped: { wrongCellCount: number; badNumber: number; unmappedLabel: number; emptyLabel: number };
  examples: string[];                 // first ~10 skip reasons with file:line
  nonFinite: Record<string, number>;  // per feature: inf/NaN/empty cells kept (scaler handles them)
  constantColumns: string[];          // dropped from features
  ignoredColumns: string[];           // header cells not in the schema or dropped as identifiers
  duplicatesRemoved: number;
  classCounts: Record<string, number>;
}

export interface Dataset {
  features: string[];   // IoTID20 names, model input order (schema order), identifiers removed, constants removed
  labels: string[];     // class names, index = y value: 'Normal' first if present, then sorted (see top of file)
  X: Float32Array;      // rows × features, row-major, RAW (unscaled) values; inf/NaN kept as is
  y: Int32Array;
  rows: number;
  report: DataReport;
}

const MAX_EXAMPLES = 10;
const PROGRESS_EVERY = 65536;

/** Every CSV named by `files`: files as given, folders expanded to their *.csv (sorted). */
export function expandFiles(files: readonly string[]): { path: string; size: number }[] {
  if (files.length === 0) throw new IdsError('BAD_OPTION', 'no data files given');
  const out: { path: string; size: number }[] = [];
  for (const f of files) {
    let st;
    try {
      st = statSync(f);
    } catch (e) {
      throw new IdsError('BAD_OPTION', `data file not found: ${f}`, { cause: e });
    }
    if (st.isDirectory()) {
      const csvs = readdirSync(f).filter((n) => n.toLowerCase().endsWith('.csv')).sort();
      if (csvs.length === 0) throw new IdsError('EMPTY_INPUT', `folder ${f} holds no *.csv files`);
      for (const n of csvs) out.push({ path: join(f, n), size: statSync(join(f, n)).size });
    } else out.push({ path: f, size: st.size });
  }
  return out;
}

const sameFeatures = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function describeDifference(a: readonly string[], b: readonly string[]): string {
  const onlyA = a.filter((x) => !b.includes(x));
  const onlyB = b.filter((x) => !a.includes(x));
  return `only in the first: ${onlyA.join(', ') || '-'}; only in the second: ${onlyB.join(', ') || '-'}`;
}

export async function loadDataset(opts: DatasetOptions): Promise<Dataset> {
  const labelColumn = opts.labelColumn ?? 'Cat';
  const headerOpts = {
    labelColumn,
    drop: opts.drop ?? [],
    ports: opts.ports ?? 'dst',
    keepProtocol: opts.keepProtocol ?? true,
  };
  if (!['none', 'dst', 'both'].includes(headerOpts.ports)) {
    throw new IdsError('BAD_OPTION', `ports must be none, dst or both, got '${headerOpts.ports}'`);
  }
  const maxRows = opts.maxRows ?? Infinity;
  if (!(maxRows > 0)) throw new IdsError('BAD_OPTION', `maxRows must be positive, got ${opts.maxRows}`);
  const labelMap = opts.labelMap;
  const files = expandFiles(opts.files);
  const bytesTotal = files.reduce((s, f) => s + f.size, 0);

  const report: DataReport = {
    files: [], rowsRead: 0, rowsKept: 0,
    skipped: { wrongCellCount: 0, badNumber: 0, unmappedLabel: 0, emptyLabel: 0 },
    examples: [], nonFinite: {}, constantColumns: [], ignoredColumns: [], duplicatesRemoved: 0, classCounts: {},
  };
  const ignored = new Set<string>();
  let listed: readonly string[] | undefined = opts.features === 'all-numeric' ? undefined : opts.features;
  if (opts.features === 'all-numeric') {
    const found = await numericColumns(files[0].path, labelColumn, headerOpts.ports);
    listed = found.features;
    for (const c of found.ignored) ignored.add(c);
  }
  const exampleLabels = new Set<string>();
  const example = (msg: string) => {
    if (report.examples.length < MAX_EXAMPLES) report.examples.push(msg);
  };

  let features: string[] | undefined;
  let featuresFrom = '';
  let store: RowStore | undefined;
  let nonFinite: Int32Array | undefined;
  const dupes = opts.dedupe ? new DuplicateFilter() : undefined;
  const classIndex = new Map<string, number>();
  const classNames: string[] = [];
  let bytesRead = 0;
  let done = false;

  for (const file of files) {
    if (done) break;
    if (file.size === 0) throw new IdsError('EMPTY_INPUT', `${file.path} is empty (0 bytes)`);
    const fileReport = { path: file.path, rows: 0, skipped: 0 };
    let plan: ColumnPlan | undefined;
    let values = new Float64Array(0);
    let slots = new Int32Array(0);
    const parsed: ParsedRecord = { cells: 0, badCell: -1, label: '' };

    const onRecord = (record: string, line: number): boolean => {
      if (plan === undefined) {
        if (record.trim().length === 0) return true; // blank lines before the header
        plan = listed
          ? planListedColumns(file.path, splitRecord(record), listed, labelColumn)
          : planColumns(file.path, splitRecord(record), headerOpts);
        if (features === undefined) {
          features = plan.features;
          featuresFrom = file.path;
          store = new RowStore(features.length);
          nonFinite = new Int32Array(features.length);
        } else if (!sameFeatures(features, plan.features)) {
          throw new IdsError(
            'BAD_HEADER',
            `${file.path} and ${featuresFrom} select different feature columns (${describeDifference(plan.features, features)}); ` +
              'load them separately or drop the extra columns with --drop',
          );
        }
        if (opts.features !== 'all-numeric') for (const c of plan.ignored) ignored.add(c);
        values = new Float64Array(plan.features.length);
        slots = new Int32Array(plan.cells).fill(SKIP);
        plan.featureIndex.forEach((col, k) => (slots[col] = k));
        slots[plan.labelIndex] = LABEL;
        return true;
      }
      if (record.length === 0 || record.trim().length === 0) return true;
      report.rowsRead++;
      if (opts.onProgress && report.rowsRead % PROGRESS_EVERY === 0) opts.onProgress(report.rowsRead, bytesRead, bytesTotal);
      parseRecord(record, slots, values, parsed);
      if (parsed.cells !== plan.cells) {
        report.skipped.wrongCellCount++;
        fileReport.skipped++;
        example(`${file.path}:${line}: ${parsed.cells} cells, the header has ${plan.cells}${parsed.cells < plan.cells ? ' (truncated row?)' : ''}`);
        return true;
      }
      const raw = parsed.label.trim();
      if (raw.length === 0) {
        report.skipped.emptyLabel++;
        fileReport.skipped++;
        example(`${file.path}:${line}: empty label in column '${labelColumn}'`);
        return true;
      }
      let cls: string;
      if (labelMap) {
        if (!Object.hasOwn(labelMap, raw)) {
          report.skipped.unmappedLabel++;
          fileReport.skipped++;
          if (!exampleLabels.has(raw)) {
            exampleLabels.add(raw);
            example(`${file.path}:${line}: label '${raw}' is not in the class map: row dropped`);
          }
          return true;
        }
        cls = labelMap[raw];
      } else cls = raw;
      if (parsed.badCell >= 0) {
        report.skipped.badNumber++;
        fileReport.skipped++;
        const name = features![slots[parsed.badCell]];
        example(`${file.path}:${line}: column '${name}' holds '${cellText(record, parsed.badCell).slice(0, 40)}', not a number`);
        return true;
      }
      let c = classIndex.get(cls);
      if (c === undefined) {
        c = classNames.length;
        classIndex.set(cls, c);
        classNames.push(cls);
      }
      if (dupes?.isDuplicate(values, c)) {
        report.duplicatesRemoved++;
        return true;
      }
      for (let k = 0; k < values.length; k++) if (values[k] - values[k] !== 0) nonFinite![k]++;
      store!.push(values, c);
      fileReport.rows++;
      if (store!.rows >= maxRows) {
        done = true;
        return false;
      }
      return true;
    };

    await readRecords(file.path, onRecord, (n) => (bytesRead += n));
    if (plan === undefined) throw new IdsError('EMPTY_INPUT', `${file.path} holds no header (only blank lines)`);
    report.files.push(fileReport);
  }
  opts.onProgress?.(report.rowsRead, bytesRead, bytesTotal);

  if (!store || store.rows === 0) {
    const s = report.skipped;
    throw new IdsError(
      'EMPTY_INPUT',
      `no rows kept from ${files.length} file(s): ${report.rowsRead} read, skipped ${s.wrongCellCount} wrong cell count, ` +
        `${s.badNumber} bad number, ${s.unmappedLabel} unmapped label, ${s.emptyLabel} empty label` +
        (report.examples.length ? `; e.g. ${report.examples[0]}` : ''),
    );
  }

  const all = features!;
  const constant = store.constantColumns();
  // An explicit list is kept whole: the caller (a bundle's features, an operator's list) needs those columns.
  const keepConstant = opts.keepConstant ?? Array.isArray(opts.features);
  const keep = all.map((_, j) => j).filter((j) => keepConstant || !constant[j]);
  if (keep.length === 0) {
    throw new IdsError('EMPTY_INPUT', `every feature column is constant over the ${store.rows} kept rows: nothing to learn from`);
  }
  report.constantColumns = keepConstant ? [] : all.filter((_, j) => constant[j]);
  for (const j of keep) if (nonFinite![j] > 0) report.nonFinite[all[j]] = nonFinite![j];
  report.ignoredColumns = [...ignored];

  // Final label order: Normal first, then by code units; remap the first-appearance indices.
  const labels = [...classNames].sort((a, b) =>
    a === NORMAL_LABEL ? -1 : b === NORMAL_LABEL ? 1 : a < b ? -1 : a > b ? 1 : 0);
  const remap = Int32Array.from(classNames, (n) => labels.indexOf(n));
  const rows = store.rows;
  const { X, y } = store.pack(keep, (c) => remap[c]);
  const counts = new Array<number>(labels.length).fill(0);
  for (let r = 0; r < rows; r++) counts[y[r]]++;
  // A class seen only on duplicate rows has no rows: leave it out so every label has support.
  const present = labels.filter((_, i) => counts[i] > 0);
  if (present.length !== labels.length) {
    const shift = Int32Array.from(labels, (n) => present.indexOf(n));
    for (let r = 0; r < rows; r++) y[r] = shift[y[r]];
  }
  for (const n of present) report.classCounts[n] = counts[labels.indexOf(n)];
  report.rowsKept = rows;

  return { features: keep.map((j) => all[j]), labels: present, X, y, rows, report };
}
