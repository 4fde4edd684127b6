import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sharedData } from '../helpers/shared-data.ts';
import { STAT_FEATURES } from '../../shared/features.ts';
import type { FlowRecord, PacketBatch } from '../../shared/packets.ts';
import { readCaptureBuffer } from '../../capture/reader.ts';
import { FlowMeter } from '../../asm/flowmeter-host.ts';

const iFwd = STAT_FEATURES.indexOf('Tot_Fwd_Pkts');
const iBwd = STAT_FEATURES.indexOf('Tot_Bwd_Pkts');
const packetsIn = (rs: FlowRecord[]) => rs.reduce((n, r) => n + r.features[iFwd] + r.features[iBwd], 0);

const walk = (d: string): string[] =>
  readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    return statSync(p).isDirectory() ? walk(p) : /\.pcap(ng)?$/.test(n) ? [p] : [];
  });

test('corrected mode, every shared capture: each IP packet lands in exactly one flow, no NaN', async (t) => {
  const root = sharedData(t, 'pcaps');
  if (!root) return;
  const files = walk(root);
  assert.ok(files.length > 10);
  let packets = 0;
  for (const f of files) {
    // A small cap so eviction and the index's deletions run on real traffic too.
    const meter = await FlowMeter.create({ mode: 'corrected', maxFlows: 512 });
    const flows: FlowRecord[] = [];
    for (const b of readCaptureBuffer(readFileSync(f))) flows.push(...meter.push(b));
    flows.push(...meter.flush());
    const s = meter.stats();
    packets += s.packets;
    assert.equal(packetsIn(flows), s.packets - s.nonIp - s.skipped, f);
    assert.equal(s.flowsEmitted, flows.length, f);
    assert.equal(s.live, 0);
    for (const r of flows) assert.ok(!r.features.some(Number.isNaN), `${f}: NaN in a corrected flow`);
  }
  t.diagnostic(`${files.length} captures, ${packets} packets`);
});

test('spoofed SYN flood: bounded table, evictions counted, every SYN accounted for', async (t) => {
  const p = sharedData(t, 'pcaps', 'attack', 'stopddos_pkt.TCP.synflood.spoofed.pcap');
  if (!p) return;
  const meter = await FlowMeter.create({ mode: 'corrected', maxFlows: 4096 });
  const flows: FlowRecord[] = [];
  for (const b of readCaptureBuffer(readFileSync(p))) flows.push(...meter.push(b));
  const s = meter.stats();
  assert.equal(s.packets, 37841);
  assert.ok(s.live <= 4096);
  assert.ok(s.evicted > 30000, `evicted ${s.evicted}`);
  flows.push(...meter.flush());
  assert.equal(packetsIn(flows), 37841 - meter.stats().nonIp - meter.stats().skipped);
  const syn = STAT_FEATURES.indexOf('SYN_Flag_Cnt');
  assert.equal(flows.reduce((n, r) => n + r.features[syn], 0), packetsIn(flows), 'every packet is a SYN');
});

test('index churn: long-lived flows are always found while thousands of short flows open and close around them', async () => {
  // Raw IPv4/TCP packets (link type 101); 200 long-lived flows and 6000 SYN→RST pairs interleaved.
  const frames: { ts: number; bytes: number[] }[] = [];
  const pkt = (ts: number, src: number, dst: number, sp: number, dp: number, flags: number) => {
    const ip = [0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, (src >> 16) & 255, (src >> 8) & 255, src & 255,
      10, (dst >> 16) & 255, (dst >> 8) & 255, dst & 255];
    const tcp = [sp >> 8, sp & 255, dp >> 8, dp & 255, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, flags, 1, 0, 0, 0, 0, 0];
    frames.push({ ts, bytes: [...ip, ...tcp] });
  };
  let ts = 1e15;
  for (let round = 0; round < 30; round++) {
    for (let l = 0; l < 200; l++) pkt(ts++, 1000 + l, 1, 5000, 80, 0x10);
    for (let s = 0; s < 200; s++) {
      const id = round * 200 + s;
      pkt(ts++, 70000 + id, 2, 1024 + (id % 50000), 443, 0x02);
      pkt(ts++, 2, 70000 + id, 443, 1024 + (id % 50000), 0x14);
    }
  }
  const data = new Uint8Array(frames.length * 40);
  frames.forEach((f, i) => data.set(f.bytes, i * 40));
  const batch: PacketBatch = {
    count: frames.length, data,
    offsets: Uint32Array.from(frames, (_, i) => i * 40),
    lengths: new Uint32Array(frames.length).fill(40),
    wireLengths: new Uint32Array(frames.length).fill(40),
    timestampsUs: Float64Array.from(frames, (f) => f.ts),
    linkTypes: new Uint16Array(frames.length).fill(101),
    sourceOffset: 0,
  };
  const meter = await FlowMeter.create({ mode: 'corrected', maxFlows: 512 });
  const closed = meter.push(batch);
  assert.equal(closed.length, 6000, 'every SYN/RST pair is one flow ended by the RST');
  assert.equal(meter.stats().evicted, 0);
  const longLived = meter.flush();
  assert.equal(longLived.length, 200);
  for (const r of longLived) assert.equal(r.features[iFwd], 30, `${r.srcIp} lost packets to a broken probe chain`);
});
