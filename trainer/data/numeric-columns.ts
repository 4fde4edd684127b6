/**
 * `--features all-numeric`: which columns of a labelled CSV hold numbers, judged on its first rows (a column is
 * numeric when every sniffed cell reads as a number, inf/NaN or a blank, and at least one is a finite number).
 * Identifier and label columns of the IoTID20 schema and ports outside the port policy are left out as in the
 * schema-driven mode; everything else the file has is a candidate, whatever its name (CICIoT2023's 39 columns,
 * a fleet's own export). The label column is never a feature.
 */
import { IdsError } from '../../shared/errors.ts';
import { IDENTIFIER_COLUMNS, LABEL_COLUMNS, PORT_COLUMNS, canonicalColumn, portColumnsFor, type PortPolicy } from '../../shared/features.ts';
import { readRecords, splitRecord } from './csv-lines.ts';
import { BAD, parseCell } from './row-parse.ts';
import { squash } from './header.ts';

export const SNIFF_ROWS = 1000;

export interface NumericColumns {
  /** Header names of the numeric feature columns, in file order. */
  features: string[];
  /** Header cells left out, each with its reason. */
  ignored: string[];
}

export async function numericColumns(file: string, labelColumn: string, ports: PortPolicy = 'dst', sniffRows = SNIFF_ROWS): Promise<NumericColumns> {
  let header: string[] | undefined;
  let numeric: boolean[] = [];
  let finite: boolean[] = [];
  let rows = 0;
  await readRecords(file, (record) => {
    if (!header) {
      if (record.trim().length === 0) return true;
      header = splitRecord(record);
      numeric = header.map(() => true);
      finite = header.map(() => false);
      return true;
    }
    if (record.trim().length === 0) return true;
    const cells = splitRecord(record);
    if (cells.length !== header.length) return true; // counted when the rows are loaded
    cells.forEach((c, i) => {
      if (!numeric[i]) return;
      const v = parseCell(c.trim());
      if (v === BAD) numeric[i] = false;
      else if (Number.isFinite(v)) finite[i] = true;
    });
    return ++rows < sniffRows;
  });
  if (!header) throw new IdsError('EMPTY_INPUT', `${file} holds no header`);
  const wantLabel = squash(labelColumn);
  if (!header.some((h) => squash(h) === wantLabel)) {
    throw new IdsError('BAD_HEADER', `${file}: no label column '${labelColumn}' (header: ${header.slice(0, 8).map((h) => h.trim()).join(', ')}, ...); pick it with --label-column`);
  }
  const keptPorts = new Set<string>(portColumnsFor(ports));
  const features: string[] = [];
  const ignored: string[] = [];
  header.forEach((raw, i) => {
    const name = raw.trim() || `column ${i + 1}`;
    if (squash(name) === wantLabel) return;
    const c = canonicalColumn(name);
    let why: string | undefined;
    if (c && (LABEL_COLUMNS as readonly string[]).includes(c)) why = 'another label column';
    else if (c && (IDENTIFIER_COLUMNS as readonly string[]).includes(c)) why = 'identifier';
    else if (c && (PORT_COLUMNS as readonly string[]).includes(c) && !keptPorts.has(c)) why = `port policy '${ports}'`;
    else if (!numeric[i]) why = 'not numeric';
    else if (!finite[i]) why = `no finite number in the first ${rows} rows`;
    if (why) ignored.push(`${name} (${why})`);
    else features.push(name);
  });
  if (features.length === 0) throw new IdsError('BAD_HEADER', `${file}: no numeric feature column (${ignored.join(', ')})`);
  return { features, ignored };
}
