/** Helpers every benchmark uses to measure and print its figures. */

export interface BenchLine {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  reference?: Record<string, unknown>;
  [extra: string]: unknown;
}

export function emit(line: BenchLine): void {
  process.stdout.write(JSON.stringify(line) + '\n');
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export interface Bench {
  run(): Promise<void>;
}
