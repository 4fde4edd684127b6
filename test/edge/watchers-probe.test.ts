import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_ACK, TCP_RST, TCP_SYN, tcpFrame, udpFrame, ip, mac } from '../../capture/frames.ts';
import { type Finding } from '../../edge/watchers/index.ts';
import { HostFlags, ModelGate } from '../../edge/verdicts.ts';
import { A, B, hop, host, rst, run, syn, type Pkt } from './watchers-fixtures.ts';

const ipNum = (s: string) => s.split('.').reduce((v, x) => v * 256 + Number(x), 0);
const seg = (from: typeof A, to: typeof A, sport: number, dport: number, seq: number, ack: number, flags: number) =>
  tcpFrame(hop(from, to), { sport, dport, seq, ack, flags, window: 1024 });

/** A SYN scan's probe of open port B:port: SYN, SYN-ACK, and the scanner's kernel resetting it (seq = the ack). */
function halfOpen(out: Pkt[], t: number, sport: number, port: number, isn = 1000): void {
  out.push({ frame: seg(A, B, sport, port, isn, 0, TCP_SYN), t });
  out.push({ frame: seg(B, A, port, sport, 7000, isn + 1, TCP_SYN | TCP_ACK), t: t + 0.0001 });
  out.push({ frame: seg(A, B, sport, port, isn + 1, 0, TCP_RST), t: t + 0.0002 });
}

/** A completed handshake from A to B:port (a real connection). */
function connect(out: Pkt[], t: number, sport: number, port: number): void {
  out.push({ frame: seg(A, B, sport, port, 5000, 0, TCP_SYN), t });
  out.push({ frame: seg(B, A, port, sport, 9000, 5001, TCP_SYN | TCP_ACK), t: t + 0.0001 });
  out.push({ frame: seg(A, B, sport, port, 5001, 9001, TCP_ACK), t: t + 0.0002 });
}

test('a half-open probe of an open port, then a connection to it, is scan-service-probe on the prober', async () => {
  const pkts: Pkt[] = [];
  halfOpen(pkts, 0, 40000, 23);
  connect(pkts, 0.07, 51000, 23);
  const { w, found } = await run(pkts);
  assert.deepEqual(found.map((f) => [f.evidence.kind, f.class, f.host]), [['scan-service-probe', 'Scan', '192.168.1.10']]);
  assert.ok(Math.abs(found[0].tUs - 70_200) < 2, `raised at the completed handshake (${found[0].tUs} µs)`);
  // The half-open probe is also a failed attempt (no session was established).
  assert.equal(w.scan!.probes(ipNum('192.168.1.10'), 100_000), 1);
});

test('no service probe without both halves: a half-open alone, a SYN flood of half-opens, a reset after data, a late follow-up', async () => {
  const alone: Pkt[] = [];
  halfOpen(alone, 0, 40000, 80);
  assert.deepEqual((await run(alone)).found, []);

  // hping3-style flood from a real address: every SYN half-opens the same port, nothing ever completes.
  const flood: Pkt[] = [];
  for (let i = 0; i < 200; i++) halfOpen(flood, i * 0.001, 30000 + i, 80, 100 * i);
  const f = await run(flood);
  assert.equal(f.found.filter((x) => x.evidence.kind === 'scan-service-probe').length, 0);
  assert.equal(f.w.scan!.peak.halfOpen, 200);

  // A session the capture shows without its middle: SYN, SYN-ACK, then the client's RST far past the ISN (it
  // sent data the capture missed), then a new connection to the same port. Not a half-open.
  const cut: Pkt[] = [];
  cut.push({ frame: seg(A, B, 40000, 443, 1000, 0, TCP_SYN), t: 0 });
  cut.push({ frame: seg(B, A, 443, 40000, 7000, 1001, TCP_SYN | TCP_ACK), t: 0.1 });
  cut.push({ frame: seg(A, B, 40000, 443, 41317, 0, TCP_RST), t: 1.4 });
  connect(cut, 2, 40001, 443);
  const c = await run(cut);
  assert.deepEqual(c.found, []);
  assert.equal(c.w.scan!.peak.halfOpen, 0);

  // The follow-up must come within probeFollowMs.
  const late: Pkt[] = [];
  halfOpen(late, 0, 40000, 22);
  connect(late, 30, 51000, 22);
  assert.deepEqual((await run(late, { scan: { probeFollowMs: 10_000 } })).found, []);
  assert.equal((await run(late)).found.length, 1, 'within the default 60 s');
});

test('model gate: a Scan verdict needs an endpoint that probed several targets; group destinations are withheld', async () => {
  // A device retrying a closed port (one refused target) and sending an SSDP NOTIFY to the multicast group.
  const quiet: Pkt[] = [];
  for (let i = 0; i < 5; i++) {
    quiet.push({ frame: syn(A, B, 41000 + i, 80), t: i });
    quiet.push({ frame: rst(B, A, 80, 41000 + i), t: i + 0.001 });
  }
  const group = { mac: mac('01:00:5e:7f:ff:fa'), ip: ip('239.255.255.250') };
  quiet.push({ frame: udpFrame(hop(A, group), { sport: 3085, dport: 1900 }), t: 6 });
  const q = await run(quiet);
  const gate = new ModelGate(q.w);
  assert.equal(gate.passes('Scan', '192.168.1.10', '192.168.1.20'), false, 'one refused target is no scan');
  assert.equal(gate.passes('Mirai', '192.168.1.10', '239.255.255.250'), false, 'a discovery burst to a group');
  assert.equal(gate.passes('Mirai', '192.168.1.10', '192.168.1.20'), true, 'other classes: the model decides');
  assert.equal(gate.passes('Scan', 'fe80::1', 'fe80::2'), true, 'IPv6: the watchers do not read it');
  assert.deepEqual(gate.withheld, { Scan: 1, Mirai: 1 });
  assert.equal(new ModelGate(q.w, { groupVerdicts: true }).passes('Mirai', '192.168.1.10', '239.255.255.250'), true);
  assert.equal(new ModelGate(q.w, { scanNeedsProbes: 0 }).passes('Scan', '192.168.1.10', '192.168.1.20'), true);

  // Refused on 6 ports of 3 hosts: a scan, from either end of its flows.
  const scan: Pkt[] = [];
  for (let i = 0; i < 6; i++) {
    const h = host(10 + (i % 3));
    scan.push({ frame: syn(A, h, 42000, 20 + i), t: i * 0.01 });
    scan.push({ frame: rst(h, A, 20 + i, 42000), t: i * 0.01 + 0.001 });
  }
  const s = await run(scan);
  const g2 = new ModelGate(s.w);
  assert.equal(g2.passes('Scan', '192.168.1.10', '192.168.2.10'), true);
  assert.equal(g2.passes('Scan', '192.168.2.11', '192.168.1.10'), true, 'a target answering the scanner');

  // Flow input: no packets, nothing to corroborate with, the model decides.
  const none = await run([]);
  assert.equal(new ModelGate(none.w).passes('Scan', '192.168.1.10', '192.168.1.20'), true);
});

test('flags: a brute force from a host whose only scan was finding its service is a brute force; a scanning tool stays a scanner', () => {
  const finding = (kind: string, cls: string, h: string, tUs: number): Finding =>
    ({ class: cls, host: h, role: 'source', tUs, evidence: { kind: kind as never, ip: h, macs: [], detail: '' } });
  const flags = new HostFlags();
  flags.add(finding('scan-service-probe', 'Scan', '10.0.0.1', 1e6), 1);
  assert.equal(flags.add(finding('brute-force', 'Mirai', '10.0.0.1', 2e6), 2), 'Mirai');
  assert.equal(flags.forFlow('10.0.0.1', '10.0.0.2', 3)?.class, 'Mirai');

  flags.add(finding('scan-service-probe', 'Scan', '10.0.0.5', 1e6), 1);
  flags.add(finding('scan-odd-flags', 'Scan', '10.0.0.5', 1.5e6), 1);
  assert.equal(flags.add(finding('brute-force', 'Mirai', '10.0.0.5', 2e6), 2), 'Scan', 'nmap -A: OS probes, then scripts');
  assert.equal(flags.forFlow('10.0.0.5', '10.0.0.2', 3)?.class, 'Scan');
});
