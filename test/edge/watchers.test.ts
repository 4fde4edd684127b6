import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, TCP_URG, arpFrame, ARP_REPLY, icmpFrame, ip, ipv4FromInt, mac,
  quoteForIcmpError, tcpFrame, udpFrame,
} from '../../capture/frames.ts';
import { type Finding } from '../../edge/watchers/index.ts';
import { HostFlags } from '../../edge/verdicts.ts';
import { sharedData } from '../helpers/shared-data.ts';
import { A, B, EVIL, GW, host, hop, rst, run, syn, type Pkt } from './watchers-fixtures.ts';

const kinds = (f: Finding[]) => [...new Set(f.map((x) => x.evidence.kind))].sort();

test('a SYN port scan answered by RSTs is a scan-sweep on the scanner; a client whose SYNs are answered is not', async () => {
  const pkts: Pkt[] = [];
  for (let p = 1; p <= 200; p++) {
    pkts.push({ frame: syn(A, B, 40000, p), t: p * 0.001 });
    pkts.push({ frame: rst(B, A, p, 40000), t: p * 0.001 + 0.0001 });
  }
  const { found } = await run(pkts);
  assert.deepEqual(kinds(found), ['scan-sweep']);
  assert.equal(found[0].host, '192.168.1.10');
  assert.equal(found[0].class, 'Scan');
  assert.ok(found[0].evidence.count! >= 64 && found[0].evidence.targets!.length > 0, JSON.stringify(found[0].evidence));

  // 200 sessions to 100 servers, each answered: nothing.
  const ok: Pkt[] = [];
  for (let i = 0; i < 100; i++) {
    const h = host(i + 2);
    ok.push({ frame: syn(A, h, 41000 + i, 443), t: i * 0.01 });
    ok.push({ frame: tcpFrame(hop(h, A), { sport: 443, dport: 41000 + i, seq: 9, ack: 2, flags: TCP_SYN | TCP_ACK, window: 1024 }), t: i * 0.01 + 0.001 });
    ok.push({ frame: tcpFrame(hop(A, h), { sport: 41000 + i, dport: 443, seq: 2, ack: 10, flags: TCP_ACK, window: 1024 }), t: i * 0.01 + 0.002 });
  }
  assert.deepEqual((await run(ok)).found, []);
});

test('UDP probes answered by ICMP port unreachable, echo sweeps and odd-flag probes are scans', async () => {
  const udp: Pkt[] = [];
  for (let p = 1; p <= 100; p++) {
    const probe = udpFrame(hop(A, B), { sport: 50000, dport: p });
    udp.push({ frame: probe, t: p * 0.01 });
    udp.push({ frame: icmpFrame(hop(B, A), { type: 3, code: 3, rest: 0, payload: quoteForIcmpError(probe) }), t: p * 0.01 + 0.001 });
  }
  assert.deepEqual(kinds((await run(udp)).found), ['scan-sweep']);

  const echo: Pkt[] = [];
  for (let i = 0; i < 30; i++) echo.push({ frame: icmpFrame(hop(A, host(i + 2)), { type: 8, code: 0, rest: i }), t: i * 0.01 });
  assert.deepEqual(kinds((await run(echo)).found), ['scan-echo-sweep']);

  // nmap -O's T2, T3 and T7 probes: NULL, SYN|FIN|URG|PSH, FIN|PSH|URG.
  const odd = [0, TCP_SYN | TCP_FIN | TCP_URG | TCP_PSH, TCP_FIN | TCP_PSH | TCP_URG].map((f, i) => ({ frame: syn(A, B, 40000 + i, 80, f), t: i }));
  const o = (await run(odd)).found;
  assert.deepEqual(kinds(o), ['scan-odd-flags']);
  assert.equal(o[0].host, '192.168.1.10');
});

test('telnet SYNs to many Internet hosts are propagation (Mirai); a flood of spoofed SYNs is a syn-flood on the victim', async () => {
  const bot: Pkt[] = [];
  for (let i = 0; i < 20; i++) {
    const target = { mac: GW.mac, ip: ipv4FromInt((50 << 24) + i * 7919) };
    bot.push({ frame: syn(A, target, 30000 + i, i % 10 === 0 ? 2323 : 23), t: i * 0.005 });
  }
  const p = (await run(bot)).found;
  assert.ok(p.some((f) => f.evidence.kind === 'propagation' && f.class === 'Mirai' && f.host === '192.168.1.10'), JSON.stringify(p));
  // A general scanner on a port list (masscan -p 22,23,80,8080) is a scan, not a bot spreading.
  const masscan: Pkt[] = [];
  for (let i = 0; i < 40; i++) {
    const target = { mac: GW.mac, ip: ipv4FromInt((50 << 24) + i * 7919) };
    for (const port of [22, 23, 80, 8080]) masscan.push({ frame: syn(A, target, 30000, port), t: i * 0.005 });
  }
  assert.deepEqual(kinds((await run(masscan)).found), ['scan-sweep']);

  const flood: Pkt[] = [];
  for (let i = 0; i < 3000; i++) {
    const spoofed = { mac: GW.mac, ip: ipv4FromInt((60 << 24) + i * 104729) };
    flood.push({ frame: syn(spoofed, B, 1024 + (i % 60000), 80), t: i * 0.001 });
  }
  const { w, found } = await run(flood, { scan: { maxSources: 64 }, flood: { maxHosts: 64 } });
  assert.ok(found.some((f) => f.evidence.kind === 'syn-flood' && f.host === '192.168.1.20' && f.role === 'victim'));
  assert.ok(found.length <= 3, `${found.length} findings: the reporter keeps a flood to a handful`);
  // Fixed memory: 3,000 random sources churn a 64-source table.
  const s = w.stats();
  assert.ok(s.scan!.sources <= 64 && s.scan!.evicted > 2000, JSON.stringify(s.scan));
});

test('a login service hit by many alike short sessions is brute force; varied sessions are not', async () => {
  const pkts: Pkt[] = [];
  const session = (i: number, t0: number, banner: number, reply: number) => {
    const sp = 45000 + i;
    const h = hop(A, B);
    const r = hop(B, A);
    let seq = 1;
    let ack = 1;
    const out: Pkt[] = [
      { frame: tcpFrame(h, { sport: sp, dport: 22, seq: 0, ack: 0, flags: TCP_SYN, window: 1024 }), t: t0 },
      { frame: tcpFrame(r, { sport: 22, dport: sp, seq: 0, ack: 1, flags: TCP_SYN | TCP_ACK, window: 1024 }), t: t0 + 0.001 },
      { frame: tcpFrame(h, { sport: sp, dport: 22, seq, ack, flags: TCP_ACK, window: 1024 }), t: t0 + 0.002 },
      { frame: tcpFrame(r, { sport: 22, dport: sp, seq: ack, ack: seq, flags: TCP_ACK | TCP_PSH, window: 1024, payload: new Uint8Array(banner) }), t: t0 + 0.003 },
      { frame: tcpFrame(h, { sport: sp, dport: 22, seq, ack: ack + banner, flags: TCP_ACK | TCP_PSH, window: 1024, payload: new Uint8Array(reply) }), t: t0 + 0.004 },
      { frame: tcpFrame(r, { sport: 22, dport: sp, seq: ack + banner, ack: seq + reply, flags: TCP_FIN | TCP_ACK, window: 1024 }), t: t0 + 0.005 },
      { frame: tcpFrame(h, { sport: sp, dport: 22, seq: seq + reply, ack: ack + banner + 1, flags: TCP_FIN | TCP_ACK, window: 1024 }), t: t0 + 0.006 },
    ];
    seq += 0;
    return out;
  };
  for (let i = 0; i < 22; i++) pkts.push(...session(i, i * 2.7, 40, 30 + (i % 3)));
  const bf = (await run(pkts)).found;
  assert.ok(bf.some((f) => f.evidence.kind === 'brute-force' && f.class === 'Mirai' && f.evidence.targets![0] === '192.168.1.20:22'), JSON.stringify(bf));

  const varied: Pkt[] = [];
  for (let i = 0; i < 12; i++) varied.push(...session(i, i * 3, 40 + 100 * i, 30 + 77 * i));
  assert.deepEqual((await run(varied)).found, []);
});

test('the relay: the same IP packet re-sent from the MAC it was sent to is arp-relay on the victim', async () => {
  const pkts: Pkt[] = [];
  for (let i = 0; i < 5; i++) {
    // A → (EVIL's MAC) → GW: the poisoned victim's packet, and the attacker forwarding it.
    const first = udpFrame({ srcMac: A.mac, dstMac: EVIL.mac, src: A.ip, dst: ip('8.8.8.8'), ipId: 100 + i }, { sport: 5000, dport: 53 });
    const again = udpFrame({ srcMac: EVIL.mac, dstMac: GW.mac, src: A.ip, dst: ip('8.8.8.8'), ipId: 100 + i, ttl: 63 }, { sport: 5000, dport: 53 });
    pkts.push({ frame: first, t: i }, { frame: again, t: i + 0.0005 });
  }
  const { found } = await run(pkts);
  assert.ok(found.some((f) => f.evidence.kind === 'arp-relay' && f.host === '192.168.1.10' && f.evidence.macs[0] === '02:00:00:00:00:66'), JSON.stringify(found));
  // A retransmission from the same MAC is no relay.
  const retx: Pkt[] = [];
  for (let i = 0; i < 10; i++) retx.push({ frame: udpFrame({ srcMac: A.mac, dstMac: GW.mac, src: A.ip, dst: ip('8.8.8.8'), ipId: 7 }, { sport: 5000, dport: 53 }), t: i * 0.1 });
  assert.deepEqual((await run(retx)).found, []);
});

test('ARP: a MAC answering for its own IP and a stolen one, and an IP flipping between MACs', async () => {
  const reply = (from: { mac: Uint8Array }, claim: Uint8Array, to: typeof A) => arpFrame({ op: ARP_REPLY, senderMac: from.mac, senderIp: claim, targetMac: to.mac, targetIp: to.ip });
  const pkts: Pkt[] = [
    { frame: reply(GW, GW.ip, A), t: 0 },
    { frame: reply(EVIL, EVIL.ip, A), t: 1 },
    { frame: reply(EVIL, GW.ip, A), t: 2 },
    { frame: reply(GW, GW.ip, A), t: 3 },
    { frame: reply(EVIL, GW.ip, A), t: 4 },
  ];
  const k = kinds((await run(pkts)).found);
  assert.ok(k.includes('arp-mac-multi-ip') && k.includes('arp-binding-flip'), k.join());

  // One direction only, seen at the victim: the gateway's binding is never seen, but the poisoner also speaks as
  // itself (it asks for the victim's address) while it keeps announcing the gateway's.
  const oneWay: Pkt[] = [{ frame: arpFrame({ op: 1, senderMac: EVIL.mac, senderIp: EVIL.ip, targetIp: A.ip }), t: 0 }];
  for (let i = 0; i < 4; i++) oneWay.push({ frame: reply(EVIL, GW.ip, A), t: 1 + 2 * i });
  const f = (await run(oneWay)).found;
  assert.ok(f.some((x) => x.evidence.kind === 'arp-mac-multi-ip' && x.evidence.ip === '192.168.1.1' && x.class === 'MITM ARP Spoofing'), JSON.stringify(f));
});

test('verdict flags: only flows that arrive after a finding are upgraded; the more severe class wins', () => {
  const flags = new HostFlags({ holdMs: 1000 });
  const f = (cls: string, hostIp: string, tUs: number): Finding => ({
    class: cls, host: hostIp, role: 'source', tUs, evidence: { kind: 'scan-sweep', ip: hostIp, macs: [], detail: '' },
  });
  flags.add(f('Scan', '10.0.0.1', 1e6), 100);
  assert.equal(flags.forFlow('10.0.0.1', '10.0.0.2', 99), undefined, 'arrived before the finding');
  assert.equal(flags.forFlow('10.0.0.2', '10.0.0.1', 101)?.class, 'Scan', 'answers to the scanner too');
  flags.add(f('DoS', '10.0.0.2', 1.1e6), 102);
  assert.equal(flags.forFlow('10.0.0.1', '10.0.0.2', 103)?.class, 'DoS');
  // A scanner's scripted sessions look like a brute force: it stays a scanner.
  const bf: Finding = { class: 'Mirai', host: '10.0.0.1', role: 'source', tUs: 1.2e6, evidence: { kind: 'brute-force', ip: '10.0.0.1', macs: [], detail: '' } };
  assert.equal(flags.add(bf, 103), 'Scan');
  assert.equal(flags.forFlow('10.0.0.1', '10.0.0.7', 104)?.class, 'Scan');
  flags.add(f('Scan', '10.0.0.9', 5e6), 104); // capture time moves past the hold
  assert.equal(flags.forFlow('10.0.0.1', '10.0.0.3', 105), undefined, 'expired');
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : /\.pcap(ng)?$/.test(n) ? [p] : [];
  });
}

test('every real attack capture raises a right-family finding; no benign capture raises any (worst cases reported)', async (t) => {
  const root = sharedData(t, 'pcaps');
  if (!root) return;
  const expected = JSON.parse(readFileSync(join(root, 'expected.json'), 'utf8')).attack as Record<string, { families: string[] }>;
  const missed: string[] = [];
  for (const [name, e] of Object.entries(expected)) {
    const { found } = await run(readFileSync(join(root, 'attack', name)));
    if (!found.some((f) => e.families.includes(f.class))) missed.push(name);
  }
  assert.deepEqual(missed, []);
  const fp: string[] = [];
  const peaks: Record<string, number> = {};
  for (const file of walk(join(root, 'benign')).sort()) {
    const { w, found } = await run(readFileSync(file));
    if (found.length) fp.push(`${file.slice(root.length + 1)}: ${found[0].evidence.detail}`);
    for (const [k, v] of Object.entries(w.peaks())) {
      for (const [m, x] of Object.entries(typeof v === 'number' ? { '': v } : v ?? {})) peaks[`${k}.${m}`] = Math.max(peaks[`${k}.${m}`] ?? 0, x as number);
    }
  }
  t.diagnostic(`benign worst cases: ${JSON.stringify(peaks)}`);
  assert.deepEqual(fp, []);
});

test('UDP floods: walking source ports with 256-byte data is DoS, random ports with 512 bytes is Mirai; ICMP floods; an ACK scan is no flood', async () => {
  const hping: Pkt[] = [];
  for (let i = 0; i < 2500; i++) hping.push({ frame: udpFrame(hop(A, B), { sport: 2000 + i, dport: 5683, payload: new Uint8Array(256) }), t: i * 0.001 });
  const h = (await run(hping)).found.filter((f) => f.evidence.kind === 'udp-flood');
  assert.equal(h.length, 1);
  assert.equal(h[0].class, 'DoS');
  assert.equal(h[0].host, '192.168.1.20');

  const mirai: Pkt[] = [];
  for (let i = 0; i < 2500; i++) mirai.push({ frame: udpFrame(hop(A, B), { sport: (i * 7919) & 0xffff, dport: (i * 104729) & 0xffff, payload: new Uint8Array(512) }), t: i * 0.001 });
  const m = (await run(mirai)).found.filter((f) => f.evidence.kind === 'udp-flood');
  assert.equal(m[0]?.class, 'Mirai');

  const ping: Pkt[] = [];
  for (let i = 0; i < 2500; i++) ping.push({ frame: icmpFrame(hop(A, B), { type: 8, code: 0, rest: i, payload: new Uint8Array(56) }), t: i * 0.001 });
  assert.ok((await run(ping)).found.some((f) => f.evidence.kind === 'icmp-flood' && f.class === 'DoS'));

  const ackScan: Pkt[] = [];
  for (let p = 1; p <= 3000; p++) ackScan.push({ frame: syn(A, B, 40000, p, TCP_ACK), t: p * 0.001 });
  assert.deepEqual(kinds((await run(ackScan)).found), ['scan-sweep']);
});
