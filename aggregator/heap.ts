/**
 * How far the V8 heap may grow past what survived its last full collection before the next one starts.
 *
 * Why the aggregator sets it: its live heap is small (~30 MB) but while it drains a backlog every message lives
 * until its batch commits, long enough to be promoted to the old space, where it dies. V8's own policy lets the
 * old space reach up to ~4× the survivors before collecting, so peak RSS was set by garbage, not by what the
 * aggregator holds (old space 29 → 109 MB every 2–3 s). Collecting at 1.5× keeps it at 30 → 55 MB, with CPU
 * per alert within the runs' noise (aggregator/README.md, "Memory and the API while draining"). Unlike the heap
 * size limits, this V8 flag is read at every collection, so the command can set it after the process started.
 */
import v8 from 'node:v8';
import { IdsError } from '../shared/errors.ts';

/** Percent; 0 restores V8's own policy. */
export const DEFAULT_HEAP_GROWTH = 50;

export function setHeapGrowth(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0 || percent > 1000) {
    throw new IdsError('BAD_OPTION', `heap growth must be an integer percent from 0 to 1000, got ${percent}`);
  }
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
