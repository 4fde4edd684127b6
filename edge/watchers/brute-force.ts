/**
 * Brute-force watcher, fed by the flow meter's finished flows. A password guesser (Hydra, Medusa, Mirai's telnet
 * login, ncrack) opens session after session from one source to one service: each session completes a handshake,
 * exchanges a banner/prompt and a few credentials, and ends when the server refuses or closes. Per (source,
 * destination, destination port) over TCP the watcher counts such login-sized sessions in a window:
 *   a session = the server sent data (a banner or a prompt), the client sent data, at most `maxPackets` packets
 *   both ways (a login exchange, not a transfer), and it lasted at most `maxSessionMs`;
 *   and only sessions alike are counted together: the server's byte count within 3 % of each other. A refused
 *   login gets the same answer every time; a phone app's bursts of short HTTPS sessions to one server do not (the
 *   real Alexa app capture opens 28 in a minute to one server, with server byte counts all over the place).
 * Finding `brute-force` (class Mirai: IoTID20 files host brute force under Mirai; role source) at `sessions` or
 * more in `windowMs`. Any port: the service is whatever the attacker targets (telnet, SSH, FTP, HTTP auth, MQTT,
 * vendor ports). Two windows: 20 alike sessions in 60 s (sequential guessers, a login every few seconds; the real
 * brute force here makes 65 in a minute) and 5 in 10 s (parallel guessers: Hydra runs 16 at once; the real brute
 * force finishes 6 alike sessions in the same millisecond). The benign worst cases are 4 alike sessions in a
 * minute and 3 in 10 s (a plug's set-up) in the real captures, and 11 in a minute in the live lab (a phone app
 * polling a camera's web page); a device polling over a new connection every 3 s or faster would reach the rule.
 */
import type { FlowRecord } from '../../shared/packets.ts';
import { STAT_FEATURES, type Column } from '../../shared/features.ts';
import { HostTable, mix3 } from './host-table.ts';
import { ipNumber } from './packet-view.ts';
import { type Finding, MIRAI, Reporter } from './finding.ts';

export interface BruteForceOptions {
  /** Alike sessions in windowMs (sequential guessers). Default 20 in 60 s. */
  sessions?: number;
  windowMs?: number;
  /** Alike sessions in burstWindowMs (parallel guessers: Hydra, Medusa, ncrack). Default 5 in 10 s. */
  burstSessions?: number;
  burstWindowMs?: number;
  maxPackets?: number;
  maxSessionMs?: number;
  maxPairs?: number;
  reportEveryMs?: number;
}

const F = (name: Column): number => STAT_FEATURES.indexOf(name);
const DURATION = F('Flow_Duration');
const FWD_PKTS = F('Tot_Fwd_Pkts');
const BWD_PKTS = F('Tot_Bwd_Pkts');
const FWD_BYTES = F('TotLen_Fwd_Pkts');
const BWD_BYTES = F('TotLen_Bwd_Pkts');

const BUCKETS = 4;
const WIN = 1 + 3 * BUCKETS;

/**
 * Counts a session in the bucket of sessions alike — the server sent as many bytes (within 3 % or 8 bytes: the same
 * banner and the same refusal) and the client about as many (within 5 % or 32 bytes: another user name and password
 * of similar length) — replacing the smallest bucket when none matches; returns that bucket's count. A refused
 * login gets the same answer every time; an app's varied requests do not.
 */
function alike(num: Float64Array, base: number, server: number, client: number): number {
  let smallest = base;
  for (let b = base; b < base + 3 * BUCKETS; b += 3) {
    if (num[b + 2] > 0 && Math.abs(num[b] - server) <= Math.max(8, 0.03 * server) &&
      Math.abs(num[b + 1] - client) <= Math.max(32, 0.05 * client)) return ++num[b + 2];
    if (num[b + 2] < num[smallest + 2]) smallest = b;
  }
  num[smallest] = server;
  num[smallest + 1] = client;
  num[smallest + 2] = 1;
  return 1;
}

export class BruteForceWatcher {
  private readonly table: HostTable;
  private readonly reporter: Reporter;
  private readonly o: Required<BruteForceOptions>;
  /** Highest session count reached in one window for one (source, service): the benign worst case. */
  peak = 0;
  peakBurst = 0;

  constructor(opts: BruteForceOptions = {}) {
    this.o = {
      sessions: opts.sessions ?? 20, windowMs: opts.windowMs ?? 60_000, burstSessions: opts.burstSessions ?? 5,
      burstWindowMs: opts.burstWindowMs ?? 10_000, maxPackets: opts.maxPackets ?? 60,
      maxSessionMs: opts.maxSessionMs ?? 60_000, maxPairs: opts.maxPairs ?? 4096, reportEveryMs: opts.reportEveryMs ?? 60_000,
    };
    // nums, per window (long, burst): [window start µs, then BUCKETS × (server bytes, client bytes, sessions)]
    this.table = new HostTable(this.o.maxPairs, 2 * WIN, 0);
    this.reporter = new Reporter(this.o.reportEveryMs * 1000);
  }

  flow(f: FlowRecord, out: Finding[]): void {
    if (f.protocol !== 6) return;
    const x = f.features;
    if (!(x[BWD_BYTES] > 0 && x[FWD_BYTES] > 0)) return;
    if (x[FWD_PKTS] + x[BWD_PKTS] > this.o.maxPackets || x[DURATION] > this.o.maxSessionMs * 1000) return;
    const src = ipNumber(f.srcIp);
    const dst = ipNumber(f.dstIp);
    if (src < 0 || dst < 0) return;
    const t = this.table;
    const s = t.get(src, dst, f.dstPort, f.startUs);
    let n = 0;
    let windowMs = 0;
    for (let w = 0; w < 2; w++) {
      const nb = s * 2 * WIN + w * WIN;
      const span = w === 0 ? this.o.windowMs : this.o.burstWindowMs;
      if (t.num[nb] === 0 || f.startUs - t.num[nb] > span * 1000) {
        t.num.fill(0, nb, nb + WIN);
        t.num[nb] = f.startUs || 1;
      }
      const k = alike(t.num, nb + 1, x[BWD_BYTES], x[FWD_BYTES]);
      if (w === 0 && k > this.peak) this.peak = k;
      if (w === 1 && k > this.peakBurst) this.peakBurst = k;
      if (k >= (w === 0 ? this.o.sessions : this.o.burstSessions) && n === 0) {
        n = k;
        windowMs = span;
      }
    }
    if (n === 0 || !this.reporter.allow(mix3(dst, f.dstPort, 1), src, f.startUs)) return;
    this.reporter.count('brute-force');
    out.push({
      class: MIRAI, host: f.srcIp, role: 'source', tUs: f.startUs,
      evidence: {
        kind: 'brute-force', ip: f.srcIp, macs: [], count: n, windowMs, hosts: 1, ports: 1,
        targets: [`${f.dstIp}:${f.dstPort}`],
        detail: `${f.srcIp}: ${n} short login-sized sessions to ${f.dstIp}:${f.dstPort} within ${windowMs / 1000} s`,
      },
    });
  }

  stats() {
    return { evicted: this.table.evicted, raised: { ...this.reporter.raised }, peak: this.peak };
  }
}
