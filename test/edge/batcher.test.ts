import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, type Batch } from '../../edge/batcher.ts';
import type { BatchClassifier, Verdicts } from '../../edge/classifier.ts';
import { isIdsError } from '../../shared/errors.ts';

/** A classifier that takes `delayMs` per batch and calls row class = round(raw[0]) (0 = Normal). */
class FakeClassifier implements BatchClassifier {
  readonly labels = ['Normal', 'DoS'];
  readonly inputs = 3;
  calls: number[] = [];
  private readonly buf: Float64Array;
  private readonly v: Verdicts;
  constructor(readonly maxRows: number, private readonly delayMs: number, readonly version = 'fake') {
    this.buf = new Float64Array(maxRows * 3);
    this.v = { rows: 0, classIdx: new Int32Array(maxRows), confidence: new Float32Array(maxRows), probs: new Float32Array(maxRows * 2) };
  }
  input(): Float64Array {
    return this.buf;
  }
  async classify(rows: number): Promise<Verdicts> {
    this.calls.push(rows);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    for (let i = 0; i < rows; i++) {
      this.v.classIdx[i] = Math.round(this.buf[i * 3]);
      this.v.confidence[i] = 1;
    }
    this.v.rows = rows;
    return this.v;
  }
  async release(): Promise<void> {}
}

const row = new Float64Array([1, 0, 0]);

test('flushes on size without waiting for the deadline', async () => {
  const clf = new FakeClassifier(64, 0);
  const seen: number[] = [];
  const b = new Batcher(clf, (x: Batch) => seen.push(x.rows), { maxBatch: 64, maxDelayMs: 10_000, capacity: 1024 });
  const t0 = performance.now();
  for (let i = 0; i < 128; i++) b.offer(row, 0, 'a', 'b', 1, 2, 6);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, [64, 64]);
  assert.ok(performance.now() - t0 < 1000);
  b.close();
});

test('flushes a partial batch at the deadline, measured from the oldest flow', async () => {
  const clf = new FakeClassifier(256, 0);
  const seen: { rows: number; at: number }[] = [];
  const t0 = performance.now();
  const b = new Batcher(clf, (x) => seen.push({ rows: x.rows, at: performance.now() - t0 }), { maxBatch: 256, maxDelayMs: 30 });
  for (let i = 0; i < 5; i++) b.offer(row, 0, 'a', 'b', 1, 2, 6);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(seen.length, 0);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(seen.length, 1);
  assert.equal(seen[0].rows, 5);
  assert.ok(seen[0].at >= 25 && seen[0].at < 200, `flushed at ${seen[0].at} ms`);
  b.close();
});

test('when inference falls behind, new flows are shed and counted; memory stays at the bound', async () => {
  const clf = new FakeClassifier(32, 20);
  let classified = 0;
  const b = new Batcher(clf, (x) => (classified += x.rows), { maxBatch: 32, maxDelayMs: 1, capacity: 100, overflow: 'drop' });
  let accepted = 0;
  let maxDepth = 0;
  // 5,000 flows arrive in 50 bursts of 100, far faster than 32 per 20 ms.
  for (let burst = 0; burst < 50; burst++) {
    for (let i = 0; i < 100; i++) if (b.offer(row, 0, 'a', 'b', 1, 2, 6)) accepted++;
    maxDepth = Math.max(maxDepth, b.depth);
    await new Promise((r) => setImmediate(r));
  }
  await b.drain();
  assert.ok(b.dropped > 0, 'load was shed');
  assert.equal(accepted + b.dropped, 5000);
  assert.equal(classified, accepted, 'every accepted flow was classified');
  assert.ok(maxDepth <= 100, `queue depth ${maxDepth} stayed within the bound`);
  assert.equal(b.depth, 0);
  b.close();
});

test("'block' mode never sheds: room() makes the input wait", async () => {
  const clf = new FakeClassifier(16, 2);
  let classified = 0;
  const b = new Batcher(clf, (x) => (classified += x.rows), { maxBatch: 16, maxDelayMs: 1, capacity: 32, overflow: 'block' });
  for (let i = 0; i < 500; i++) {
    if (b.full) await b.room();
    assert.ok(b.offer(row, 0, 'a', 'b', 1, 2, 6));
  }
  await b.drain();
  assert.equal(classified, 500);
  assert.equal(b.dropped, 0);
  b.close();
});

test('swap() changes the classifier between batches; bad options are refused', async () => {
  const a = new FakeClassifier(8, 5, 'a');
  const c = new FakeClassifier(8, 0, 'c');
  const models: string[] = [];
  const b = new Batcher(a, (x) => models.push(x.model), { maxBatch: 8, maxDelayMs: 1 });
  for (let i = 0; i < 8; i++) b.offer(row, 0, 'a', 'b', 1, 2, 6);
  await new Promise((r) => setTimeout(r, 1));
  b.swap(c);
  for (let i = 0; i < 8; i++) b.offer(row, 0, 'a', 'b', 1, 2, 6);
  await b.drain();
  assert.deepEqual(models, ['a', 'c']);
  assert.throws(() => new Batcher(a, () => undefined, { maxBatch: 9 }), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.throws(() => new Batcher(a, () => undefined, { maxBatch: 8, capacity: 4 }), (e) => isIdsError(e, 'BAD_OPTION'));
  b.close();
});
