/**
 * Command-line option values every command parses the same way: absent or empty → undefined (the caller's
 * default), anything else must be a number in range (or one of the allowed words), or a BAD_OPTION error naming
 * the flag.
 */
import { IdsError } from './errors.ts';

export interface Range {
  min?: number;
  max?: number;
}

function parse(name: string, v: unknown, integer: boolean, r: Range): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (Array.isArray(v)) throw new IdsError('BAD_OPTION', `--${name} given ${v.length} times; give it once`);
  const n = Number(v);
  const lo = r.min ?? -Infinity;
  const hi = r.max ?? Infinity;
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < lo || n > hi) {
    const range =
      r.min !== undefined && r.max !== undefined ? ` in [${r.min}, ${r.max}]`
      : r.min !== undefined ? ` ≥ ${r.min}`
      : r.max !== undefined ? ` ≤ ${r.max}`
      : '';
    throw new IdsError('BAD_OPTION', `--${name} must be ${integer ? 'an integer' : 'a number'}${range}, got "${String(v)}"`);
  }
  return n;
}

export const intOption = (name: string, v: unknown, range: Range = {}): number | undefined => parse(name, v, true, range);
export const numberOption = (name: string, v: unknown, range: Range = {}): number | undefined => parse(name, v, false, range);

/** One of `allowed`, or undefined when absent. */
export function choiceOption<T extends string>(name: string, v: unknown, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new IdsError('BAD_OPTION', `--${name} ${String(v)}: expected one of ${allowed.join(', ')}`);
  return v as T;
}

/** A repeatable option's values ([] when absent). */
export const listOption = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
