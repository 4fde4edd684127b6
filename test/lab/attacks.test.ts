import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { verifyChecksums } from '../../capture/decode.ts';
import { TCP_ACK, TCP_RST, TCP_SYN } from '../../capture/frames.ts';
import { Rng } from '../../shared/random.ts';
import { dosSynFlood } from '../../lab/attacks/dos.ts';
import { miraiAckFlood, miraiBruteforce, miraiHttpFlood, miraiUdpFlood } from '../../lab/attacks/mirai.ts';
import { mitmArpSpoofing } from '../../lab/attacks/mitm.ts';
import { scanHostPort, scanPortOs } from '../../lab/attacks/scan.ts';
import type { TrafficGenerator } from '../../lab/attacks/types.ts';
import { ATTACKER, GATEWAY } from '../../lab/network.ts';
import { FrameList, PayloadPool } from '../../lab/wire.ts';

interface Pkt {
  t: number;
  f: Uint8Array;
  srcMac: string;
  dstMac: string;
  etherType: number;
  ttl: number;
  proto: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payload: Uint8Array;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function decode(t: number, f: Uint8Array): Pkt {
  const d = Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  const p: Pkt = { t, f, srcMac: hex(f.subarray(6, 12)), dstMac: hex(f.subarray(0, 6)), etherType: d.readUInt16BE(12), ttl: 0, proto: 0, src: '', dst: '', sport: 0, dport: 0, seq: 0, ack: 0, flags: 0, window: 0, payload: new Uint8Array(0) };
  if (p.etherType !== 0x0800) return p;
  const ihl = (f[14] & 15) * 4;
  const total = d.readUInt16BE(16);
  p.ttl = f[22];
  p.proto = f[23];
  p.src = f.subarray(26, 30).join('.');
  p.dst = f.subarray(30, 34).join('.');
  const l4 = 14 + ihl;
  if (p.proto === 6 || p.proto === 17) {
    p.sport = d.readUInt16BE(l4);
    p.dport = d.readUInt16BE(l4 + 2);
  }
  if (p.proto === 6) {
    p.seq = d.readUInt32BE(l4 + 4);
    p.ack = d.readUInt32BE(l4 + 8);
    p.flags = f[l4 + 13];
    p.window = d.readUInt16BE(l4 + 14);
    p.payload = f.subarray(l4 + (f[l4 + 12] >> 4) * 4, 14 + total);
  } else if (p.proto === 17) {
    p.payload = f.subarray(l4 + 8, 14 + total);
  }
  return p;
}

function run(gen: TrafficGenerator, units: number, seed = 5): Pkt[] {
  const rng = new Rng(seed);
  const sink = new FrameList();
  gen({ rng, pool: new PayloadPool(rng), sink }, 1_767_600_000_000_000, units);
  const order = sink.order();
  return Array.from(order, (i) => decode(sink.times[i], sink.frames[i]));
}

const digest = (pkts: Pkt[]) => {
  const h = createHash('sha256');
  for (const p of pkts) h.update(String(p.t)).update(p.f);
  return h.digest('hex');
};

const GENERATORS: [string, TrafficGenerator][] = [
  ['mirai brute force', miraiBruteforce], ['mirai udp', miraiUdpFlood], ['mirai ack', miraiAckFlood], ['mirai http', miraiHttpFlood],
  ['dos syn', dosSynFlood], ['scan host-port', scanHostPort], ['scan port-os', scanPortOs], ['mitm', mitmArpSpoofing],
];

test('every generator: valid checksums, time order, deterministic for a seed, different for another', () => {
  for (const [name, gen] of GENERATORS) {
    const a = run(gen, 150);
    assert.ok(a.length > 150, `${name}: ${a.length} packets`);
    for (const p of a) {
      const c = verifyChecksums(p.f);
      assert.ok(c.ip && c.l4 !== false, `${name}: bad checksum in ${hex(p.f).slice(0, 80)}`);
    }
    for (let i = 1; i < a.length; i++) assert.ok(a[i].t >= a[i - 1].t, `${name}: time runs back at ${i}`);
    assert.equal(digest(run(gen, 150)), digest(a), `${name}: not deterministic`);
    assert.notEqual(digest(run(gen, 150, 6)), digest(a), `${name}: seed ignored`);
  }
});

test('Mirai scanner: SYN sequence number = target address, port 23 nine times in ten, then telnet logins from its table', () => {
  const pkts = run(miraiBruteforce, 400);
  const scans = pkts.filter((p) => p.flags === TCP_SYN && p.window !== 64240 && (p.dport === 23 || p.dport === 2323));
  assert.ok(scans.length > 300);
  for (const p of scans) assert.equal(p.seq, p.f.subarray(30, 34).reduce((a, b) => a * 256 + b, 0));
  const share23 = scans.filter((p) => p.dport === 23).length / scans.length;
  assert.ok(share23 > 0.82 && share23 < 0.97, `port 23 share ${share23}`);
  const text = pkts.filter((p) => p.proto === 6).map((p) => Buffer.from(p.payload).toString('latin1')).join('');
  assert.match(text, /login: /);
  assert.match(text, /Password: /);
  assert.match(text, /root\r\n|admin\r\n/);
});

test('TCP state: handshakes, acknowledgements and sequence numbers follow each other (HTTP flood)', () => {
  const pkts = run(miraiHttpFlood, 60);
  const conns = new Map<string, Pkt[]>();
  for (const p of pkts) {
    if (p.proto !== 6) continue;
    const key = p.dport === 80 ? `${p.src}:${p.sport}` : `${p.dst}:${p.dport}`;
    conns.set(key, [...(conns.get(key) ?? []), p]);
  }
  assert.ok(conns.size >= 60);
  let gets = 0;
  for (const [key, c] of conns) {
    const [syn, synAck, ack] = c;
    assert.equal(syn.flags, TCP_SYN, key);
    if (synAck.flags & TCP_RST) continue;
    assert.equal(synAck.flags, TCP_SYN | TCP_ACK, key);
    assert.equal(synAck.ack, (syn.seq + 1) >>> 0, key);
    assert.equal(ack.ack, (synAck.seq + 1) >>> 0, key);
    // Every client segment starts where the previous one ended.
    let next = (syn.seq + 1) >>> 0;
    for (const p of c.filter((x) => x.dport === 80).slice(1)) {
      assert.equal(p.seq, next, key);
      next = (next + p.payload.length + (p.flags & 1 ? 1 : 0)) >>> 0;
      if (Buffer.from(p.payload).toString('latin1').startsWith('GET ')) gets++;
    }
  }
  assert.ok(gets >= 60, `${gets} GETs`);
});

test('ACK flood: 512-byte random payloads answered by RST with seq = the stray ACK number', () => {
  const pkts = run(miraiAckFlood, 300);
  const acks = pkts.filter((p) => p.flags === TCP_ACK);
  assert.ok(acks.every((p) => p.payload.length === 512));
  const rsts = pkts.filter((p) => p.flags === TCP_RST);
  assert.ok(rsts.length > acks.length * 0.8);
  const byTuple = new Map(acks.map((p) => [`${p.src}:${p.sport}>${p.dst}:${p.dport}`, p]));
  for (const r of rsts) assert.equal(byTuple.get(`${r.dst}:${r.dport}>${r.src}:${r.sport}`)?.ack, r.seq);
});

test('hping3 SYN flood: window 64, no options, source port incrementing', () => {
  const syns = run(dosSynFlood, 300).filter((p) => p.flags === TCP_SYN);
  assert.ok(syns.length >= 300);
  assert.ok(syns.every((p) => p.window === 64 && p.payload.length === 0 && p.f[14 + 20 + 12] >> 4 === 5));
  let inc = 0;
  for (let i = 1; i < syns.length; i++) if (syns[i].sport === syns[i - 1].sport + 1) inc++;
  assert.ok(inc > syns.length * 0.9);
});

test('nmap OS detection: the six SEQ probe windows, U1 answered by port unreachable, IE echoes with code 9', () => {
  const pkts = run(scanPortOs, 150);
  const fromAttacker = pkts.filter((p) => p.src === ATTACKER.ip.join('.'));
  const wins = fromAttacker.filter((p) => p.flags === TCP_SYN).map((p) => p.window);
  const seqWindows = [1, 63, 4, 4, 16, 512];
  const at = wins.findIndex((_, i) => seqWindows.every((w, k) => wins[i + k] === w));
  assert.ok(at >= 0, 'SEQ probes in order');
  assert.ok(fromAttacker.some((p) => p.proto === 17 && p.payload.length === 300 && p.payload.every((b) => b === 0x43)));
  assert.ok(pkts.some((p) => p.proto === 1 && p.f[34] === 3 && p.f[35] === 3), 'ICMP port unreachable');
  assert.ok(fromAttacker.some((p) => p.proto === 1 && p.f[34] === 8 && p.f[35] === 9), 'IE probe, code 9');
});

test('MITM: every relayed packet crosses twice, the second time from the attacker with TTL − 1 and a small delay', () => {
  const pkts = run(mitmArpSpoofing, 80);
  const attacker = hex(ATTACKER.mac);
  const gateway = hex(GATEWAY.mac);
  const ip = pkts.filter((p) => p.etherType === 0x0800);
  const leg1 = ip.filter((p) => p.dstMac === attacker);
  const leg2 = ip.filter((p) => p.srcMac === attacker);
  assert.ok(leg1.length > 200);
  assert.equal(leg2.length, leg1.length);
  const key = (p: Pkt) => `${p.src}>${p.dst}:${p.sport}>${p.dport}:${p.f[18]},${p.f[19]}`; // 5-tuple + IP id
  const second = new Map(leg2.map((p) => [key(p), p]));
  for (const p of leg1) {
    const q = second.get(key(p));
    assert.ok(q, `no forwarded copy of ${key(p)}`);
    assert.equal(q.ttl, p.ttl - 1);
    assert.ok(q.t > p.t && q.t - p.t < 50_000, `delay ${q.t - p.t} µs`);
    assert.ok(q.dstMac === gateway || p.srcMac === gateway);
  }
  const arps = pkts.filter((p) => p.etherType === 0x0806);
  assert.ok(arps.length >= 10, 'poisoning replies throughout');
});
