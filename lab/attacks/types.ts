import type { Rng } from '../../shared/random.ts';
import type { PayloadPool, Sink } from '../wire.ts';

export interface GenContext {
  rng: Rng;
  pool: PayloadPool;
  sink: Sink;
}

/**
 * A traffic generator: writes about `units` flows' worth of packets starting at `startUs` (µs) and returns the
 * time its last packet leaves. The runner calls it in rounds until the flow meter has counted enough flows.
 */
export type TrafficGenerator = (ctx: GenContext, startUs: number, units: number) => number;

/** Rounds a time forward by an exponential gap (a Poisson process of the given mean gap, µs). */
export const after = (rng: Rng, t: number, meanGapUs: number): number => t + rng.exp(meanGapUs);
