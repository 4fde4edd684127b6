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
