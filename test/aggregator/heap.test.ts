/**
 * The aggregator's heap growth setting (aggregator/heap.ts). Its effect on memory is measured where it can be
 * measured honestly, by the drain case of `npm run bench -- faults` (a synthetic workload in a test peaked lower or
 * higher with the flag depending on the machine's load: V8's own policy adapts to measured GC speed).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setHeapGrowth } from '../../aggregator/heap.ts';

describe('heap growth', () => {
  it('refuses what is not a percent from 0 to 1000, and takes what is', () => {
    for (const bad of [-1, 1001, 1.5, Number.NaN]) assert.throws(() => setHeapGrowth(bad), /heap growth must be an integer percent/);
    setHeapGrowth(50);
    setHeapGrowth(0); // back to V8's own policy for the rest of this test process
  });
});
