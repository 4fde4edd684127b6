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

/**
 * onnxruntime-node fp32 on the CNN-LSTM shape (78 features, batch 256, one thread) measured on an idle machine of
 * this kind by the probe: the host-speed reference. A bench that measures the same thing in its own run can scale
 * its figure by idle / measured to say what it would be at that speed, on a machine whose speed swings ~2× in an hour.
 */
export const IDLE_ORT_NODE_FP32_FLOWS_PER_SEC = 35_000;

export interface Bench {
  run(): Promise<void>;
}
