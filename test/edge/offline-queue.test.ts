import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, MemoryStore, type Store } from '../../edge/offline-queue.ts';
import { isIdsError } from '../../shared/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'iot-ids-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `s${n++}`);

/** The suite every Store passes: order, ack, bound with drop-oldest, peek from an id. */
function storeSuite(name: string, make: (max: number) => Store): void {
  describe(`${name} (Store suite)`, () => {
    test('put/peek/ack keep order and ids', async () => {
      const s = make(1000);
      assert.equal(s.size(), 0);
      assert.equal(s.put(['a', 'b', 'c']), 0);
      assert.equal(s.put(['d']), 3);
      assert.deepEqual(s.peek(0, 10).map((r) => r.payload), ['a', 'b', 'c', 'd']);
      assert.deepEqual(s.peek(2, 1), [{ id: 2, payload: 'c' }]);
      s.ack(2);
      assert.equal(s.size(), 2);
      assert.equal(s.headId(), 2);
      assert.deepEqual(s.peek(0, 10).map((r) => r.id), [2, 3]);
      s.ack(1); // behind the head: no-op
      assert.equal(s.size(), 2);
      s.ack(99); // past the end: clamps
      assert.equal(s.size(), 0);
      assert.equal(s.put(['e']), 4);
      await s.close();
    });

    test('the bound drops the oldest and counts them', async () => {
      const s = make(5);
      for (let i = 0; i < 12; i++) s.put([`m${i}`]);
      assert.equal(s.size(), 5);
      assert.equal(s.dropped(), 7);
      assert.deepEqual(s.peek(0, 10).map((r) => r.payload), ['m7', 'm8', 'm9', 'm10', 'm11']);
      s.put(['x', 'y', 'z']);
      assert.equal(s.dropped(), 10);
      assert.deepEqual(s.peek(0, 10).map((r) => r.payload), ['m10', 'm11', 'x', 'y', 'z']);
      await s.close();
    });

    test('many records across segments come back in order', async () => {
      const s = make(100_000);
      const batch = Array.from({ length: 250 }, (_, i) => JSON.stringify({ i }));
      for (let k = 0; k < 20; k++) s.put(batch.map((b) => b + k));
      let got = 0;
      let from = 0;
      for (;;) {
        const recs = s.peek(from, 333);
        if (recs.length === 0) break;
        for (const r of recs) assert.equal(r.id, got++);
        from = recs[recs.length - 1].id + 1;
        s.ack(from);
      }
      assert.equal(got, 5000);
      assert.equal(s.size(), 0);
      await s.close();
    });
  });
}

storeSuite('MemoryStore', (max) => new MemoryStore(max));
storeSuite('FileStore', (max) => new FileStore(freshDir(), { maxRecords: max, segmentRecords: 64 }));

describe('FileStore on disk', () => {
  test('survives a restart: unacked records come back in order, acked ones do not', async () => {
    const dir = freshDir();
    const a = new FileStore(dir, { segmentRecords: 10 });
    a.put(Array.from({ length: 35 }, (_, i) => `r${i}`));
    a.ack(12);
    await a.close();
    const b = new FileStore(dir, { segmentRecords: 10 });
    assert.equal(b.size(), 23);
    assert.equal(b.headId(), 12);
    assert.deepEqual(b.peek(0, 3).map((r) => r.payload), ['r12', 'r13', 'r14']);
    assert.equal(b.put(['new']), 35);
    assert.equal(b.peek(35, 1)[0].payload, 'new');
    // Fully acked segments are deleted.
    assert.ok(!readdirSync(dir).includes('seg-0000000000000000.log'));
    await b.close();
  });

  test('a torn last line from a crash is cut off, not delivered', async () => {
    const dir = freshDir();
    const a = new FileStore(dir);
    a.put(['one', 'two']);
    await a.close();
    const seg = readdirSync(dir).find((f) => f.startsWith('seg-'))!;
    appendFileSync(join(dir, seg), '{"half');
    const b = new FileStore(dir);
    assert.deepEqual(b.peek(0, 10).map((r) => r.payload), ['one', 'two']);
    b.put(['three']);
    assert.deepEqual(b.peek(0, 10).map((r) => r.payload), ['one', 'two', 'three']);
    await b.close();
  });

  test('bad options and use after close are clear errors', async () => {
    assert.throws(() => new FileStore(freshDir(), { maxRecords: 0 }), (e) => isIdsError(e, 'BAD_OPTION'));
    const s = new FileStore(freshDir());
    await s.close();
    assert.throws(() => s.put(['x']), (e) => isIdsError(e, 'STORE_FAILED'));
    assert.throws(() => new FileStore(freshDir()).put(['a\nb']), (e) => isIdsError(e, 'STORE_FAILED'));
  });
});
