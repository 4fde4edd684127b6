/**
 * Strict decimal text for CSV cells. Number() also reads "0x10" (16), "0b1", "0o7" and "  " (0); a cell of a
 * flow CSV is a decimal or nothing, so anything else is text, not a number in disguise.
 */
const DECIMAL_RE = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** The value of a decimal (optional sign, digits, point, exponent; blanks around it allowed); NaN otherwise. */
export function strictDecimal(s: string): number {
  return DECIMAL_RE.test(s) ? Number(s) : NaN;
}
