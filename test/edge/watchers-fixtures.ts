/** Packets and a runner shared by the watcher tests: synthetic LAN hosts, frames, and the hub's packet path. */
import assert from 'node:assert/strict';
import { readCaptureBuffer } from '../../capture/reader.ts';
import { encodePcap } from '../../capture/pcap-writer.ts';
import { FlowMeter } from '../../asm/flowmeter-host.ts';
import { TCP_ACK, TCP_RST, TCP_SYN, ip, ipv4FromInt, mac, tcpFrame, type Hop } from '../../capture/frames.ts';
import { EvidenceSchema } from '../../shared/payloads.ts';
import { Watchers, type Finding, type WatcherOptions } from '../../edge/watchers/index.ts';

export type Pkt = { frame: Uint8Array; t: number };

/** Runs packets (seconds) through watchers and a flow meter, as the hub's packet input does. */
export async function run(pkts: Pkt[] | Uint8Array, opts: WatcherOptions = {}): Promise<{ w: Watchers; found: Finding[] }> {
  const buf = pkts instanceof Uint8Array ? pkts : encodePcap(pkts.map((p) => ({ frame: p.frame, timestampUs: Math.round(p.t * 1e6) })));
  const w = new Watchers(opts);
  const meter = await FlowMeter.create({ mode: 'corrected' });
  const found: Finding[] = [];
  for (const b of readCaptureBuffer(buf)) {
    found.push(...w.push(b));
    for (const f of meter.push(b)) found.push(...w.flow(f));
  }
  for (const f of meter.flush()) found.push(...w.flow(f));
  for (const f of found) assert.ok(EvidenceSchema.safeParse(f.evidence).success, JSON.stringify(f.evidence));
  return { w, found };
}

export const A = { mac: mac('02:00:00:00:00:0a'), ip: ip('192.168.1.10') };
export const B = { mac: mac('02:00:00:00:00:0b'), ip: ip('192.168.1.20') };
export const GW = { mac: mac('02:00:00:00:00:01'), ip: ip('192.168.1.1') };
export const EVIL = { mac: mac('02:00:00:00:00:66'), ip: ip('192.168.1.66') };
export const hop = (from: typeof A, to: typeof A, extra: Partial<Hop> = {}): Hop => ({ srcMac: from.mac, dstMac: to.mac, src: from.ip, dst: to.ip, ...extra });
export const host = (n: number) => ({ mac: mac(`02:00:00:00:01:${(n & 255).toString(16).padStart(2, '0')}`), ip: ipv4FromInt((192 << 24 | 168 << 16 | 2 << 8 | n) >>> 0) });
export const syn = (from: typeof A, to: typeof A, sport: number, dport: number, flags = TCP_SYN) => tcpFrame(hop(from, to), { sport, dport, seq: 1, ack: 0, flags, window: 1024 });
export const rst = (from: typeof A, to: typeof A, sport: number, dport: number) => tcpFrame(hop(from, to), { sport, dport, seq: 0, ack: 2, flags: TCP_RST | TCP_ACK, window: 0 });

