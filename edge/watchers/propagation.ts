/**
 * Propagation watcher: an infected device spreading. Mirai and its descendants SYN pseudo-random Internet
 * addresses on telnet (23, 2323) and SSH (22, 2222) and log in wherever one answers; a device that does this is
 * itself compromised. Per source: distinct non-private destinations sent a SYN on those ports, in a short and a long
 * window. No legitimate device opens login sessions to many Internet hosts; an administrator's SSH client reaches a
 * few known servers.
 *
 * Finding (class Mirai, role source): `propagation` at `hosts` distinct destinations in the short window (default 8
 * in 60 s: Mirai's scanner sends ~160 SYNs/s, so it passes 8 in well under a second) or `slowHosts` in the long one
 * (default 20 in 15 min, for throttled bots) — when the scan is a bot's: most of its login-port SYNs carry Mirai's
 * fingerprint (sequence number = the target's address), or it probes almost nothing but login ports (fewer than
 * 1 SYN to another port per 10). A general scanner sweeping the Internet on a port list (masscan -p 22,23,80,8080)
 * is left to the scan watcher, which reports it as Scan.
 */
import type { PacketView } from './packet-view.ts';
import { KIND_IPV4, PROTO_TCP, TCP_ACK, TCP_SYN, ipText, isPrivate } from './packet-view.ts';
import { HostTable, addDistinct, distinctEstimate, mix3 } from './host-table.ts';
import { type Finding, MIRAI, Reporter } from './finding.ts';

export interface PropagationOptions {
  ports?: number[];
  hosts?: number;
  windowMs?: number;
  slowHosts?: number;
  slowWindowMs?: number;
  maxSources?: number;
  reportEveryMs?: number;
}

const BITS = 256;
const N_LOGIN = 6, N_PRINT = 7, N_OTHER = 8, NUMS = 9;
const WORDS = BITS / 32;

export class PropagationWatcher {
  private readonly ports: Uint8Array = new Uint8Array(65536);
  private readonly table: HostTable;
  private readonly reporter: Reporter;
  private readonly limits: [number, number];
  private readonly windowUs: [number, number];
  /** Highest distinct count reached (short window). */
  peak = 0;

  constructor(opts: PropagationOptions = {}) {
    for (const p of opts.ports ?? [22, 23, 2222, 2323]) this.ports[p] = 1;
    this.limits = [opts.hosts ?? 8, opts.slowHosts ?? 20];
    this.windowUs = [(opts.windowMs ?? 60_000) * 1000, (opts.slowWindowMs ?? 900_000) * 1000];
    // nums: per window [start, ones, last target], then login-port SYNs, fingerprinted ones, SYNs to other ports
    this.table = new HostTable(opts.maxSources ?? 1024, NUMS, 2 * WORDS);
    this.reporter = new Reporter((opts.reportEveryMs ?? 60_000) * 1000);
  }

  packet(p: PacketView, out: Finding[]): void {
    if (p.kind !== KIND_IPV4 || p.proto !== PROTO_TCP || !p.hasL4 || (p.flags & (TCP_SYN | TCP_ACK)) !== TCP_SYN) return;
    if (isPrivate(p.dst)) return;
    const t = this.table;
    if (this.ports[p.dport] === 0) {
      const o = t.find(p.src);
      if (o >= 0) t.num[o * NUMS + N_OTHER]++;
      return;
    }
    const s = t.get(p.src, 0, 0, p.tUs);
    t.num[s * NUMS + N_LOGIN]++;
    if (p.seq === p.dst) t.num[s * NUMS + N_PRINT]++;
    for (let w = 0; w < 2; w++) {
      const nb = s * NUMS + w * 3;
      if (t.num[nb] === 0 || p.tUs - t.num[nb] > this.windowUs[w]) {
        t.num[nb] = p.tUs || 1;
        t.num[nb + 1] = 0;
        t.word.fill(0, s * 2 * WORDS + w * WORDS, s * 2 * WORDS + (w + 1) * WORDS);
      }
      if (!addDistinct(t.word, s * 2 * WORDS + w * WORDS, BITS, mix3(p.dst, 0, 5))) continue;
      const n = distinctEstimate(++t.num[nb + 1], BITS);
      t.num[nb + 2] = p.dst;
      if (w === 0 && n > this.peak) this.peak = n;
      if (n < this.limits[w]) continue;
      const login = t.num[s * NUMS + N_LOGIN];
      if (!(t.num[s * NUMS + N_PRINT] * 2 >= login || t.num[s * NUMS + N_OTHER] * 10 < login)) continue;
      if (!this.reporter.allow(1, p.src, p.tUs)) continue;
      this.reporter.count('propagation');
      const ip = ipText(p.src);
      const windowMs = this.windowUs[w] / 1000;
      out.push({
        class: MIRAI, host: ip, role: 'source', tUs: p.tUs,
        evidence: {
          kind: 'propagation', ip, macs: [], count: n, windowMs, hosts: n, targets: [`${ipText(p.dst)}:${p.dport}`],
          detail: `${ip} sent login-port SYNs (${p.dport}) to ${n} Internet hosts within ${windowMs / 1000} s: an infected device spreading`,
        },
      });
    }
  }

  stats() {
    return { evicted: this.table.evicted, raised: { ...this.reporter.raised }, peak: this.peak };
  }
}
