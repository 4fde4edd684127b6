import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { readCapture, readCaptureBuffer } from '../../capture/reader.ts';
import { encodePcap } from '../../capture/pcap-writer.ts';
import { tickConverter } from '../../capture/formats.ts';
import { isIdsError } from '../../shared/errors.ts';
import type { PacketBatch } from '../../shared/packets.ts';
import { PROJECT_ROOT, sharedData } from '../helpers/shared-data.ts';

interface Pkt {
  bytes: string;
  ts: number;
  wire: number;
  link: number;
}

function flatten(batches: Iterable<PacketBatch>): Pkt[] {
  const out: Pkt[] = [];
  for (const b of batches) {
    for (let i = 0; i < b.count; i++) {
      const d = b.data.subarray(b.offsets[i], b.offsets[i] + b.lengths[i]);
      out.push({ bytes: Buffer.from(d).toString('hex'), ts: b.timestampsUs[i], wire: b.wireLengths[i], link: b.linkTypes[i] });
    }
  }
  return out;
}

async function collect(src: NodeJS.ReadableStream | string, batchPackets?: number): Promise<{ pkts: Pkt[]; err?: unknown }> {
  const batches: PacketBatch[] = [];
  try {
    for await (const b of readCapture(src, { batchPackets })) batches.push(b);
  } catch (err) {
    return { pkts: flatten(batches), err };
  }
  return { pkts: flatten(batches) };
}

/** A stream that hands out `buf` in chunks of the given sizes (cycled): exercises records straddling chunks. */
function chunked(buf: Uint8Array, sizes: number[]): Readable {
  const parts: Buffer[] = [];
  for (let p = 0, i = 0; p < buf.length; i++) {
    const n = sizes[i % sizes.length];
    parts.push(Buffer.from(buf.subarray(p, p + n)));
    p += n;
  }
  return Readable.from(parts, { objectMode: false });
}

function syncCollect(buf: Uint8Array): { pkts: Pkt[]; err?: unknown } {
  const batches: PacketBatch[] = [];
  try {
    for (const b of readCaptureBuffer(buf)) batches.push(b);
  } catch (err) {
    return { pkts: flatten(batches), err };
  }
  return { pkts: flatten(batches) };
}

const frames = [
  { frame: Uint8Array.from({ length: 60 }, (_, i) => i), timestampUs: 1_600_000_000_123_456 },
  { frame: Uint8Array.from({ length: 61 }, (_, i) => 255 - i), timestampUs: 1_600_000_001_000_001, wireLen: 1514 },
  { frame: Uint8Array.from({ length: 1514 }, (_, i) => i * 7), timestampUs: 1_600_000_002_999_999 },
];
const littleUs = encodePcap(frames);

/** Re-encodes `littleUs` with another byte order and/or nanosecond timestamps. */
function variant(bigEndian: boolean, nano: boolean): Uint8Array {
  const src = Buffer.from(littleUs);
  const out = Buffer.alloc(src.length);
  const w32 = (v: number, p: number) => (bigEndian ? out.writeUInt32BE(v, p) : out.writeUInt32LE(v, p));
  const w16 = (v: number, p: number) => (bigEndian ? out.writeUInt16BE(v, p) : out.writeUInt16LE(v, p));
  w32(nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(2, 4);
  w16(4, 6);
  w32(src.readUInt32LE(16), 16);
  w32(src.readUInt32LE(20), 20);
  let p = 24;
  while (p < src.length) {
    const caplen = src.readUInt32LE(p + 8);
    w32(src.readUInt32LE(p), p);
    w32(nano ? src.readUInt32LE(p + 4) * 1000 + 999 : src.readUInt32LE(p + 4), p + 4); // +999 ns must floor away
    w32(caplen, p + 8);
    w32(src.readUInt32LE(p + 12), p + 12);
    src.copy(out, p + 16, p + 16, p + 16 + caplen);
    p += 16 + caplen;
  }
  return out;
}

test('classic pcap: both byte orders and µs/ns timestamps give the same packets', () => {
  const ref = syncCollect(littleUs);
  assert.equal(ref.err, undefined);
  assert.equal(ref.pkts.length, 3);
  assert.deepEqual(ref.pkts.map((p) => p.ts), frames.map((f) => f.timestampUs));
  assert.deepEqual(ref.pkts.map((p) => p.wire), [60, 1514, 1514]);
  assert.equal(ref.pkts[0].bytes, Buffer.from(frames[0].frame).toString('hex'));
  for (const [be, ns] of [[true, false], [false, true], [true, true]]) {
    const got = syncCollect(variant(be, ns));
    assert.equal(got.err, undefined, `be=${be} ns=${ns}`);
    assert.deepEqual(got.pkts, ref.pkts, `be=${be} ns=${ns}`);
  }
});

// ---- pcapng synthesis -------------------------------------------------------------------------------------
class NgBuilder {
  private parts: Buffer[] = [];
  constructor(private readonly be = false) {}
  private u32(v: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.be) b.writeUInt32BE(v >>> 0);
    else b.writeUInt32LE(v >>> 0);
    return b;
  }
  private u16(v: number): Buffer {
    const b = Buffer.alloc(2);
    if (this.be) b.writeUInt16BE(v);
    else b.writeUInt16LE(v);
    return b;
  }
  block(type: number, body: Buffer): this {
    const pad = Buffer.alloc((4 - (body.length % 4)) % 4);
    const len = 12 + body.length + pad.length;
    this.parts.push(this.u32(type), this.u32(len), body, pad, this.u32(len));
    return this;
  }
  shb(): this {
    return this.block(0x0a0d0d0a, Buffer.concat([this.u32(0x1a2b3c4d), this.u16(1), this.u16(0), Buffer.alloc(8, 0xff)]));
  }
  idb(linkType: number, tsresol?: number, tsoffsetSec?: number): this {
    const opts = tsresol === undefined ? [] : [this.u16(9), this.u16(1), Buffer.from([tsresol, 0, 0, 0])];
    if (tsoffsetSec !== undefined) opts.push(this.u16(14), this.u16(8), this.be ? this.u32(0) : this.u32(tsoffsetSec), this.be ? this.u32(tsoffsetSec) : this.u32(0));
    if (opts.length) opts.push(this.u32(0));
    return this.block(1, Buffer.concat([this.u16(linkType), this.u16(0), this.u32(0), ...opts]));
  }
  epb(iface: number, ticks: bigint, data: Buffer, wire = data.length): this {
    const hi = Number(ticks >> 32n);
    const lo = Number(ticks & 0xffffffffn);
    const pad = Buffer.alloc((4 - (data.length % 4)) % 4);
    return this.block(6, Buffer.concat([this.u32(iface), this.u32(hi), this.u32(lo), this.u32(data.length), this.u32(wire), data, pad]));
  }
  spb(data: Buffer): this {
    return this.block(3, Buffer.concat([this.u32(data.length), data]));
  }
  opb(iface: number, ticks: bigint, data: Buffer): this {
    const hi = Number(ticks >> 32n);
    const lo = Number(ticks & 0xffffffffn);
    return this.block(2, Buffer.concat([this.u16(iface), this.u16(0), this.u32(hi), this.u32(lo), this.u32(data.length), this.u32(data.length), data]));
  }
  build(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.parts));
  }
}

function ngCapture(be: boolean): Uint8Array {
  const a = Buffer.alloc(42, 0xaa);
  const b = Buffer.alloc(37, 0xbb);
  const c = Buffer.alloc(50, 0xcc);
  return new NgBuilder(be)
    .shb()
    .idb(1) // µs (default)
    .idb(101, 9) // ns
    .idb(113, 0x80 | 20) // 2^-20 s
    .block(0x0bad, Buffer.from('unknown block: skipped'))
    .epb(0, 1_700_000_000_000_001n, a)
    .epb(1, 1_700_000_000_000_002_999n, b, 1500)
    .epb(2, (1_700_000_000n << 20n) | (1n << 19n), c) // +0.5 s
    .spb(a)
    .opb(1, 1_700_000_001_000_000_000n, b)
    .block(5, Buffer.alloc(8)) // interface statistics: skipped
    .build();
}

test('pcapng: three interfaces with µs, ns and 2^-20 resolutions, EPB/SPB/OPB, unknown blocks, both byte orders', () => {
  for (const be of [false, true]) {
    const got = syncCollect(ngCapture(be));
    assert.equal(got.err, undefined, `be=${be}`);
    assert.deepEqual(got.pkts.map((p) => p.link), [1, 101, 113, 1, 101]);
    assert.deepEqual(
      got.pkts.map((p) => p.ts),
      [1_700_000_000_000_001, 1_700_000_000_000_002, 1_700_000_000_500_000, 1_700_000_000_500_000, 1_700_000_001_000_000],
    );
    assert.deepEqual(got.pkts.map((p) => p.wire), [42, 1500, 50, 42, 37]);
    assert.equal(got.pkts[1].bytes, 'bb'.repeat(37));
  }
});

test('pcapng: if_tsoffset (seconds) is added to every timestamp of its interface', () => {
  for (const be of [false, true]) {
    const cap = new NgBuilder(be).shb().idb(1, 9, 1_600_000_000).epb(0, 1_500_000_000n, Buffer.alloc(20)).build();
    const got = syncCollect(cap);
    assert.equal(got.err, undefined);
    assert.equal(got.pkts[0].ts, 1_600_000_001_500_000, `be=${be}`);
  }
});

test('pcapng: a new section resets the interfaces', () => {
  const two = Buffer.concat([ngCapture(false), new NgBuilder(true).shb().idb(101).epb(0, 5n, Buffer.alloc(20, 1)).build()]);
  const got = syncCollect(two);
  assert.equal(got.err, undefined);
  assert.equal(got.pkts.length, 6);
  assert.equal(got.pkts[5].link, 101);
  assert.equal(got.pkts[5].ts, 5);
});

test('tick conversion keeps exact µs for ns and power-of-2 resolutions past 2^53', () => {
  const ns = 1_753_000_123_456_789_123n;
  const hi = Number(ns >> 32n);
  const lo = Number(ns & 0xffffffffn);
  assert.equal(tickConverter(9)(hi, lo), Number(ns / 1000n));
  const t30 = (1_753_000_123n << 30n) + 123_456_789n;
  assert.equal(tickConverter(0x80 | 30)(Number(t30 >> 32n), Number(t30 & 0xffffffffn)), Number((t30 * 1_000_000n) >> 30n));
  assert.equal(tickConverter(3)(0, 1500), 1_500_000); // milliseconds
});

test('streaming in tiny chunks gives exactly the packets of the in-memory reader', async () => {
  for (const cap of [littleUs, variant(true, true), ngCapture(false), ngCapture(true)]) {
    const ref = syncCollect(cap).pkts;
    for (const sizes of [[1], [3, 7, 13], [4096]]) {
      const got = await collect(chunked(cap, sizes), 2);
      assert.equal(got.err, undefined);
      assert.deepEqual(got.pkts, ref, `chunks ${sizes}`);
    }
  }
});

test('a capture cut in the middle of a packet yields the good packets, then BAD_CAPTURE naming the offset', async () => {
  const cut = littleUs.subarray(0, littleUs.length - 100); // inside the third packet
  const third = 24 + 16 + 60 + 16 + 61;
  const mem = syncCollect(cut);
  assert.equal(mem.pkts.length, 2);
  assert.ok(isIdsError(mem.err, 'BAD_CAPTURE'), String(mem.err));
  assert.match((mem.err as Error).message, new RegExp(`byte offset ${third}\\b`));
  for (const sizes of [[5], [1 << 20]]) {
    const s = await collect(chunked(cut, sizes));
    assert.equal(s.pkts.length, 2);
    assert.ok(isIdsError(s.err, 'BAD_CAPTURE'));
    assert.match((s.err as Error).message, new RegExp(`byte offset ${third}\\b`));
  }
  const ngCut = ngCapture(false);
  const s = await collect(chunked(ngCut.subarray(0, ngCut.length - 30), [17]));
  assert.equal(s.pkts.length, 4);
  assert.ok(isIdsError(s.err, 'BAD_CAPTURE'));
});

test('corrupt captures end with BAD_CAPTURE, never a hang', async () => {
  const huge = Buffer.from(littleUs);
  huge.writeUInt32LE(300_000, 24 + 8); // first caplen > 256 KiB
  let r = syncCollect(huge);
  assert.equal(r.pkts.length, 0);
  assert.ok(isIdsError(r.err, 'BAD_CAPTURE'));
  assert.match((r.err as Error).message, /offset 24\b.*300000/);

  const ng = Buffer.from(ngCapture(false));
  const firstEpb = 28 + 20 + 32 + 32 + 36; // SHB, IDB µs, IDB ns (opts), IDB 2^-20 (opts), unknown block
  assert.equal(ng.readUInt32LE(firstEpb), 6);
  const zero = Buffer.from(ngCapture(false));
  zero.writeUInt32LE(0, firstEpb + 4);
  r = syncCollect(zero);
  assert.ok(isIdsError(r.err, 'BAD_CAPTURE'));
  assert.match((r.err as Error).message, new RegExp(`offset ${firstEpb + 4}\\b.*block length 0`));

  const iface = Buffer.from(ngCapture(false));
  iface.writeUInt32LE(7, firstEpb + 8); // interface 7 does not exist
  r = syncCollect(iface);
  assert.ok(isIdsError(r.err, 'BAD_CAPTURE'));

  const trailer = Buffer.from(ngCapture(false));
  const secondEpb = firstEpb + trailer.readUInt32LE(firstEpb + 4);
  trailer.writeUInt32LE(9, secondEpb + trailer.readUInt32LE(secondEpb + 4) - 4);
  r = syncCollect(trailer);
  assert.equal(r.pkts.length, 1, 'the good packet before the damage');
  assert.ok(isIdsError(r.err, 'BAD_CAPTURE'));

  r = syncCollect(Buffer.from('this is not a capture at all'));
  assert.ok(isIdsError(r.err, 'BAD_CAPTURE'));
  assert.match((r.err as Error).message, /neither pcap nor pcapng/);
  r = syncCollect(new Uint8Array(0));
  assert.ok(isIdsError(r.err, 'EMPTY_INPUT'));
  const s = await collect(chunked(new Uint8Array(2), [1]));
  assert.ok(isIdsError(s.err, 'BAD_CAPTURE'), String(s.err));
  const missing = await collect('/nonexistent/capture.pcap');
  assert.ok(isIdsError(missing.err, 'BAD_CAPTURE'));
  assert.match((missing.err as Error).message, /nonexistent/);
});

test('stdin: `readCapture("-")` reads a capture piped in', () => {
  const script = `import('${join(PROJECT_ROOT, 'capture', 'reader.ts')}').then(async (m) => {
    let n = 0; for await (const b of m.readCapture('-')) n += b.count; console.log(n);
  }).catch((e) => { console.log(e.code); });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { input: Buffer.from(littleUs), cwd: PROJECT_ROOT });
  assert.equal(r.stdout.toString().trim(), '3', r.stderr.toString());
  const cut = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { input: Buffer.from(littleUs.subarray(0, 50)), cwd: PROJECT_ROOT });
  assert.equal(cut.stdout.toString().trim(), 'BAD_CAPTURE');
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : /\.pcap(ng)?$/.test(n) ? [p] : [];
  });
}

// Counts checked by hand with `tcpdump -ttnr FILE | grep -cE '^[0-9]+\.[0-9]{6} '` (tcpdump 4.99, Debian 12).
const KNOWN_COUNTS: Record<string, number> = {
  'benign/tcpreplay-mixed.pcap': 179,
  'benign/ndpi/alexa-app.pcapng': 3103,
  'benign/iotensemble/mercury_wirecamera/2020-11-23.pcap': 6009,
  'attack/stopddos_pkt.TCP.synflood.spoofed.pcap': 37841,
  'attack/pcaphunt_na-arpSpoofing.pcap': 36,
};

test('every shared capture (pcap and pcapng) reads to the end; stream and buffer agree; known counts', async (t) => {
  const root = sharedData(t, 'pcaps');
  if (!root) return;
  const files = walk(root).sort();
  assert.ok(files.length > 100, `found ${files.length} captures`);
  let total = 0;
  for (const f of files) {
    const buf = readFileSync(f);
    let n = 0;
    for (const b of readCaptureBuffer(buf)) n += b.count;
    let s = 0;
    for await (const b of readCapture(f, { batchPackets: 1000 })) s += b.count;
    assert.equal(s, n, f);
    const rel = f.slice(root.length + 1);
    if (rel in KNOWN_COUNTS) assert.equal(n, KNOWN_COUNTS[rel], rel);
    total += n;
  }
  t.diagnostic(`${files.length} captures, ${total} packets`);
});

test('packet counts match tcpdump on a few captures (skipped without tcpdump)', (t) => {
  const root = sharedData(t, 'pcaps');
  if (!root) return;
  if (spawnSync('tcpdump', ['--version']).status !== 0) return t.skip('tcpdump not installed (apt-get install tcpdump)');
  for (const rel of ['benign/ndpi/rtsp.pcap', 'benign/ndpi/knxip.pcapng', 'attack/pcaphunt_ps-tcp_syn.pcap', 'benign/ndpi/mqtt.pcap']) {
    const f = join(root, rel);
    const out = spawnSync('tcpdump', ['-ttnr', f], { maxBuffer: 1 << 26 }).stdout.toString();
    const expected = out.split('\n').filter((l) => /^\d+\.\d{6} /.test(l)).length;
    let n = 0;
    for (const b of readCaptureBuffer(readFileSync(f))) n += b.count;
    assert.equal(n, expected, rel);
  }
});

test('fuzz: random byte flips and cuts end in packets or an IdsError, never a hang or another error', async () => {
  const { Rng } = await import('../../shared/random.ts');
  const rng = new Rng(99);
  for (const base of [littleUs, ngCapture(false), ngCapture(true)]) {
    for (let k = 0; k < 300; k++) {
      const buf = Buffer.from(base.subarray(0, rng.int(1, base.length + 1)));
      for (let j = rng.int(1, 6); j > 0; j--) buf[rng.int(0, buf.length)] = rng.int(0, 256);
      const r = syncCollect(buf);
      if (r.err !== undefined) assert.ok(isIdsError(r.err), `not an IdsError: ${String(r.err)}`);
      const s = await collect(chunked(buf, [rng.int(1, 64)]));
      assert.deepEqual(s.pkts, r.pkts);
      assert.equal(s.err === undefined, r.err === undefined);
    }
  }
});

test('raw-IP captures written with DLT 12/14 come out as LINKTYPE_RAW (101)', () => {
  const raw = Buffer.from(encodePcap(frames.slice(0, 1), 12));
  assert.equal(syncCollect(raw).pkts[0].link, 101);
  const sll = Buffer.from(encodePcap(frames.slice(0, 1), 113));
  assert.equal(syncCollect(sll).pkts[0].link, 113);
});
