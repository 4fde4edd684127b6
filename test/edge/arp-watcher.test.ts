import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArpWatcher } from '../../edge/arp-watcher.ts';
import { readCaptureBuffer } from '../../capture/reader.ts';
import { encodePcap } from '../../capture/pcap-writer.ts';
import { arpFrame, ARP_REPLY, ARP_REQUEST, ip, mac } from '../../capture/frames.ts';
import { EvidenceSchema, type Evidence } from '../../shared/payloads.ts';
import type { PacketBatch } from '../../shared/packets.ts';
import { sharedData } from '../helpers/shared-data.ts';

function run(w: ArpWatcher, buf: Uint8Array): Evidence[] {
  const ev: Evidence[] = [];
  for (const b of readCaptureBuffer(buf)) ev.push(...w.push(b));
  for (const e of ev) assert.ok(EvidenceSchema.safeParse(e).success, JSON.stringify(e));
  return ev;
}

function batch(pkts: { frame: Uint8Array; t: number }[]): PacketBatch {
  const bs = [...readCaptureBuffer(encodePcap(pkts.map((p) => ({ frame: p.frame, timestampUs: p.t * 1e6 }))), { batchPackets: 1 << 20 })];
  assert.equal(bs.length, 1);
  return bs[0];
}

const GW = { mac: mac('00:11:22:33:44:01'), ip: ip('192.168.1.1') };
const CAM = { mac: mac('00:11:22:33:44:0a'), ip: ip('192.168.1.10') };
const EVIL = { mac: mac('de:ad:be:ef:00:01'), ip: ip('192.168.1.66') };
const request = (from: typeof GW, target: Uint8Array) => arpFrame({ op: ARP_REQUEST, senderMac: from.mac, senderIp: from.ip, targetIp: target });
const reply = (from: { mac: Uint8Array }, claimIp: Uint8Array, to: typeof GW) =>
  arpFrame({ op: ARP_REPLY, senderMac: from.mac, senderIp: claimIp, targetMac: to.mac, targetIp: to.ip });

test('the real arpspoof capture raises unsolicited-reply evidence, and gateway-claim when its gateway is known', (t) => {
  const f = sharedData(t, 'pcaps', 'attack', 'pcaphunt_na-arpSpoofing.pcap');
  if (!f) return;
  const buf = readFileSync(f);
  const w = new ArpWatcher();
  const ev = run(w, buf);
  assert.ok(ev.some((e) => e.kind === 'arp-unsolicited-reply' && e.macs[0] === '00:e0:4d:3c:25:7b'), JSON.stringify(ev));
  assert.equal(w.stats().unsolicitedReplies, 36);
  // 36 replies over ~150 s: the rate limit keeps it to a handful of messages.
  assert.ok(ev.length <= 8, `${ev.length} evidence messages`);
  const g = run(new ArpWatcher({ gatewayIps: ['10.0.0.157'] }), buf);
  assert.ok(g.some((e) => e.kind === 'arp-gateway-claim' && e.ip === '10.0.0.157'));
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : /\.pcap(ng)?$/.test(n) ? [p] : [];
  });
}

test('no evidence on any benign capture (false positives per capture reported)', (t) => {
  const root = sharedData(t, 'pcaps', 'benign');
  if (!root) return;
  const files = walk(root).sort();
  const fp: string[] = [];
  let arp = 0;
  let unsolicited = 0;
  for (const f of files) {
    // The usual home-router addresses of these testbeds as gateways: makes the gateway rule part of the check.
    const w = new ArpWatcher({ gatewayIps: ['192.168.1.1', '192.168.0.1', '10.10.10.1', '172.16.11.1'] });
    const ev = run(w, readFileSync(f));
    arp += w.stats().arpPackets;
    unsolicited += w.stats().unsolicitedReplies;
    if (ev.length) fp.push(`${f.slice(root.length + 1)}: ${ev.length} (${ev[0].detail})`);
  }
  t.diagnostic(`${files.length} benign captures, ${arp} ARP packets, ${unsolicited} unsolicited replies, false positives: ${fp.length ? fp.join('; ') : 'none'}`);
  assert.ok(arp > 10_000, 'the benign set has real ARP traffic');
  assert.deepEqual(fp, []);
});

test('an IP claimed by a second MAC while its owner is alive: ip-conflict and gateway-claim', () => {
  const w = new ArpWatcher({ gatewayIps: ['192.168.1.1'] });
  const ev = w.push(batch([
    { frame: request(CAM, GW.ip), t: 100 },
    { frame: reply(GW, GW.ip, CAM), t: 100.001 },
    { frame: reply(EVIL, GW.ip, CAM), t: 102 }, // the poisoner says the gateway is at its MAC
  ]));
  const kinds = ev.map((e) => e.kind).sort();
  assert.deepEqual(kinds, ['arp-gateway-claim', 'arp-ip-conflict']);
  assert.deepEqual(ev[0].macs, ['00:11:22:33:44:01', 'de:ad:be:ef:00:01']);
});

test('DHCP re-binding after the old owner fell silent is no conflict', () => {
  const w = new ArpWatcher({ graceMs: 60_000 });
  const newcomer = { mac: mac('00:11:22:33:44:0b'), ip: CAM.ip };
  const ev = w.push(batch([
    { frame: reply(CAM, CAM.ip, GW), t: 0 },
    { frame: request(GW, CAM.ip), t: 3600 },
    { frame: reply(newcomer, CAM.ip, GW), t: 3600.002 },
  ]));
  assert.deepEqual(ev, []);
  assert.equal(w.stats().rebinds, 1);
});

test('a device repeating its own binding to a peer that never asks is not evidence; a poisoner of two victims is', () => {
  const w = new ArpWatcher();
  const own = [];
  for (let i = 0; i < 50; i++) own.push({ frame: reply(CAM, CAM.ip, GW), t: 400 + 12 * i }); // last at 988 s
  assert.deepEqual(w.push(batch(own)), []);
  const poison = [];
  for (let i = 0; i < 10; i++) {
    poison.push({ frame: reply(EVIL, GW.ip, CAM), t: 1000 + 2 * i });
    poison.push({ frame: reply(EVIL, CAM.ip, GW), t: 1000 + 2 * i + 0.001 });
  }
  const ev = w.push(batch(poison));
  assert.ok(ev.some((e) => e.kind === 'arp-unsolicited-reply' && e.ip === '192.168.1.1'));
  assert.ok(ev.some((e) => e.kind === 'arp-ip-conflict' && e.ip === '192.168.1.10'), 'CAM claimed its own IP 12 s before: within grace');
  // Rate limit: 20 poisoning replies in 20 s give at most one message per (kind, ip, macs).
  const keys = ev.map((e) => `${e.kind} ${e.ip} ${e.macs}`);
  assert.equal(new Set(keys).size, keys.length);
  assert.ok(w.stats().suppressed > 0);
});

test('memory stays bounded; malformed ARP is counted, not thrown', () => {
  const w = new ArpWatcher({ maxEntries: 100 });
  const pkts = [];
  for (let i = 0; i < 5000; i++) {
    const sender = { mac: mac(`02:00:00:00:${(i >> 8).toString(16)}:${(i & 255).toString(16)}`), ip: ip(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`) };
    pkts.push({ frame: request(sender, GW.ip), t: i / 100 });
  }
  const bad = arpFrame({ op: ARP_REQUEST, senderMac: CAM.mac, senderIp: CAM.ip, targetIp: GW.ip });
  bad[18] = 8; // hardware length 8: not Ethernet ARP
  pkts.push({ frame: bad, t: 100 });
  pkts.push({ frame: bad.subarray(0, 20), t: 100 }); // cut short
  assert.deepEqual(w.push(batch(pkts)), []);
  const s = w.stats();
  assert.ok(s.bindings <= 100, `bindings ${s.bindings}`);
  assert.ok(s.evicted > 0);
  assert.equal(s.malformed, 2);
  assert.equal(s.arpPackets, 5002);
});
