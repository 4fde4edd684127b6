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
 * vendor ports). Default 20 alike sessions in 60 s: guessers run 4–64 sessions in parallel, so 20 come within
 * seconds (the real SSH-style brute force here: 65 in a minute), while the benign worst case is far lower
 * (edge/README.md "Watchers"); a device polling over a new connection every 3 s or faster would reach it.
 */
import type { FlowRecord } from '../../shared/packets.ts';
import { STAT_FEATURES, type Column } from '../../shared/features.ts';
import { HostTable, mix3 } from './host-table.ts';
import { type Finding, MIRAI, Reporter } from './finding.ts';

export interface BruteForceOptions {
  sessions?: number;
  windowMs?: number;
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

/** IPv4 text → number, without allocating (flow records carry addresses as text). */
function ipNumber(s: string): number {
  let v = 0;
  let part = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      v = v * 256 + part;
      part = 0;
    } else if (c >= 48 && c <= 57) part = part * 10 + (c - 48);
    else return -1;
  }
  return v * 256 + part;
}

const BUCKETS = 4;

/**
 * Counts a session in the bucket of sessions whose server sent about as many bytes (within 3 %), replacing the
 * smallest bucket when none matches; returns that bucket's count. A refused login gets the same answer every
 * time; an app's varied requests do not.
 */
function alike(num: Float64Array, base: number, bytes: number): number {
  let smallest = base;
  for (let b = base; b < base + 2 * BUCKETS; b += 2) {
    if (num[b + 1] > 0 && Math.abs(num[b] - bytes) <= Math.max(8, 0.03 * bytes)) return ++num[b + 1];
    if (num[b + 1] < num[smallest + 1]) smallest = b;
  }
  num[smallest] = bytes;
  num[smallest + 1] = 1;
  return 1;
}

export class BruteForceWatcher {
  private readonly table: HostTable;
  private readonly reporter: Reporter;
  private readonly o: Required<BruteForceOptions>;
  /** Highest session count reached in one window for one (source, service): the benign worst case. */
  peak = 0;

  constructor(opts: BruteForceOptions = {}) {
    this.o = {
      sessions: opts.sessions ?? 20, windowMs: opts.windowMs ?? 60_000, maxPackets: opts.maxPackets ?? 60,
      maxSessionMs: opts.maxSessionMs ?? 60_000, maxPairs: opts.maxPairs ?? 4096, reportEveryMs: opts.reportEveryMs ?? 60_000,
    };
    // nums: [window start µs, then BUCKETS × (server bytes, sessions)]
    this.table = new HostTable(this.o.maxPairs, 1 + 2 * BUCKETS, 0);
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
    const nb = s * (1 + 2 * BUCKETS);
    if (t.num[nb] === 0 || f.startUs - t.num[nb] > this.o.windowMs * 1000) {
      t.num.fill(0, nb, nb + 1 + 2 * BUCKETS);
      t.num[nb] = f.startUs || 1;
    }
    const n = alike(t.num, nb + 1, x[BWD_BYTES]);
    if (n > this.peak) this.peak = n;
    if (n < this.o.sessions || !this.reporter.allow(mix3(dst, f.dstPort, 1), src, f.startUs)) return;
    this.reporter.count('brute-force');
    out.push({
      class: MIRAI, host: f.srcIp, role: 'source', tUs: f.startUs,
      evidence: {
        kind: 'brute-force', ip: f.srcIp, macs: [], count: n, windowMs: this.o.windowMs, hosts: 1, ports: 1,
        targets: [`${f.dstIp}:${f.dstPort}`],
        detail: `${f.srcIp}: ${n} short login-sized sessions to ${f.dstIp}:${f.dstPort} within ${this.o.windowMs / 1000} s`,
      },
    });
  }

  stats() {
    return { evicted: this.table.evicted, raised: { ...this.reporter.raised }, peak: this.peak };
  }
}
