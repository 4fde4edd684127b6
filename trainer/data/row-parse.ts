/**
 * One CSV record → feature values + raw label, without splitting it into strings: cells are found with
 * indexOf(',') and numbers read digit by digit. Plain decimals with ≤ 15 significant digits take Clinger's
 * fast path (integer mantissa / exact power of ten, correctly rounded, so bit-identical to Number()); anything
 * else (exponents, 'inf', blanks, 17-digit floats) goes through parseCell (strict decimals only: no hex).
 */
import { strictDecimal } from '../../shared/decimal.ts';
import { splitQuoted } from './csv-lines.ts';

/** Slot codes for header cells that are not features. */
export const SKIP = -1;
export const LABEL = -2;

/** Cell texts read as non-finite values (lower-cased, trimmed); '' and blanks are NaN too. */
const NON_FINITE: Readonly<Record<string, number>> = {
  inf: Infinity, '+inf': Infinity, '-inf': -Infinity,
  infinity: Infinity, '+infinity': Infinity, '-infinity': -Infinity,
  nan: NaN, '-nan': NaN, null: NaN, na: NaN,
};

export const BAD = Symbol('bad');

/** A numeric cell: a finite number, ±Infinity/NaN for the spellings above or a blank, BAD for text. */
export function parseCell(s: string): number | typeof BAD {
  if (s.length === 0) return NaN;
  // Not Number(s): it reads '0x10' as 16 and a blank cell as 0 (a blank is missing, not zero).
  const v = strictDecimal(s);
  if (v === v) return v;
  const t = s.trim().toLowerCase();
  if (t.length === 0) return NaN;
  return Object.hasOwn(NON_FINITE, t) ? NON_FINITE[t] : BAD;
}

const POW10 = Float64Array.from({ length: 23 }, (_, i) => 10 ** i); // exact doubles up to 1e22

/** The value of s[a..b) when it is a plain decimal the fast path can read exactly; NaN otherwise. */
export function fastNumber(s: string, a: number, b: number): number {
  let i = a;
  let c = s.charCodeAt(i);
  const neg = c === 45;
  if (neg || c === 43) i++;
  let mant = 0;
  let sig = 0;
  let frac = 0;
  let dot = false;
  let any = false;
  for (; i < b; i++) {
    c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      any = true;
      if (mant !== 0 || c !== 48) sig++;
      mant = mant * 10 + (c - 48);
      if (dot) frac++;
    } else if (c === 46 && !dot) dot = true;
    else return NaN;
  }
  if (!any || sig > 15 || frac > 22) return NaN;
  const v = frac > 0 ? mant / POW10[frac] : mant;
  return neg ? -v : v;
}

export interface ParsedRecord {
  /** Number of cells in the record. */
  cells: number;
  /** Header index of the first feature cell that is text, or -1. */
  badCell: number;
  /** The label cell, untrimmed ('' when the record is too short to have one). */
  label: string;
}

function cellValue(rec: string, a: number, b: number): number | typeof BAD {
  if (a === b) return NaN;
  const v = fastNumber(rec, a, b);
  return v === v ? v : parseCell(rec.slice(a, b));
}

/**
 * Reads a record by `slots` (per header cell: a feature index, SKIP or LABEL) into `values` and `out`.
 * Values of cells past the header's width are ignored; the caller rejects such a record by `out.cells`.
 */
export function parseRecord(rec: string, slots: Int32Array, values: Float64Array, out: ParsedRecord): void {
  out.badCell = -1;
  out.label = '';
  if (rec.indexOf('"') >= 0) return parseCells(splitQuoted(rec), slots, values, out);
  const n = rec.length;
  const width = slots.length;
  let pos = 0;
  let col = 0;
  for (;;) {
    let end = rec.indexOf(',', pos);
    if (end < 0) end = n;
    if (col < width) {
      const s = slots[col];
      if (s >= 0) {
        const v = cellValue(rec, pos, end);
        if (v === BAD) {
          if (out.badCell < 0) out.badCell = col;
        } else values[s] = v;
      } else if (s === LABEL) out.label = rec.slice(pos, end);
    }
    col++;
    if (end === n) break;
    pos = end + 1;
  }
  out.cells = col;
}

function parseCells(cells: string[], slots: Int32Array, values: Float64Array, out: ParsedRecord): void {
  const width = Math.min(cells.length, slots.length);
  for (let col = 0; col < width; col++) {
    const s = slots[col];
    if (s >= 0) {
      const v = cellValue(cells[col], 0, cells[col].length);
      if (v === BAD) {
        if (out.badCell < 0) out.badCell = col;
      } else values[s] = v;
    } else if (s === LABEL) out.label = cells[col];
  }
  out.cells = cells.length;
}

/** The text of cell `col` of a record, for error messages. */
export function cellText(rec: string, col: number): string {
  const cells = rec.indexOf('"') >= 0 ? splitQuoted(rec) : rec.split(',', col + 1);
  return cells[col] ?? '';
}
