/**
 * The MITM relay (arpspoof/ettercap with IP forwarding on): once victim and gateway are poisoned, every frame
 * between them reaches the attacker's MAC first and is forwarded to the real destination with the attacker's
 * source MAC, the TTL decremented and a small forwarding delay (the packet crosses the air twice).
 */
import { arpFrame, ARP_REPLY } from '../capture/frames.ts';
import { internetChecksum } from '../capture/decode.ts';
import type { Rng } from '../shared/random.ts';
import { ATTACKER } from './network.ts';
import { FrameList, type Sink } from './wire.ts';

const sameMac = (f: Uint8Array, at: number, mac: Uint8Array) =>
  f[at] === mac[0] && f[at + 1] === mac[1] && f[at + 2] === mac[2] && f[at + 3] === mac[3] && f[at + 4] === mac[4] && f[at + 5] === mac[5];

const isIp = (f: Uint8Array) => (f[12] === 0x08 && f[13] === 0x00) || (f[12] === 0x86 && f[13] === 0xdd);

/** Forwarded copy: new MACs, TTL (hop limit) − 1, IPv4 header checksum recomputed. */
function forwarded(frame: Uint8Array, srcMac: Uint8Array, dstMac: Uint8Array): Uint8Array {
  const f = frame.slice();
  f.set(dstMac, 0);
  f.set(srcMac, 6);
  if (f[12] === 0x08 && f[13] === 0x00 && f.length >= 34) {
    f[22] = Math.max(0, f[22] - 1);
    f[24] = f[25] = 0;
    const c = internetChecksum(f, 14, 14 + (f[14] & 15) * 4);
    f[24] = c >> 8;
    f[25] = c & 255;
  } else if (f[12] === 0x86 && f[13] === 0xdd && f.length >= 22) {
    f[21] = Math.max(0, f[21] - 1);
  }
  return f;
}

/**
 * Wraps a sink: IP frames between `victimMac` and `gatewayMac` go through the attacker; other IP frames are dropped
 * and non-IP frames (ARP) pass. The wrapped sink feeds a pcap whose every flow is labelled MITM, and a flow the
 * relay never touched (multicast, IGMP, LAN sessions, other devices of a replayed capture) is plain Normal traffic:
 * kept, it taught the model that ordinary real traffic is MITM (on held-out benign devices, IGMP flows were called
 * MITM 29 % of the time).
 */
export class RelaySink implements Sink {
  relayed = 0;
  /** IP frames not between victim and gateway, left out. */
  dropped = 0;
  constructor(
    private readonly sink: Sink,
    private readonly rng: Rng,
    private readonly victimMac: Uint8Array,
    private readonly gatewayMac: Uint8Array,
  ) {}

  push(t: number, frame: Uint8Array, wireLen?: number): void {
    const up = sameMac(frame, 6, this.victimMac) && sameMac(frame, 0, this.gatewayMac);
    const down = sameMac(frame, 0, this.victimMac) && sameMac(frame, 6, this.gatewayMac);
    if (!isIp(frame)) {
      this.sink.push(t, frame, wireLen);
      return;
    }
    if (!up && !down) {
      this.dropped++;
      return;
    }
    const leg1 = frame.slice();
    leg1.set(ATTACKER.mac, 0);
    this.sink.push(t, leg1, wireLen);
    const delay = 300 + this.rng.exp(1_500);
    this.sink.push(t + delay, forwarded(frame, ATTACKER.mac, up ? this.gatewayMac : this.victimMac), wireLen);
    this.relayed++;
  }
}

/** Unsolicited ARP replies to both victims, every 1 or 2 s (jittered), from `fromUs` until past `toUs`. */
export function poison(sink: Sink, rng: Rng, v: { mac: Uint8Array; ip: Uint8Array }, g: { mac: Uint8Array; ip: Uint8Array }, fromUs: number, toUs: number): void {
  const interval = rng.next() < 0.5 ? 2_000_000 : 1_000_000;
  for (let t = fromUs; t < toUs + interval; t += interval * (0.98 + 0.04 * rng.next())) {
    sink.push(t, arpFrame({ op: ARP_REPLY, senderMac: ATTACKER.mac, senderIp: g.ip, targetMac: v.mac, targetIp: v.ip }));
    sink.push(t + 20, arpFrame({ op: ARP_REPLY, senderMac: ATTACKER.mac, senderIp: v.ip, targetMac: g.mac, targetIp: g.ip }));
  }
}

function mostCommon(counts: Map<string, number>): string | undefined {
  let best: string | undefined;
  let n = 0;
  for (const [k, c] of counts) if (c > n || (c === n && best !== undefined && k < best)) [best, n] = [k, c];
  return best;
}

const hexOf = (f: Uint8Array, at: number, len: number) => Buffer.from(f.subarray(at, at + len)).toString('hex');

/** How much of a replayed capture one MITM episode covers (attacks last minutes, captures up to a day). */
const EPISODE_US = 15 * 60_000_000;
/** arpspoof is restarted for traffic after a pause longer than this; no poisoning through long silences. */
const POISON_GAP_US = 60_000_000;

/**
 * Puts a replayed real capture under MITM: the victim is the MAC sending the most IPv4 packets from a lab
 * (192.168.50/24) address, the gateway the MAC it sends most to (its router). One episode of at most 15 minutes,
 * starting at a random packet of the victim, is kept. Returns null when there is no victim/gateway pair.
 */
export function relayCapture(list: FrameList, rng: Rng): { frames: FrameList; relayed: number } | null {
  const srcCount = new Map<string, number>();
  const fromLab = (f: Uint8Array) => f.length >= 34 && f[12] === 0x08 && f[13] === 0x00 && f[26] === 192 && f[27] === 168 && f[28] === 50;
  for (const f of list.frames) if (fromLab(f)) srcCount.set(hexOf(f, 6, 6), (srcCount.get(hexOf(f, 6, 6)) ?? 0) + 1);
  const victim = mostCommon(srcCount);
  if (!victim) return null;
  const dstCount = new Map<string, number>();
  const ipCount = new Map<string, number>();
  const victimTimes: number[] = [];
  for (let i = 0; i < list.frames.length; i++) {
    const f = list.frames[i];
    if (!fromLab(f) || hexOf(f, 6, 6) !== victim || f[0] & 1) continue;
    dstCount.set(hexOf(f, 0, 6), (dstCount.get(hexOf(f, 0, 6)) ?? 0) + 1);
    ipCount.set(hexOf(f, 26, 4), (ipCount.get(hexOf(f, 26, 4)) ?? 0) + 1);
    victimTimes.push(list.times[i]);
  }
  const gateway = mostCommon(dstCount);
  const victimIp = mostCommon(ipCount);
  if (!gateway || !victimIp) return null;
  const v = { mac: new Uint8Array(Buffer.from(victim, 'hex')), ip: new Uint8Array(Buffer.from(victimIp, 'hex')) };
  const g = { mac: new Uint8Array(Buffer.from(gateway, 'hex')), ip: Uint8Array.of(v.ip[0], v.ip[1], v.ip[2], 1) };
  const from = rng.pick(victimTimes);
  const to = from + EPISODE_US;
  const out = new FrameList();
  const relay = new RelaySink(out, rng, v.mac, g.mac);
  const active: number[] = [];
  for (const i of list.order()) {
    const t = list.times[i];
    if (t < from || t > to) continue;
    const before = relay.relayed;
    relay.push(t, list.frames[i], list.wires[i]);
    if (relay.relayed > before) active.push(t);
  }
  if (active.length === 0) return null;
  // Poison through each stretch of relayed traffic (gaps up to a minute), starting 3 s before it.
  let start = active[0];
  for (let k = 1; k <= active.length; k++) {
    if (k === active.length || active[k] - active[k - 1] > POISON_GAP_US) {
      poison(out, rng, v, g, start - 3_000_000, active[k - 1]);
      if (k < active.length) start = active[k];
    }
  }
  return { frames: out, relayed: relay.relayed };
}
