/**
 * What generators write to: a Sink of timestamped frames, and a TCP connection model that keeps sequence and
 * acknowledgement numbers, handshakes, delayed ACKs, MSS segmentation and the close, so generated sessions look
 * like a real stack's on the wire.
 */
import {
  linuxSynOptions, tcpFrame, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type Hop,
} from '../capture/frames.ts';
import type { Rng } from '../shared/random.ts';
import { hop, type Host } from './network.ts';

export interface Sink {
  /** `wireLen`: the length on the wire when the frame was cut by a snap length (replayed captures). */
  push(tUs: number, frame: Uint8Array, wireLen?: number): void;
}

/** Frames in arrival order: sorted by time, ties broken by the order they were pushed (deterministic). */
export class FrameList implements Sink {
  times: number[] = [];
  frames: Uint8Array[] = [];
  wires: number[] = [];
  push(tUs: number, frame: Uint8Array, wireLen = frame.length): void {
    this.times.push(Math.round(tUs));
    this.frames.push(frame);
    this.wires.push(Math.max(wireLen, frame.length));
  }
  get length(): number {
    return this.frames.length;
  }
  /** Indices in time order (stable). */
  order(): Uint32Array {
    const idx = new Uint32Array(this.frames.length);
    for (let i = 0; i < idx.length; i++) idx[i] = i;
    const t = this.times;
    return idx.sort((a, b) => t[a] - t[b] || a - b);
  }
}

/** A seeded pool of random bytes: payloads are slices of it (Mirai's floods send random bytes). */
export class PayloadPool {
  private readonly pool: Uint8Array;
  constructor(rng: Rng, size = 1 << 16) {
    this.pool = new Uint8Array(size);
    for (let i = 0; i < size; i += 4) {
      const v = Math.floor(rng.next() * 4294967296);
      this.pool[i] = v & 255;
      this.pool[i + 1] = (v >>> 8) & 255;
      this.pool[i + 2] = (v >>> 16) & 255;
      this.pool[i + 3] = v >>> 24;
    }
  }
  random(rng: Rng, n: number): Uint8Array {
    const at = rng.int(0, this.pool.length - n);
    return this.pool.subarray(at, at + n);
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);

const MSS = 1448;

export interface TcpTiming {
  /** Round-trip time, µs. */
  rttUs: number;
}

/**
 * One TCP connection between a client and a server. Time moves forward inside (`t`, µs); each method emits the
 * segments a Linux stack would, with the client's and server's sequence numbers kept in step.
 */
export class TcpConn {
  t: number;
  private cSeq: number;
  private sSeq: number;
  private cId: number;
  private sId: number;
  private readonly rtt: number;
  private unackedByServer = 0;
  private unackedByClient = 0;
  closed = false;

  constructor(
    private readonly sink: Sink,
    private readonly rng: Rng,
    readonly client: Host,
    readonly server: Host,
    readonly sport: number,
    readonly dport: number,
    startUs: number,
    timing: TcpTiming,
  ) {
    this.t = startUs;
    this.cSeq = rng.int(0, 0x7fffffff) * 2;
    this.sSeq = rng.int(0, 0x7fffffff) * 2;
    this.cId = rng.int(0, 65536);
    this.sId = rng.int(0, 65536);
    this.rtt = timing.rttUs;
  }

  private jitter(us: number): number {
    return us * (0.8 + 0.4 * this.rng.next());
  }

  private c2s(flags: number, payload?: Uint8Array, options?: Uint8Array, window = 502): void {
    const h: Hop = hop(this.client, this.server, this.cId++);
    this.sink.push(this.t, tcpFrame(h, { sport: this.sport, dport: this.dport, seq: this.cSeq >>> 0, ack: flags & TCP_ACK ? this.sSeq >>> 0 : 0, flags, window, options, payload }));
  }

  private s2c(flags: number, payload?: Uint8Array, options?: Uint8Array, window = 509): void {
    const h: Hop = hop(this.server, this.client, this.sId++);
    this.sink.push(this.t, tcpFrame(h, { sport: this.dport, dport: this.sport, seq: this.sSeq >>> 0, ack: flags & TCP_ACK ? this.cSeq >>> 0 : 0, flags, window, options, payload }));
  }

  /** SYN, SYN-ACK, ACK. Returns false (after SYN, RST-ACK) when the server's port is closed. */
  handshake(): boolean {
    const ts = this.rng.int(1, 2 ** 31);
    this.c2s(TCP_SYN, undefined, linuxSynOptions(ts), 64240);
    this.cSeq++;
    this.t += this.jitter(this.rtt / 2);
    if (!this.server.open.includes(this.dport)) {
      this.s2c(TCP_RST | TCP_ACK, undefined, undefined, 0);
      this.closed = true;
      return false;
    }
    this.s2c(TCP_SYN | TCP_ACK, undefined, linuxSynOptions(ts + 7), 65160);
    this.sSeq++;
    this.t += this.jitter(this.rtt / 2);
    this.c2s(TCP_ACK);
    return true;
  }

  /** Client sends `data` (segmented by MSS); the server ACKs every second segment and the last. */
  clientSends(data: Uint8Array): void {
    this.send(data, true);
  }

  serverSends(data: Uint8Array): void {
    this.send(data, false);
  }

  private send(data: Uint8Array, fromClient: boolean): void {
    for (let off = 0; off < data.length; off += MSS) {
      const seg = data.subarray(off, Math.min(data.length, off + MSS));
      const last = off + MSS >= data.length;
      if (fromClient) {
        this.c2s(TCP_ACK | (last ? TCP_PSH : 0), seg);
        this.cSeq += seg.length;
        this.unackedByServer++;
      } else {
        this.s2c(TCP_ACK | (last ? TCP_PSH : 0), seg);
        this.sSeq += seg.length;
        this.unackedByClient++;
      }
      this.t += this.jitter(last ? this.rtt / 2 : 120);
      if (last || (fromClient ? this.unackedByServer : this.unackedByClient) >= 2) {
        if (fromClient) {
          this.s2c(TCP_ACK);
          this.unackedByServer = 0;
        } else {
          this.c2s(TCP_ACK);
          this.unackedByClient = 0;
        }
        this.t += this.jitter(200);
      }
    }
  }

  /** Waits (think time, server processing). */
  wait(us: number): void {
    this.t += us;
  }

  /** FIN from one side, FIN-ACK back, last ACK. */
  close(clientFirst = true): void {
    if (this.closed) return;
    if (clientFirst) {
      this.c2s(TCP_FIN | TCP_ACK);
      this.cSeq++;
      this.t += this.jitter(this.rtt / 2);
      this.s2c(TCP_FIN | TCP_ACK);
      this.sSeq++;
      this.t += this.jitter(this.rtt / 2);
      this.c2s(TCP_ACK);
    } else {
      this.s2c(TCP_FIN | TCP_ACK);
      this.sSeq++;
      this.t += this.jitter(this.rtt / 2);
      this.c2s(TCP_FIN | TCP_ACK);
      this.cSeq++;
      this.t += this.jitter(this.rtt / 2);
      this.s2c(TCP_ACK);
    }
    this.closed = true;
  }

  /** The client aborts with RST (a killed process, a bot moving on). */
  reset(): void {
    if (this.closed) return;
    this.c2s(TCP_RST | TCP_ACK, undefined, undefined, 0);
    this.closed = true;
  }
}

/** An ephemeral port as Linux picks them (32768–60999). */
export const ephemeralPort = (rng: Rng): number => rng.int(32768, 61000);
