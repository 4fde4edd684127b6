/**
 * How `dataset export` writes a row so that the trainer's CSV reader (trainer/data/row-parse.ts: plain decimals,
 * exponents, `inf`/`Infinity`/`NaN`, RFC 4180 quotes) reads back exactly the float32 values the hub sent, and the
 * labels in IoTID20's spellings (shared/labels.ts).
 */
import { canonicalColumn, LABEL_COLUMNS } from '../shared/features.ts';
import { IOTID20_CATEGORIES, IOTID20_CATEGORY_OF, IOTID20_SUBCATEGORIES, NORMAL_LABEL } from '../shared/labels.ts';

/**
 * A short decimal that reads back as the same float32: 7 or 8 significant digits when they do (checked the way
 * the reader rounds: parse to a double, store a float32), else 9. Nine always suffice for float32, and a 9-digit
 * decimal lies far enough from a float32 rounding midpoint that the double step cannot tip it. Starting at 6
 * digits gave the same file size in 2.4 times the time (flow-like values, 2026-12-04). Integers (counts, ports,
 * flags: most flow features) are written as integers; -0 keeps its sign; non-finite values as CICFlowMeter does.
 */
export function float32Text(v: number): string {
  if (Number.isInteger(v)) return v === 0 && 1 / v < 0 ? '-0' : String(v);
  if (v !== v) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  let s = v.toPrecision(7);
  if (Math.fround(Number(s)) !== v) {
    s = v.toPrecision(8);
    if (Math.fround(Number(s)) !== v) s = v.toPrecision(9);
  }
  return trimZeros(s);
}

/** "0.1000000" → "0.1", "1.500000e-7" → "1.5e-7"; only the fraction's trailing zeros go. */
function trimZeros(s: string): string {
  const e = s.indexOf('e');
  if (s.charCodeAt(e < 0 ? s.length - 1 : e - 1) !== 48 || s.indexOf('.') < 0) return s;
  const mant = e < 0 ? s : s.slice(0, e);
  const trimmed = mant.replace(/\.?0+$/, '');
  return e < 0 ? trimmed : trimmed + s.slice(e);
}

/** One CSV cell, quoted (RFC 4180) when it holds a comma, a quote, a line break or edge blanks. */
export function csvCell(s: string): string {
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const CATEGORY_BY_KEY = new Map<string, string>(IOTID20_CATEGORIES.map((c) => [c.toLowerCase(), c]));
const SUBCATEGORY_BY_KEY = new Map<string, (typeof IOTID20_SUBCATEGORIES)[number]>(IOTID20_SUBCATEGORIES.map((c) => [c.toLowerCase(), c]));

/** A class in IoTID20's spelling when it is one of its categories or sub-categories (any case), else as named. */
export const iotid20Class = (cls: string): string => {
  const k = cls.trim().toLowerCase();
  return CATEGORY_BY_KEY.get(k) ?? SUBCATEGORY_BY_KEY.get(k) ?? cls.trim();
};

/**
 * The three label cells. Label: Normal or Anomaly (IoTID20's binary label). Cat: the category; a mark that names a
 * sub-category (an operator's correction may, e.g. "DoS-Synflooding") gives its category here, since models learn
 * categories. Sub_Cat: the sub-category when one is known (named by the mark, or the category is also one: Normal,
 * MITM ARP Spoofing); otherwise empty, because a verdict names the category only (an empty label is skipped by the
 * trainer, never learned wrongly).
 */
export function labelCells(cls: string): string {
  const named = iotid20Class(cls);
  const sub = SUBCATEGORY_BY_KEY.get(named.toLowerCase());
  const cat = sub ? IOTID20_CATEGORY_OF[sub] : named;
  const label = cat === NORMAL_LABEL ? 'Normal' : 'Anomaly';
  return `${label},${csvCell(cat)},${sub ? csvCell(sub) : ''}`;
}

/**
 * CSV column names for a model's features: IoTID20's names for every name the schema knows (any CICFlowMeter
 * dialect), the model's own name otherwise. If two names fold onto one column, the model's names are kept for all.
 */
export function featureColumns(names: readonly string[]): { columns: string[]; unknown: string[]; note?: string } {
  const canon = names.map((n) => canonicalColumn(n));
  const unknown = names.filter((_, i) => canon[i] === undefined);
  const columns = names.map((n, i) => canon[i] ?? n);
  const labelLike = columns.filter((c) => (LABEL_COLUMNS as readonly string[]).includes(c));
  if (labelLike.length) throw new Error(`the model's features include label column names (${labelLike.join(', ')})`);
  if (new Set(columns).size !== columns.length) {
    return { columns: [...names], unknown, note: 'two feature names fold onto one IoTID20 column: the model\'s own names are used' };
  }
  return { columns, unknown };
}
