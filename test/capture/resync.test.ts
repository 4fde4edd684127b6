import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { readCapture, type ReadOptions } from '../../capture/reader.ts';
import { encodePcap } from '../../capture/pcap-writer.ts';
import { PcapFormat, RESYNC_SPAN } from '../../capture/formats.ts';
import { Resync } from '../../capture/resync.ts';
import { isIdsError } from '../../shared/errors.ts';
import { Rng } from '../../shared/random.ts';

const N = 60;
/** 60 distinct Ethernet-sized frames, 10 ms apart; frame i starts with byte i so the test can tell them apart. */
const frames = Array.from({ length: N }, (_, i) => ({
  frame: Uint8Array.from({ length: 60 + ((i * 37) % 200) }, (_, j) => (j === 0 ? i : (i * 31 + j * 7) & 255)),
  timestampUs: 1_700_000_000_000_000 + i * 10_000,
}));
const capture = encodePcap(frames);

/** Byte offset of record i's header. */
function recordAt(buf: Uint8Array, i: number): number {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = 24;
  for (let k = 0; k < i; k++) p += 16 + v.getUint32(p + 8, true);
  return p;
}

function chunked(buf: Uint8Array, size: number): Readable {
  const parts: Buffer[] = [];
  for (let p = 0; p < buf.length; p += size) parts.push(Buffer.from(buf.subarray(p, p + size)));
  return Readable.from(parts, { objectMode: false });
}

interface Run {
  ids: number[];
  err?: unknown;
  degraded: number[];
  resynced: Array<[number, number]>;
}

async function run(buf: Uint8Array, size: number, opts: ReadOptions = { resync: true }): Promise<Run> {
  const r: Run = { ids: [], degraded: [], resynced: [] };
  const o: ReadOptions = { ...opts, onDegraded: (_m, at) => r.degraded.push(at), onResynced: (at, skipped) => r.resynced.push([at, skipped]) };
  try {
    for await (const b of readCapture(chunked(buf, size), o)) {
      for (let i = 0; i < b.count; i++) r.ids.push(b.data[b.offsets[i]]);
    }
  } catch (e) {
    r.err = e;
  }
  return r;
}

const all = (except: number[] = []) => Array.from({ length: N }, (_, i) => i).filter((i) => !except.includes(i));

test('without resync a stream stops at the first corrupt record (the behaviour a live hub must not have)', async () => {
  const bad = Buffer.from(capture);
  bad.writeUInt32LE(0xffffff, recordAt(bad, 20) + 8);
  const r = await run(bad, 4096, {});
  assert.deepEqual(r.ids, all().slice(0, 20));
  assert.ok(isIdsError(r.err, 'BAD_CAPTURE'));
});

test('pcap: a corrupt record header mid-stream: every later packet still comes, degraded then resynced reported', async () => {
  const bad = Buffer.from(capture);
  const at = recordAt(capture, 20);
  bad.writeUInt32LE(0xffffff, at + 8); // caplen far past the limit
  for (const size of [1, 7, 100, 4096, 1 << 20]) {
    const r = await run(bad, size);
    assert.equal(r.err, undefined, `chunk ${size}: ${String(r.err)}`);
    assert.deepEqual(r.ids, all([20]), `chunk ${size}`);
    assert.deepEqual(r.degraded, [at], `chunk ${size}`);
    assert.deepEqual(r.resynced, [[recordAt(capture, 21), recordAt(capture, 21) - at]], `chunk ${size}`);
  }
});

test('pcap: garbage spliced between records (random and 0xff runs) is skipped, the packets around it all arrive', async () => {
  const rng = new Rng(7);
  const cut = recordAt(capture, 30);
  const noise = Buffer.from(Array.from({ length: 5000 }, () => rng.int(0, 256)));
  const spliced = Buffer.concat([capture.subarray(0, cut), noise, Buffer.alloc(300, 0xff), capture.subarray(cut)]);
  for (const size of [13, 65536]) {
    const r = await run(spliced, size);
    assert.equal(r.err, undefined, String(r.err));
    assert.deepEqual(r.ids, all());
    assert.equal(r.degraded.length, 1);
    assert.deepEqual(r.resynced.map(([, s]) => s), [5300]);
  }
});

test('several damaged stretches: each one is reported and recovered from', async () => {
  const bad = Buffer.from(capture);
  for (const i of [5, 25, 45]) bad.writeUInt32LE(0x7fffffff, recordAt(capture, i) + 8);
  const r = await run(bad, 512);
  assert.equal(r.err, undefined);
  assert.deepEqual(r.ids, all([5, 25, 45]));
  assert.equal(r.degraded.length, 3);
  assert.equal(r.resynced.length, 3);
});

test('a stream that ends while still lost ends with BAD_CAPTURE after the good packets', async () => {
  const bad = Buffer.concat([capture.subarray(0, recordAt(capture, 10)), Buffer.alloc(2000, 0xee)]);
  const r = await run(bad, 256);
  assert.deepEqual(r.ids, all().slice(0, 10));
  assert.ok(isIdsError(r.err, 'BAD_CAPTURE'), String(r.err));
  assert.match((r.err as Error).message, /ended before a good record followed the damage/);
  assert.equal(r.resynced.length, 0);
  // The last record of a capture has no successor to confirm it: at the end of the stream its own fit is enough.
  const bad2 = Buffer.from(capture);
  bad2.writeUInt32LE(0xffffff, recordAt(bad2, N - 2) + 8);
  const r2 = await run(bad2, 4096);
  assert.equal(r2.err, undefined);
  assert.deepEqual(r2.ids, all([N - 2]));
});

test('a damaged file header is not resynchronised on: nothing to judge records by', async () => {
  const bad = Buffer.from(capture);
  bad.writeUInt16LE(7, 4); // pcap version 7
  const r = await run(bad, 4096);
  assert.ok(isIdsError(r.err, 'BAD_CAPTURE'));
  assert.deepEqual(r.ids, []);
  assert.deepEqual(r.degraded, []);
});

test('pcapng: a block with a broken length is skipped to the next block', async () => {
  const ng = pcapng(20);
  const blocks = blockOffsets(ng);
  const bad = Buffer.from(ng);
  bad.writeUInt32LE(3, blocks[8] + 4); // block length 3 (< 12): EPB of packet 6 (SHB, IDB, then packets)
  const r = await run(bad, 64);
  assert.equal(r.err, undefined, String(r.err));
  assert.deepEqual(r.ids, Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 6));
  assert.deepEqual(r.degraded, [blocks[8] + 4 - 4]);
  assert.deepEqual(r.resynced.map(([at]) => at), [blocks[9]]);
});

test('memory stays fixed however long the garbage runs', () => {
  const f = PcapFormat.detect(new DataView(capture.buffer, capture.byteOffset), 0)!;
  const view = new DataView(capture.buffer, capture.byteOffset, capture.byteLength);
  f.record(view, 0, 24, 0, { offset: 0, caplen: 0, wirelen: 0, timestampUs: 0, linkType: 0 });
  const rng = new Rng(3);
  const r = new Resync(f, new Uint8Array(100), 1000);
  let most = 0;
  for (let k = 0; k < 200; k++) {
    const chunk = Uint8Array.from({ length: 65536 }, () => rng.int(0, 256));
    assert.equal(r.push(chunk), null);
    most = Math.max(most, r.held);
  }
  assert.ok(most <= 2 * RESYNC_SPAN + 65536, `held ${most} bytes`);
});

test('fuzz: with resync, random flips and cuts end in packets or an IdsError, never a hang or another error', async () => {
  const rng = new Rng(11);
  for (let k = 0; k < 200; k++) {
    const buf = Buffer.from(capture.subarray(0, rng.int(1, capture.length + 1)));
    for (let j = rng.int(1, 8); j > 0; j--) buf[rng.int(0, buf.length)] = rng.int(0, 256);
    const r = await run(buf, rng.int(1, 300));
    if (r.err !== undefined) assert.ok(isIdsError(r.err), `not an IdsError: ${String(r.err)}`);
    assert.ok(r.ids.length <= N + 8);
  }
});

// ---- pcapng helpers ----------------------------------------------------------------------------------------
function pcapng(n: number): Uint8Array {
  const parts: Buffer[] = [];
  const block = (type: number, body: Buffer) => {
    const pad = Buffer.alloc((4 - (body.length % 4)) % 4);
    const len = 12 + body.length + pad.length;
    const h = Buffer.alloc(8);
    h.writeUInt32LE(type, 0);
    h.writeUInt32LE(len, 4);
    const t = Buffer.alloc(4);
    t.writeUInt32LE(len);
    parts.push(h, body, pad, t);
  };
  const shb = Buffer.alloc(16, 0xff);
  shb.writeUInt32LE(0x1a2b3c4d, 0);
  shb.writeUInt16LE(1, 4);
  shb.writeUInt16LE(0, 6);
  block(0x0a0d0d0a, shb);
  const idb = Buffer.alloc(8);
  idb.writeUInt16LE(1, 0);
  block(1, idb);
  for (let i = 0; i < n; i++) {
    const data = Buffer.from(frames[i].frame);
    const head = Buffer.alloc(20);
    const ts = BigInt(frames[i].timestampUs);
    head.writeUInt32LE(0, 0);
    head.writeUInt32LE(Number(ts >> 32n), 4);
    head.writeUInt32LE(Number(ts & 0xffffffffn), 8);
    head.writeUInt32LE(data.length, 12);
    head.writeUInt32LE(data.length, 16);
    block(6, Buffer.concat([head, data]));
  }
  return new Uint8Array(Buffer.concat(parts));
}

function blockOffsets(buf: Uint8Array): number[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: number[] = [];
  for (let p = 0; p < buf.length; p += v.getUint32(p + 4, true)) out.push(p);
  return out;
}
