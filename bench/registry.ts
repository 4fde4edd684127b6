import type { Bench } from './report.ts';

/** Every benchmark by name; each module exports `run()`. */
export const BENCHES: Record<string, () => Promise<Bench>> = {
  train: () => import('./train.bench.ts'),
  data: () => import('./data.bench.ts'),
  flowmeter: () => import('./flowmeter.bench.ts'),
  inference: () => import('./inference.bench.ts'),
  hub: () => import('./hub.bench.ts'),
  'hub-features': () => import('./hub-features.bench.ts'),
  aggregator: () => import('./aggregator.bench.ts'),
  'dataset-export': () => import('./dataset-export.bench.ts'),
  feedback: () => import('./feedback.bench.ts'),
  preflight: () => import('./preflight.bench.ts'),
  probe: () => import('./host-probe.ts'),
  // Minutes of child processes and SIGKILLs (bench/faults.bench.ts); FAULTS=broker,hub picks cases.
  faults: () => import('./faults.bench.ts'),
};
