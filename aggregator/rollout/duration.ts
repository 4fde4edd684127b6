/** Durations on the command line: `30m`, `90s`, `1h`, `250ms`, `1d`, or a plain number of milliseconds. */
import { IdsError } from '../../shared/errors.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds; throws BAD_OPTION naming the option for anything else (no zero, no negatives, ≤ 30 days). */
export function parseDuration(text: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] ?? 'ms'] : NaN;
  if (!Number.isFinite(ms) || ms < 1 || ms > 30 * UNIT_MS.d) {
    throw new IdsError('BAD_OPTION', `${option} "${text}": expected a duration such as 30m, 90s, 1h or 500ms (1 ms to 30 days)`);
  }
  return Math.round(ms);
}

/** 5400000 → "1h30m", 1500 → "1.5s": for progress lines. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return [h ? `${h}h` : '', m ? `${m}m` : '', s ? `${s}s` : ''].join('') || '0s';
}
