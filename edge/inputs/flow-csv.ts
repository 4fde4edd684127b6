/**
 * Flow records as CSV (CICFlowMeter / IoTID20 / CIC-IDS2017 columns in any known dialect) from a file, stdin
 * ('-') or any stream, read line by line into the hub's raw row layout. A row that cannot be read (wrong cell
 * count, text in a numeric cell, a repeated header) is counted as malformed and skipped: never a crash.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { canonicalColumn } from '../../shared/features.ts';
import { strictDecimal } from '../../shared/decimal.ts';
import { IdsError } from '../../shared/errors.ts';
import { RAW_COLUMNS, RAW_DST_PORT, RAW_PROTOCOL, RAW_SRC_PORT, rawIndex } from '../raw-columns.ts';
import type { FlowSink } from './sink.ts';
import { fastDecimal } from './fast-number.ts';
import { LineSplitter, TOO_LONG } from './lines.ts';

/**
 * Longest line read: a flow row is ~1 KB and a header ~2 KB. A longer line is skipped as malformed while its
 * characters are dropped as they arrive, so a hostile stream without newlines costs fixed memory and linear time.
 */
export const MAX_LINE_CHARS = 1 << 20;

const SKIP = -1;
const SRC_IP = -2;
const DST_IP = -3;

export interface CsvInputResult {
  rows: number;
  accepted: number;
  shed: number;
  malformed: number;
}

export interface CsvInputOptions {
  /** Model features the header must supply (names the missing ones in the error). */
  required?: readonly string[];
  /** Called for each malformed row (1-based line number) — the hub counts and logs the first few. */
  onMalformed?: (line: number, reason: string) => void;
  signal?: AbortSignal;
}

export function openSource(source: string | Readable): { stream: Readable; name: string } {
  if (typeof source !== 'string') return { stream: source, name: 'stream' };
  if (source === '-') return { stream: process.stdin, name: 'stdin' };
  return { stream: createReadStream(source), name: source };
}

/** Set by parseCell when a cell holds text that is not a number (checked right after each call). */
let cellFailed = false;

/** A numeric cell: empty and nan → NaN (the scaler's missing value), inf in any usual spelling → ±Infinity. */
function parseCell(cell: string): number {
  if (cell.length === 0) return NaN; // +'' would be 0; missing is NaN (the scaler maps both the same way)
  const v = strictDecimal(cell); // not +cell: that reads 0x10 as 16
  if (v === v) return v;
  const t = cell.trim().toLowerCase();
  if (t === 'inf' || t === '+inf' || t === 'infinity' || t === '+infinity') return Infinity;
  if (t === '-inf' || t === '-infinity') return -Infinity;
  if (t !== 'nan' && t !== '') cellFailed = true;
  return NaN;
}

export async function readFlowCsv(source: string | Readable, sink: FlowSink, opts: CsvInputOptions = {}): Promise<CsvInputResult> {
  const { stream, name } = openSource(source);
  const res: CsvInputResult = { rows: 0, accepted: 0, shed: 0, malformed: 0 };
  const width = RAW_COLUMNS.length;
  if (sink.inputs !== width) throw new IdsError('BAD_OPTION', `flow sink takes ${sink.inputs} columns, the CSV reader writes ${width}`);
  const row = new Float64Array(width);
  let slots: Int16Array | undefined;
  let headerLine = '';
  let lineNo = 0;
  let rest = '';
  const bad = (reason: string) => {
    res.malformed++;
    opts.onMalformed?.(lineNo, `${name} line ${lineNo}: ${reason}`);
  };

  const header = (line: string): Int16Array => {
    const cells = line.split(',');
    const s = new Int16Array(cells.length).fill(SKIP);
    const seen = new Set<string>();
    cells.forEach((c, i) => {
      const col = canonicalColumn(c.trim());
      if (!col || seen.has(col)) return; // unknown or duplicated (CIC-IDS2017 repeats Fwd Header Length)
      seen.add(col);
      if (col === 'Src_IP') s[i] = SRC_IP;
      else if (col === 'Dst_IP') s[i] = DST_IP;
      else s[i] = rawIndex(col) ?? SKIP;
    });
    const missing = (opts.required ?? []).filter((f) => !seen.has(f));
    if (missing.length) {
      throw new IdsError('BAD_HEADER', `${name}: header lacks model feature column(s) ${missing.join(', ')}`);
    }
    return s;
  };

  const handle = (line: string): void => {
    lineNo++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length === 0) return;
    if (!slots) {
      headerLine = line;
      slots = header(line);
      return;
    }
    res.rows++;
    if (line === headerLine) return bad('repeated header');
    row.fill(NaN);
    let src = '';
    let dst = '';
    let start = 0;
    let c = 0;
    const n = slots.length;
    for (; c < n; c++) {
      let end = line.indexOf(',', start);
      if (end < 0) end = line.length;
      else if (c === n - 1) return bad(`more than ${n} cells`);
      const slot = slots[c];
      if (slot >= 0) {
        const fast = fastDecimal(line, start, end);
        row[slot] = fast === fast ? fast : parseCell(line.slice(start, end));
        if (cellFailed) {
          cellFailed = false;
          return bad(`column ${c + 1} (${RAW_COLUMNS[slot]}) is not a number`);
        }
      } else if (slot === SRC_IP) src = line.slice(start, end).trim().slice(0, 64);
      else if (slot === DST_IP) dst = line.slice(start, end).trim().slice(0, 64);
      start = end + 1;
      if (end === line.length) {
        c++;
        break;
      }
    }
    if (c !== n) return bad(`${c} cells, header has ${n}`);
    const sport = row[RAW_SRC_PORT];
    const dport = row[RAW_DST_PORT];
    const proto = row[RAW_PROTOCOL];
    if (sink.offer(row, 0, src, dst, sport >= 0 && sport <= 65535 ? sport : 0, dport >= 0 && dport <= 65535 ? dport : 0,
      proto >= 0 && proto <= 255 ? proto : 0)) res.accepted++;
    else res.shed++;
  };

  stream.setEncoding('utf8');
  const lines = new LineSplitter(MAX_LINE_CHARS);
  for await (const chunk of stream as AsyncIterable<string>) {
    if (opts.signal?.aborted) break;
    for (let line = lines.push(chunk); line !== null; line = lines.next()) {
      if (line === TOO_LONG) {
        lineNo++;
        if (!slots) throw new IdsError('BAD_HEADER', `${name}: header line longer than ${MAX_LINE_CHARS} characters`);
        res.rows++;
        bad(`line longer than ${MAX_LINE_CHARS} characters: skipped`);
      } else handle(line);
      if (sink.overflow === 'block' && sink.full) await sink.room();
    }
  }
  const last = lines.end();
  if (last === TOO_LONG) {
    lineNo++;
    if (!slots) throw new IdsError('BAD_HEADER', `${name}: header line longer than ${MAX_LINE_CHARS} characters`);
    res.rows++;
    bad(`line longer than ${MAX_LINE_CHARS} characters: skipped`);
  } else if (last !== null) handle(last);
  if (!slots) throw new IdsError('EMPTY_INPUT', `${name}: no CSV header (empty input)`);
  return res;
}
