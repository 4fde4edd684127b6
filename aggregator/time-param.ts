import { IdsError } from '../shared/errors.ts';

/** A time query parameter (since/until): ms since the epoch or an ISO 8601 date; else BAD_OPTION naming it. */
export function timeParam(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) throw new IdsError('BAD_OPTION', `${name}: "${v.slice(0, 40)}" is neither ms since the epoch nor an ISO date`);
  return n;
}
