import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STAT_FEATURES } from '../../shared/features.ts';
import { isIdsError } from '../../shared/errors.ts';
import type { FlowRecord, PacketBatch } from '../../shared/packets.ts';
import { FlowMeter, type MeterMode } from '../../asm/flowmeter-host.ts';

// ---- tiny frame builders (checksums are not read by the meter, so they stay 0) ----

const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

interface Pkt { ts: number; data: Uint8Array; link?: number }

const v4 = (s: string) => s.split('.').map(Number);

function ipv4(src: string, dst: string, proto: number, l4: number[]): number[] {
  const total = 20 + l4.length;
  return [0x45, 0, total >> 8, total & 255, 0, 0, 0x40, 0, 64, proto, 0, 0, ...v4(src), ...v4(dst), ...l4];
}

function tcp(sport: number, dport: number, flags: number, payload = 0, win = 1000, optWords = 0): number[] {
  const doff = 5 + optWords;
  return [
    sport >> 8, sport & 255, dport >> 8, dport & 255, 0, 0, 0, 1, 0, 0, 0, 0,
    doff << 4, flags, win >> 8, win & 255, 0, 0, 0, 0,
    ...new Array(optWords * 4).fill(1), ...new Array(payload).fill(0x61),
  ];
}

const udp = (sport: number, dport: number, payload: number) =>
  [sport >> 8, sport & 255, dport >> 8, dport & 255, 0, 8 + payload, 0, 0, ...new Array(payload).fill(7)];

const eth = (etherType: number, body: number[], vlans = 0) => {
  const tags: number[] = [];
  for (let i = 0; i < vlans; i++) tags.push(i === 0 && vlans > 1 ? 0x88 : 0x81, i === 0 && vlans > 1 ? 0xa8 : 0x00, 0, 10 + i);
  return Uint8Array.from([...new Array(12).fill(2), ...tags, etherType >> 8, etherType & 255, ...body]);
};

const tcpPkt = (ts: number, src: string, dst: string, sp: number, dp: number, flags: number, payload = 0, win = 1000): Pkt =>
  ({ ts, data: eth(0x0800, ipv4(src, dst, 6, tcp(sp, dp, flags, payload, win))) });

function batchOf(pkts: Pkt[]): PacketBatch {
  const total = pkts.reduce((n, p) => n + p.data.length, 0);
  const data = new Uint8Array(total);
  const offsets = new Uint32Array(pkts.length);
  const lengths = new Uint32Array(pkts.length);
  let o = 0;
  pkts.forEach((p, i) => {
    data.set(p.data, o);
    offsets[i] = o;
    lengths[i] = p.data.length;
    o += p.data.length;
  });
  return {
    count: pkts.length, data, offsets, lengths, wireLengths: lengths.slice(),
    timestampsUs: Float64Array.from(pkts.map((p) => p.ts)),
    linkTypes: Uint16Array.from(pkts.map((p) => p.link ?? 1)),
    sourceOffset: 0,
  };
}

async function run(mode: MeterMode, pkts: Pkt[], opts: { maxFlows?: number } = {}) {
  const meter = await FlowMeter.create({ mode, ...opts });
  const flows = [...meter.push(batchOf(pkts)), ...meter.flush()];
  return { flows, stats: meter.stats() };
}

const F = (name: string) => {
  const i = STAT_FEATURES.indexOf(name as never);
  assert.ok(i >= 0, name);
  return (r: FlowRecord) => r.features[i];
};

const T0 = 1_600_000_000_000_000;
const A = '10.0.0.1', B = '192.168.1.9';

/** A handshake, data both ways, FIN from the client, FIN+ACK from the server, last ACK. */
function conversation(t: number): Pkt[] {
  return [
    tcpPkt(t, A, B, 40000, 80, SYN, 0, 64240),
    tcpPkt(t + 100, B, A, 80, 40000, SYN | ACK, 0, 65160),
    tcpPkt(t + 200, A, B, 40000, 80, ACK),
    tcpPkt(t + 300, A, B, 40000, 80, PSH | ACK, 120),
    tcpPkt(t + 500, B, A, 80, 40000, PSH | ACK, 900, 500),
    tcpPkt(t + 700, A, B, 40000, 80, FIN | ACK),
    tcpPkt(t + 800, B, A, 80, 40000, FIN | ACK, 0, 501),
    tcpPkt(t + 900, A, B, 40000, 80, ACK),
  ];
}

test('corrected: one TCP conversation is one flow with per-packet counts, ended by the last ACK', async () => {
  const { flows, stats } = await run('corrected', conversation(T0));
  assert.equal(flows.length, 1);
  const f = flows[0];
  assert.deepEqual([f.srcIp, f.srcPort, f.dstIp, f.dstPort, f.protocol], [A, 40000, B, 80, 6]);
  assert.equal(f.startUs, T0);
  assert.equal(F('Flow_Duration')(f), 900);
  assert.equal(F('Tot_Fwd_Pkts')(f), 5);
  assert.equal(F('Tot_Bwd_Pkts')(f), 3);
  assert.equal(F('TotLen_Fwd_Pkts')(f), 120);
  assert.equal(F('TotLen_Bwd_Pkts')(f), 900);
  assert.equal(F('FIN_Flag_Cnt')(f), 2);
  assert.equal(F('SYN_Flag_Cnt')(f), 2);
  assert.equal(F('ACK_Flag_Cnt')(f), 7);
  assert.equal(F('PSH_Flag_Cnt')(f), 2);
  assert.equal(F('Fwd_PSH_Flags')(f), 1);
  assert.equal(F('Bwd_PSH_Flags')(f), 1);
  assert.equal(F('Init_Fwd_Win_Byts')(f), 64240);
  assert.equal(F('Init_Bwd_Win_Byts')(f), 65160, 'first backward window, not the last');
  assert.equal(F('Fwd_Act_Data_Pkts')(f), 1);
  assert.equal(F('Fwd_Header_Len')(f), 100);
  assert.equal(F('Flow_IAT_Max')(f), 200);
  assert.equal(F('Flow_IAT_Min')(f), 100);
  assert.equal(F('Down/Up_Ratio')(f), 0.6);
  assert.equal(F('Pkt_Len_Mean')(f), 1020 / 8);
  assert.equal(stats.packets, 8);
  assert.equal(stats.flowsEmitted, 1);
  assert.equal(stats.live, 0);
});

test('compat: the first FIN ends the flow; later packets open a new one; flags come from the first packet only', async () => {
  const { flows, stats } = await run('cicflowmeter-compat', conversation(T0));
  // FIN from A ends flow 1 (6 packets); B's FIN+ACK opens flow 2 (B→A) which A's ACK joins (2 packets).
  assert.equal(flows.length, 2);
  const [first, second] = flows.sort((x, y) => x.startUs - y.startUs);
  assert.equal(F('Tot_Fwd_Pkts')(first) + F('Tot_Bwd_Pkts')(first), 6);
  assert.deepEqual([second.srcIp, second.srcPort], [B, 80]);
  assert.equal(F('Tot_Fwd_Pkts')(second), 1);
  assert.equal(F('Tot_Bwd_Pkts')(second), 1);
  // Java HashMap order: the SYN of the first packet lands in the PSH_Flag_Cnt column.
  assert.equal(F('PSH_Flag_Cnt')(first), 1);
  assert.equal(F('SYN_Flag_Cnt')(first), 0);
  assert.equal(F('ACK_Flag_Cnt')(first), 0);
  // First packet's length counted twice in the all-packets statistics: mean over n + 1 values.
  assert.equal(F('Pkt_Len_Mean')(first), 1020 / 7);
  assert.equal(F('Pkt_Size_Avg')(first), 1020 / 6);
  assert.equal(F('Init_Bwd_Win_Byts')(first), 500, 'last backward window');
  assert.equal(stats.flowsEmitted, 2);
});

test('compat drops one-packet flows; corrected keeps them', async () => {
  const syns = [0, 1, 2].map((i) => tcpPkt(T0 + i, `172.16.0.${i + 1}`, B, 1000 + i, 80, SYN));
  const c = await run('cicflowmeter-compat', syns);
  assert.equal(c.flows.length, 0);
  assert.equal(c.stats.suppressed, 3);
  const k = await run('corrected', syns);
  assert.equal(k.flows.length, 3);
  assert.equal(F('Flow_Pkts/s')(k.flows[0]), Infinity, 'rate over a zero duration, as in IoTID20');
  assert.equal(F('Flow_Byts/s')(k.flows[0]), 0, '0/0 is written as 0 in corrected mode');
});

test('corrected: RST ends a flow at once', async () => {
  const pkts = [tcpPkt(T0, A, B, 5, 6, SYN), tcpPkt(T0 + 10, B, A, 6, 5, RST | ACK), tcpPkt(T0 + 20, A, B, 5, 6, SYN)];
  const { flows } = await run('corrected', pkts);
  assert.equal(flows.length, 2);
  assert.equal(F('RST_Flag_Cnt')(flows[0]), 1);
  assert.equal(F('Tot_Bwd_Pkts')(flows[0]), 1);
  // A lone RST (no SYN seen) is a finished one-packet flow at once, not a live one.
  const meter = await FlowMeter.create({ mode: 'corrected' });
  const lone = meter.push(batchOf([tcpPkt(T0, B, A, 80, 9, RST | ACK)]));
  assert.equal(lone.length, 1);
  assert.equal(meter.stats().live, 0);
});

test('flow timeout: a packet past 120 s from the start opens a new flow', async () => {
  // 0, 50, 100, 150, 160 s: the packet at 150 s is past 120 s from the start and opens flow 2.
  const pkts = [0, 1, 2, 3].map((i) => tcpPkt(T0 + i * 50e6, A, B, 7, 8, ACK, 10));
  pkts.push(tcpPkt(T0 + 160e6, B, A, 8, 7, ACK, 10));
  for (const mode of ['cicflowmeter-compat', 'corrected'] as const) {
    const { flows } = await run(mode, pkts);
    assert.equal(flows.length, 2, mode);
    const byStart = flows.sort((x, y) => x.startUs - y.startUs);
    assert.equal(F('Tot_Fwd_Pkts')(byStart[0]), 3);
    assert.equal(byStart[1].startUs, T0 + 150e6);
    assert.equal(F('Tot_Bwd_Pkts')(byStart[1]), 1);
    // 50 s gaps > the 5 s activity timeout: idle periods recorded.
    assert.equal(F('Idle_Max')(byStart[0]), 50e6);
  }
});

test('link layers: VLAN, QinQ, Linux SLL, raw IP; ARP counted as non-IP', async () => {
  const body = ipv4(A, B, 17, udp(53, 5353, 30));
  const sll = Uint8Array.from([0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00, ...body]);
  const pkts: Pkt[] = [
    { ts: T0, data: eth(0x0800, body, 1) },
    { ts: T0 + 1, data: eth(0x0800, body, 2) },
    { ts: T0 + 2, data: sll, link: 113 },
    { ts: T0 + 3, data: Uint8Array.from(body), link: 101 },
    { ts: T0 + 4, data: eth(0x0806, new Array(28).fill(0)) },
  ];
  const { flows, stats } = await run('corrected', pkts);
  assert.equal(stats.nonIp, 1);
  assert.equal(flows.length, 1);
  assert.equal(F('Tot_Fwd_Pkts')(flows[0]), 4);
  assert.equal(F('TotLen_Fwd_Pkts')(flows[0]), 120);
  assert.equal(F('Fwd_Header_Len')(flows[0]), 32);
  assert.equal(F('Init_Fwd_Win_Byts')(flows[0]), -1, 'no TCP window for UDP');
});

test('ICMP: protocol 0 and ports 0 in compat (as CICFlowMeter), protocol 1 in corrected', async () => {
  const icmp = (ts: number, s: string, d: string) => ({ ts, data: eth(0x0800, ipv4(s, d, 1, [8, 0, 0, 0, 0, 1, 0, 1, ...new Array(56).fill(0)])) });
  const pkts = [icmp(T0, A, B), icmp(T0 + 1000, B, A)];
  const c = await run('cicflowmeter-compat', pkts);
  assert.deepEqual([c.flows[0].protocol, c.flows[0].srcPort, c.flows[0].dstPort], [0, 0, 0]);
  assert.equal(F('TotLen_Fwd_Pkts')(c.flows[0]), 0);
  const k = await run('corrected', pkts);
  assert.deepEqual([k.flows[0].protocol, k.flows[0].srcPort], [1, 0]);
  assert.equal(F('TotLen_Fwd_Pkts')(k.flows[0]), 56);
  assert.equal(F('Tot_Bwd_Pkts')(k.flows[0]), 1);
});

test('IPv6 with a hop-by-hop header: parsed in corrected mode, skipped (counted) in compat', async () => {
  const a6 = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1];
  const b6 = [0xfe, 0x80, ...new Array(13).fill(0), 2];
  const l4 = tcp(1234, 443, SYN, 10);
  const hbh = [6, 0, 1, 4, 0, 0, 0, 0]; // next header TCP, 8 bytes
  const plen = hbh.length + l4.length;
  const ip6 = [0x60, 0, 0, 0, plen >> 8, plen & 255, 0, 64, ...a6, ...b6, ...hbh, ...l4];
  const pkts: Pkt[] = [{ ts: T0, data: eth(0x86dd, ip6) }];
  const k = await run('corrected', pkts);
  assert.equal(k.flows.length, 1);
  assert.equal(k.flows[0].srcIp, '2001:db8::1');
  assert.equal(k.flows[0].dstIp, 'fe80::2');
  assert.equal(k.flows[0].dstPort, 443);
  assert.equal(F('TotLen_Fwd_Pkts')(k.flows[0]), 10);
  const c = await run('cicflowmeter-compat', pkts);
  assert.equal(c.stats.skipped, 1);
  assert.equal(c.flows.length, 0);
});

test('live-flow cap: a spoofed SYN flood evicts the oldest flows and counts them; memory stays put', async () => {
  const pkts: Pkt[] = [];
  for (let i = 0; i < 5000; i++) pkts.push(tcpPkt(T0 + i, `10.${(i >> 8) & 255}.${i & 255}.7`, B, 1024 + (i % 60000), 80, SYN));
  const meter = await FlowMeter.create({ mode: 'corrected', maxFlows: 256 });
  const before = meter.stats().wasmMemoryBytes;
  const out = meter.push(batchOf(pkts));
  const s = meter.stats();
  assert.equal(s.live, 256);
  assert.equal(s.evicted, 5000 - 256);
  assert.equal(out.length, 5000 - 256, 'evicted flows are emitted, not lost');
  assert.equal(out[0].srcIp, '10.0.0.7', 'the oldest goes first');
  assert.ok(s.wasmMemoryBytes - before < 2 << 20, `wasm memory grew by ${s.wasmMemoryBytes - before}`);
  assert.equal(meter.flush().length, 256);
});

test('corrected: time moving on expires idle flows without waiting for their packets', async () => {
  const meter = await FlowMeter.create({ mode: 'corrected' });
  meter.push(batchOf([tcpPkt(T0, A, B, 1, 2, ACK, 5)]));
  const later = meter.push(batchOf([tcpPkt(T0 + 121e6, '10.9.9.9', B, 3, 4, ACK, 5)]));
  assert.equal(later.length, 1);
  assert.equal(later[0].srcPort, 1);
  assert.equal(meter.advance(T0 + 300e6).length, 1);
  assert.equal(meter.stats().live, 0);
  assert.equal(meter.stats().expired, 2);
});

test('bad input: packets pointing outside the batch are skipped; bad options are IdsErrors', async () => {
  const b = batchOf([tcpPkt(T0, A, B, 1, 2, SYN)]);
  b.lengths[0] = 10_000;
  const meter = await FlowMeter.create({ mode: 'corrected' });
  assert.deepEqual(meter.push(b), []);
  assert.equal(meter.stats().skipped, 1);
  const truncated = batchOf([{ ts: T0, data: eth(0x0800, ipv4(A, B, 6, tcp(1, 2, SYN)).slice(0, 30)) }]);
  assert.deepEqual(meter.push(truncated), []);
  assert.equal(meter.stats().skipped, 2);
  await assert.rejects(FlowMeter.create({ maxFlows: 0 }), (e) => isIdsError(e, 'BAD_OPTION'));
  await assert.rejects(FlowMeter.create({ mode: 'fast' as MeterMode }), (e) => isIdsError(e, 'BAD_OPTION'));
  await assert.rejects(FlowMeter.create({ flowTimeoutUs: -1 }), (e) => isIdsError(e, 'BAD_OPTION'));
});

test('batches: a conversation split over many batches gives the same flow as one batch', async () => {
  const pkts = conversation(T0);
  const meter = await FlowMeter.create({ mode: 'corrected' });
  const flows: FlowRecord[] = [];
  for (const p of pkts) flows.push(...meter.push(batchOf([p])));
  flows.push(...meter.flush());
  const whole = (await run('corrected', pkts)).flows;
  assert.equal(flows.length, 1);
  assert.deepEqual(Array.from(flows[0].features), Array.from(whole[0].features));
});

test('fuzz: random and mangled packets under every link type never trap, and every packet is counted once', async () => {
  const { Rng } = await import('../../shared/random.ts');
  const rng = new Rng(20261130);
  const base = conversation(T0).map((p) => p.data);
  const pkts: Pkt[] = [];
  const links = [0, 1, 101, 108, 113, 228, 229, 276, 999];
  for (let i = 0; i < 3000; i++) {
    let data: Uint8Array;
    if (i % 2) {
      data = Uint8Array.from({ length: rng.int(0, 120) }, () => rng.int(0, 256));
    } else {
      // A real frame, cut short and with random bytes flipped (version, IHL, data offset, extension headers...).
      const src = rng.pick(base);
      data = src.slice(0, rng.int(0, src.length + 1));
      for (let k = 0; k < 3 && data.length > 0; k++) data[rng.int(0, data.length)] = rng.int(0, 256);
    }
    pkts.push({ ts: T0 + i, data, link: rng.pick(links) });
  }
  for (const mode of ['cicflowmeter-compat', 'corrected'] as const) {
    const { flows, stats } = await run(mode, pkts, { maxFlows: 64 });
    assert.equal(stats.packets, 3000);
    const inFlows = flows.reduce((n, r) => n + F('Tot_Fwd_Pkts')(r) + F('Tot_Bwd_Pkts')(r), 0);
    if (mode === 'corrected') assert.equal(inFlows, 3000 - stats.nonIp - stats.skipped);
    else assert.ok(inFlows <= 3000 - stats.nonIp - stats.skipped);
    assert.ok(stats.nonIp + stats.skipped > 0);
  }
});
