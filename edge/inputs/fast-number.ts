/**
 * Plain decimals ("123", "-0.25", "1.5e" is not one) straight from a CSV line's characters, without cutting the
 * cell out as a string first. Exact: with at most 15 significant digits the digits form an integer below 2^53
 * and 10^k (k ≤ 22) is exact too, so one IEEE division gives the correctly rounded value — the same double
 * Number() gives (Clinger's fast path). Anything else returns NaN and the caller falls back to Number().
 */
const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

export function fastDecimal(s: string, start: number, end: number): number {
  let i = start;
  if (i >= end) return NaN;
  let neg = false;
  if (s.charCodeAt(i) === 45) {
    neg = true;
    i++;
  }
  let m = 0;
  let significant = 0;
  let frac = 0;
  let dot = false;
  let any = false;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      if (m !== 0 && ++significant > 15) return NaN;
      if (dot) frac++;
      any = true;
    } else if (c === 46 && !dot) dot = true;
    else return NaN;
  }
  if (!any || frac > 22) return NaN;
  const v = frac === 0 ? m : m / POW10[frac];
  return neg ? -v : v;
}
