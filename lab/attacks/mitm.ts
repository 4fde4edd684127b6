/**
 * MITM by ARP spoofing (arpspoof/ettercap style): the attacker tells the victim that the gateway's IP is at its
 * MAC and the gateway that the victim's IP is, with unsolicited ARP replies every second or two, and forwards
 * what it receives. Every victim packet then crosses the air twice: victim → attacker MAC, then attacker →
 * real next hop with the TTL decremented and a small forwarding delay. A flow meter sees each packet of the
 * victim's ordinary sessions (cloud TLS, DNS, NTP, vendor UDP heartbeats) twice.
 */
import { arpFrame, ARP_REPLY, udpFrame } from '../../capture/frames.ts';
import { internetChecksum } from '../../capture/decode.ts';
import type { Rng } from '../../shared/random.ts';
import { ATTACKER, GATEWAY, VICTIMS, hop, internetHost, type Host } from '../network.ts';
import { TcpConn, ephemeralPort, type Sink } from '../wire.ts';
import { after, type GenContext } from './types.ts';

const sameMac = (f: Uint8Array, at: number, mac: Uint8Array) =>
  f[at] === mac[0] && f[at + 1] === mac[1] && f[at + 2] === mac[2] && f[at + 3] === mac[3] && f[at + 4] === mac[4] && f[at + 5] === mac[5];

/** Forwarded copy: new MACs, TTL − 1, IPv4 header checksum recomputed. */
function forwarded(frame: Uint8Array, srcMac: Uint8Array, dstMac: Uint8Array): Uint8Array {
  const f = frame.slice();
  f.set(dstMac, 0);
  f.set(srcMac, 6);
  if (f[12] === 0x08 && f[13] === 0x00) {
    f[22] = Math.max(0, f[22] - 1);
    f[24] = f[25] = 0;
    const c = internetChecksum(f, 14, 14 + (f[14] & 15) * 4);
    f[24] = c >> 8;
    f[25] = c & 255;
  }
  return f;
}

/** Puts the attacker in the path of every frame between the victim and the gateway. */
class RelaySink implements Sink {
  constructor(
    private readonly sink: Sink,
    private readonly rng: Rng,
    private readonly victim: Host,
  ) {}

  push(t: number, frame: Uint8Array): void {
    const delay = 300 + this.rng.exp(1_500);
    if (sameMac(frame, 6, this.victim.mac)) {
      const leg1 = frame.slice();
      leg1.set(ATTACKER.mac, 0);
      this.sink.push(t, leg1);
      this.sink.push(t + delay, forwarded(frame, ATTACKER.mac, GATEWAY.mac));
    } else if (sameMac(frame, 0, this.victim.mac) && sameMac(frame, 6, GATEWAY.mac)) {
      const leg1 = frame.slice();
      leg1.set(ATTACKER.mac, 0);
      this.sink.push(t, leg1);
      this.sink.push(t + delay, forwarded(frame, ATTACKER.mac, this.victim.mac));
    } else {
      this.sink.push(t, frame);
    }
  }
}

/** One ordinary session of an IoT device; returns its end time. */
function deviceSession(ctx: GenContext, sink: Sink, victim: Host, t: number): number {
  const { rng, pool } = ctx;
  const kind = rng.next();
  if (kind < 0.45) {
    const cloud = internetHost(rng, [443, 8883]);
    const c = new TcpConn(sink, rng, victim, cloud, ephemeralPort(rng), rng.next() < 0.8 ? 443 : 8883, t, { rttUs: 25_000 + rng.exp(30_000) });
    c.handshake();
    c.clientSends(pool.random(rng, 517)); // ClientHello
    c.wait(rng.exp(5_000));
    c.serverSends(pool.random(rng, rng.int(2_800, 4_600))); // ServerHello, certificate
    c.clientSends(pool.random(rng, 126));
    c.serverSends(pool.random(rng, 51));
    for (let k = rng.int(1, 8); k > 0; k--) {
      c.wait(rng.exp(1_500_000));
      c.clientSends(pool.random(rng, rng.int(60, 700)));
      c.wait(rng.exp(20_000));
      c.serverSends(pool.random(rng, rng.int(40, 2_000)));
    }
    c.wait(rng.exp(500_000));
    c.close(rng.next() < 0.6);
    return c.t;
  }
  if (kind < 0.75) {
    // DNS through the gateway's resolver.
    const sport = ephemeralPort(rng);
    const q = pool.random(rng, rng.int(28, 60));
    sink.push(t, udpFrame(hop(victim, GATEWAY, rng.int(0, 65536)), { sport, dport: 53, payload: q }));
    const tr = t + 4_000 + rng.exp(25_000);
    sink.push(tr, udpFrame(hop(GATEWAY, victim, rng.int(0, 65536)), { sport: 53, dport: sport, payload: pool.random(rng, q.length + rng.int(16, 140)) }));
    return tr;
  }
  if (kind < 0.85) {
    const server = internetHost(rng, []);
    const sport = rng.next() < 0.5 ? 123 : ephemeralPort(rng);
    sink.push(t, udpFrame(hop(victim, server, rng.int(0, 65536)), { sport, dport: 123, payload: pool.random(rng, 48) }));
    const tr = t + 20_000 + rng.exp(40_000);
    sink.push(tr, udpFrame(hop(server, victim, rng.int(0, 65536)), { sport: 123, dport: sport, payload: pool.random(rng, 48) }));
    return tr;
  }
  // Vendor heartbeat over UDP (the IoTID20 devices' 8899/9020/10101 traffic).
  const server = internetHost(rng, []);
  const dport = rng.pick([8899, 9020, 10101]);
  const sport = ephemeralPort(rng);
  let tt = t;
  for (let k = rng.int(2, 12); k > 0; k--) {
    sink.push(tt, udpFrame(hop(victim, server, rng.int(0, 65536)), { sport, dport, payload: pool.random(rng, rng.int(20, 80)) }));
    if (rng.next() < 0.7) sink.push(tt + 30_000 + rng.exp(20_000), udpFrame(hop(server, victim, rng.int(0, 65536)), { sport: dport, dport: sport, payload: pool.random(rng, 32) }));
    tt += 100_000 + rng.exp(400_000);
  }
  return tt;
}

export function mitmArpSpoofing(ctx: GenContext, startUs: number, units: number): number {
  const { rng, sink } = ctx;
  const victim = rng.pick(VICTIMS);
  const relay = new RelaySink(sink, rng, victim);
  let t = startUs + 2_000_000;
  let end = t;
  for (let i = 0; i < units; i++) {
    t = after(rng, t, 250_000);
    end = Math.max(end, deviceSession(ctx, relay, victim, t));
  }
  // Poisoning from before the first relayed packet to after the last: both directions, ~every 1-2 s.
  const interval = rng.next() < 0.5 ? 2_000_000 : 1_000_000;
  for (let tp = startUs; tp < end + interval; tp += interval * (0.98 + 0.04 * rng.next())) {
    sink.push(tp, arpFrame({ op: ARP_REPLY, senderMac: ATTACKER.mac, senderIp: GATEWAY.ip, targetMac: victim.mac, targetIp: victim.ip }));
    sink.push(tp + 20, arpFrame({ op: ARP_REPLY, senderMac: ATTACKER.mac, senderIp: victim.ip, targetMac: GATEWAY.mac, targetIp: GATEWAY.ip }));
  }
  return end;
}
