/**
 * nmap-style scans from the attacker laptop.
 * - Host/port scan (`nmap -sS`): ARP (and sometimes ICMP echo) host discovery across the subnet, then SYNs from one
 *   source port to many ports of each live host; closed ports answer RST-ACK, open ports SYN-ACK, which the
 *   scanner's kernel resets.
 * - Port + OS scan (`nmap -O`): a shorter SYN scan, then nmap's OS probes: six SEQ SYNs with distinct options and
 *   windows to an open port, the ECN probe, T2-T7 with odd flag sets to open and closed ports, U1 (UDP to a closed
 *   port, answered by ICMP port unreachable) and two IE ICMP echoes.
 */
import {
  arpFrame, ARP_REPLY, ARP_REQUEST, icmpFrame, ipv4FromInt, ipv4ToInt, mssOption, quoteForIcmpError, tcpFrame, udpFrame,
  TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG,
} from '../../capture/frames.ts';
import { ATTACKER, GATEWAY, LAN_HOSTS, hop, type Host } from '../network.ts';
import type { GenContext } from './types.ts';

/** nmap's most common TCP ports (the head of nmap-services by frequency). */
const TOP_PORTS = [
  80, 23, 443, 21, 22, 25, 3389, 110, 445, 139, 143, 53, 135, 3306, 8080, 1723, 111, 995, 993, 5900, 1025, 587, 8888,
  199, 1720, 465, 548, 113, 81, 6001, 10000, 514, 5060, 179, 1026, 2000, 8443, 8000, 32768, 554, 26, 1433, 49152, 2001,
  515, 8008, 49154, 1027, 5666, 646, 5000, 5631, 631, 49153, 8081, 2049, 88, 79, 5800, 106, 2121, 1110, 49155, 6000,
  513, 990, 5357, 427, 49156, 543, 544, 5101, 144, 7, 389, 8009, 3128, 444, 9999, 5009, 7070, 5190, 3000, 5432, 1900,
  3986, 13, 1029, 9, 5051, 6646, 49157, 1028, 873, 1755, 2717, 4899, 9100, 119, 37, 1883, 8899, 9020, 10101, 2323,
];

function randomPorts(ctx: GenContext, n: number): number[] {
  const ports = new Set<number>(TOP_PORTS.slice(0, Math.min(n, TOP_PORTS.length)));
  while (ports.size < n) ports.add(ctx.rng.int(1, 65536));
  return ctx.rng.shuffle([...ports]);
}

/** One SYN probe and the target's answer; returns the time of the last packet. */
function synProbe(ctx: GenContext, target: Host, sport: number, dport: number, t: number, window = 1024, flags = TCP_SYN, options = mssOption(1460)): number {
  const { rng, sink } = ctx;
  const seq = rng.int(0, 2 ** 31) * 2;
  sink.push(t, tcpFrame({ ...hop(ATTACKER, target, rng.int(0, 65536)), ttl: rng.int(37, 60), df: false }, { sport, dport, seq, ack: 0, flags, window, options }));
  const tr = t + 1_200 + rng.exp(1_500);
  if (target.open.includes(dport) && flags & TCP_SYN) {
    sink.push(tr, tcpFrame(hop(target, ATTACKER, rng.int(0, 65536)), { sport: dport, dport: sport, seq: rng.int(0, 2 ** 31), ack: (seq + 1) >>> 0, flags: TCP_SYN | TCP_ACK, window: 29200, options: mssOption(1460) }));
    sink.push(tr + 50, tcpFrame(hop(ATTACKER, target, 0), { sport, dport, seq: (seq + 1) >>> 0, ack: 0, flags: TCP_RST, window: 0 }));
    return tr + 50;
  }
  if (flags === 0 && target.open.includes(dport)) return t; // Linux drops a null-flag probe to an open port
  const rstFlags = flags & TCP_ACK ? TCP_RST : TCP_RST | TCP_ACK;
  sink.push(tr, tcpFrame(hop(target, ATTACKER, 0), { sport: dport, dport: sport, seq: 0, ack: (seq + 1) >>> 0, flags: rstFlags, window: 0 }));
  return tr;
}

/** ARP sweep of the /24: who-has for every address, is-at from the live hosts. */
function arpSweep(ctx: GenContext, t: number): number {
  const { rng, sink } = ctx;
  const base = ipv4ToInt(GATEWAY.ip) & 0xffffff00;
  for (let i = 1; i < 255; i++) {
    const addr = ipv4FromInt(base + i);
    t += 300 + rng.exp(300);
    sink.push(t, arpFrame({ op: ARP_REQUEST, senderMac: ATTACKER.mac, senderIp: ATTACKER.ip, targetIp: addr }));
    const live = LAN_HOSTS.find((h) => h !== ATTACKER && h.ip[3] === i);
    if (live) sink.push(t + 500 + rng.exp(1_000), arpFrame({ op: ARP_REPLY, senderMac: live.mac, senderIp: live.ip, targetMac: ATTACKER.mac, targetIp: ATTACKER.ip }));
  }
  return t;
}

function pingSweep(ctx: GenContext, t: number): number {
  const { rng, sink } = ctx;
  const id = rng.int(0, 65536);
  for (const h of LAN_HOSTS) {
    if (h === ATTACKER) continue;
    t += 1_000 + rng.exp(1_000);
    sink.push(t, icmpFrame({ ...hop(ATTACKER, h, rng.int(0, 65536)), ttl: rng.int(37, 60) }, { type: 8, code: 0, rest: (id << 16) | 0 }));
    sink.push(t + 1_500 + rng.exp(1_000), icmpFrame(hop(h, ATTACKER, rng.int(0, 65536)), { type: 0, code: 0, rest: (id << 16) | 0 }));
  }
  return t;
}

export function scanHostPort(ctx: GenContext, startUs: number, units: number): number {
  const { rng } = ctx;
  let t = startUs;
  let end = t;
  let flows = 0;
  while (flows < units) {
    t = arpSweep(ctx, t);
    if (rng.next() < 0.4) {
      t = pingSweep(ctx, t);
      flows += LAN_HOSTS.length - 1;
    }
    const targets = rng.shuffle(LAN_HOSTS.filter((h) => h !== ATTACKER)).slice(0, rng.int(1, 5));
    for (const target of targets) {
      const sport = rng.int(32768, 65536);
      const n = Math.min(Math.max(units - flows, 50), rng.pick([100, 1000, 1000, 2000]));
      for (const dport of randomPorts(ctx, n)) {
        t += 80 + rng.exp(250); // -T4: many probes in flight
        end = Math.max(end, synProbe(ctx, target, sport, dport, t));
        flows++;
      }
    }
    t = Math.max(t, end) + rng.exp(30_000_000);
  }
  return Math.max(t, end);
}

const nop = 1;
const eol = 0;
const mss = (v: number) => [2, 4, v >> 8, v & 255];
const ws = (v: number) => [3, 3, v];
const sackOk = [4, 2];
const ts = (v: number) => [8, 10, (v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255, 0, 0, 0, 0];
const opts = (...parts: (number | number[])[]) => Uint8Array.from(parts.flat());

/** nmap's six SEQ probes: window and option layout per probe (nmap OS detection documentation). */
const SEQ_PROBES: [number, Uint8Array][] = [
  [1, opts(ws(10), nop, mss(1460), ts(0xffffffff), sackOk)],
  [63, opts(mss(1400), ws(0), sackOk, ts(0xffffffff), eol)],
  [4, opts(ts(0xffffffff), nop, nop, ws(5), nop, mss(640))],
  [4, opts(sackOk, ts(0xffffffff), ws(10), eol)],
  [16, opts(mss(536), sackOk, ts(0xffffffff), ws(10), eol)],
  [512, opts(mss(265), sackOk, ts(0xffffffff))],
];
const T_OPTS = opts(ws(10), nop, mss(265), ts(0xffffffff), sackOk);

export function scanPortOs(ctx: GenContext, startUs: number, units: number): number {
  const { rng, sink } = ctx;
  let t = startUs;
  let end = t;
  let flows = 0;
  while (flows < units) {
    const target = rng.pick(LAN_HOSTS.filter((h) => h !== ATTACKER && h.open.length > 0));
    let sport = rng.int(32768, 65000);
    for (const dport of randomPorts(ctx, rng.pick([100, 100, 300]))) {
      t += 100 + rng.exp(400);
      end = Math.max(end, synProbe(ctx, target, sport, dport, t));
      flows++;
    }
    t = Math.max(t, end) + 200_000;
    const open = rng.pick(target.open);
    let closed = rng.int(30000, 40000);
    while (target.open.includes(closed)) closed++;
    for (let round = rng.int(1, 3); round > 0; round--) {
      for (const [win, o] of SEQ_PROBES) {
        sport++;
        end = Math.max(end, synProbe(ctx, target, sport, open, t, win, TCP_SYN, o));
        t += 100_000; // nmap sends the SEQ probes 100 ms apart
        flows++;
      }
      const probes: [number, number, number][] = [
        [open, TCP_SYN | TCP_ECE | TCP_CWR, 3], // ECN
        [open, 0, 128], // T2
        [open, TCP_SYN | TCP_FIN | TCP_URG | TCP_PSH, 256], // T3
        [open, TCP_ACK, 1024], // T4
        [closed, TCP_SYN, 31337], // T5
        [closed, TCP_ACK, 32768], // T6
        [closed, TCP_FIN | TCP_PSH | TCP_URG, 65535], // T7
      ];
      for (const [dport, flags, win] of probes) {
        sport++;
        t += 5_000 + rng.exp(5_000);
        end = Math.max(end, synProbe(ctx, target, sport, dport, t, win, flags, T_OPTS));
        flows++;
      }
      // U1: 300 bytes of 'C' to a closed UDP port; the answer quotes it in ICMP port unreachable.
      t += 5_000;
      const u1 = udpFrame({ ...hop(ATTACKER, target, 0x1042), ttl: rng.int(37, 60) }, { sport: ++sport, dport: closed, payload: new Uint8Array(300).fill(0x43) });
      sink.push(t, u1);
      sink.push(t + 1_500, icmpFrame(hop(target, ATTACKER, rng.int(0, 65536)), { type: 3, code: 3, rest: 0, payload: quoteForIcmpError(u1) }));
      // IE: two echo requests, code 9, 120 and 150 zero bytes.
      const id = rng.int(0, 65536);
      for (const [k, len] of [[295, 120], [296, 150]]) {
        t += 2_000;
        sink.push(t, icmpFrame({ ...hop(ATTACKER, target, rng.int(0, 65536)), df: true }, { type: 8, code: 9, rest: (id << 16) | k, payload: new Uint8Array(len) }));
        sink.push(t + 1_200, icmpFrame(hop(target, ATTACKER, rng.int(0, 65536)), { type: 0, code: 0, rest: (id << 16) | k, payload: new Uint8Array(len) }));
      }
      flows += 2;
      t += 500_000;
    }
    t = Math.max(t, end) + rng.exp(20_000_000);
  }
  return Math.max(t, end);
}
