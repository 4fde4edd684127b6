/**
 * From a CSV header (any CICFlowMeter dialect) to a column plan: which cell is the label, which cells are model
 * features (in IoTID20 schema order) and which are ignored and why. Schema-driven through canonicalColumn().
 */
import {
  IOTID20_COLUMNS, IDENTIFIER_COLUMNS, PORT_COLUMNS, LABEL_COLUMNS, canonicalColumn, portColumnsFor,
  type Column, type PortPolicy,
} from '../../shared/features.ts';
import { IdsError } from '../../shared/errors.ts';

export interface HeaderOptions {
  labelColumn: string;
  drop: readonly string[];
  ports: PortPolicy;
  keepProtocol: boolean;
}

export interface ColumnPlan {
  /** Header cell count: every row must have exactly this many cells. */
  cells: number;
  labelIndex: number;
  /** Selected features in schema order. */
  features: Column[];
  /** Header index of each selected feature (same order as `features`). */
  featureIndex: Int32Array;
  /** Header cells not used as features, with the reason, e.g. "id (unknown)". */
  ignored: string[];
}

/** Same folding as shared/features.ts: case, spaces and underscores do not matter. */
export const squash = (name: string): string => name.replace(/^\uFEFF/, '').toLowerCase().replace(/[\s_]+/g, '');

const SCHEMA_ORDER: ReadonlyMap<Column, number> = new Map(IOTID20_COLUMNS.map((c, i) => [c, i]));

export function planColumns(file: string, header: readonly string[], opts: HeaderOptions): ColumnPlan {
  const wantLabel = squash(opts.labelColumn);
  const keptPorts = new Set<Column>(portColumnsFor(opts.ports));
  const dropCanon = new Set<Column>();
  const dropRaw = new Set<string>();
  for (const d of opts.drop) {
    const c = canonicalColumn(d);
    if (c) dropCanon.add(c);
    dropRaw.add(squash(d));
  }

  let labelIndex = -1;
  const chosen = new Map<Column, number>();
  const ignored: string[] = [];
  header.forEach((raw, i) => {
    const name = raw.trim() || `column ${i + 1} (empty name)`;
    if (labelIndex < 0 && squash(name) === wantLabel) {
      labelIndex = i;
      return;
    }
    const c = canonicalColumn(name);
    let why: string | undefined;
    if (c === undefined) why = 'not in the schema';
    else if (dropRaw.has(squash(name)) || dropCanon.has(c)) why = 'dropped by option';
    else if (LABEL_COLUMNS.includes(c)) why = 'another label column';
    else if (IDENTIFIER_COLUMNS.includes(c)) why = 'identifier';
    else if (PORT_COLUMNS.includes(c) && !keptPorts.has(c)) why = `port policy '${opts.ports}'`;
    else if (c === 'Protocol' && !opts.keepProtocol) why = 'keepProtocol false';
    else if (chosen.has(c)) why = `duplicate of column ${chosen.get(c)! + 1}, first kept`;
    if (why) ignored.push(`${name} (${why})`);
    else chosen.set(c!, i);
  });

  const features = [...chosen.keys()].sort((a, b) => SCHEMA_ORDER.get(a)! - SCHEMA_ORDER.get(b)!);
  const missing: string[] = [];
  if (labelIndex < 0) missing.push(`the label column '${opts.labelColumn}'`);
  if (features.length === 0) missing.push('any known feature column');
  if (missing.length > 0) {
    const shown = header.slice(0, 8).map((h) => h.trim()).join(', ');
    throw new IdsError(
      'BAD_HEADER',
      `${file}: header lacks ${missing.join(' and ')} (it starts: ${shown}${header.length > 8 ? ', ...' : ''}; ` +
        `${header.length} cells). Pick the label with --label; feature names follow CICFlowMeter/IoTID20.`,
    );
  }
  return {
    cells: header.length,
    labelIndex,
    features,
    featureIndex: Int32Array.from(features, (c) => chosen.get(c)!),
    ignored,
  };
}

/**
 * The column plan for an explicit feature list (`--features a,b,c`, or the numeric columns `all-numeric` found):
 * each wanted name matches a header cell by the same folding, or by naming the same IoTID20 column in another
 * dialect; the features keep the list's order and names (IoTID20 names where the schema knows the column, so a
 * hub can tell which it computes). The label column is never a feature; a missing column is BAD_HEADER naming it.
 */
export function planListedColumns(file: string, header: readonly string[], wanted: readonly string[], labelColumn: string): ColumnPlan {
  const wantLabel = squash(labelColumn);
  const labelIndex = header.findIndex((h) => squash(h) === wantLabel);
  if (labelIndex < 0) {
    throw new IdsError('BAD_HEADER', `${file}: no label column '${labelColumn}' (header: ${header.slice(0, 8).map((h) => h.trim()).join(', ')}${header.length > 8 ? ', ...' : ''}); pick it with --label-column`);
  }
  const used = new Set<number>([labelIndex]);
  const features: string[] = [];
  const index: number[] = [];
  const missing: string[] = [];
  for (const w of wanted) {
    if (squash(w) === wantLabel) throw new IdsError('BAD_OPTION', `--features: '${w}' is the label column, never a feature`);
    const canon = canonicalColumn(w);
    let at = header.findIndex((h, i) => !used.has(i) && squash(h) === squash(w));
    if (at < 0 && canon) at = header.findIndex((h, i) => !used.has(i) && canonicalColumn(h) === canon);
    if (at < 0) {
      missing.push(w);
      continue;
    }
    const name = canon ?? w.trim();
    if (features.includes(name)) throw new IdsError('BAD_OPTION', `--features names '${name}' twice`);
    used.add(at);
    features.push(name);
    index.push(at);
  }
  if (missing.length) throw new IdsError('BAD_HEADER', `${file}: lacks the feature column(s) ${missing.join(', ')}`);
  if (features.length === 0) throw new IdsError('BAD_OPTION', '--features: the list is empty');
  const ignored = header.map((h, i) => (used.has(i) ? '' : `${h.trim() || `column ${i + 1} (empty name)`} (not listed)`)).filter(Boolean);
  return { cells: header.length, labelIndex, features: features as Column[], featureIndex: Int32Array.from(index), ignored };
}
