/**
 * Paces a hub's traffic into its capture input in (scaled) real time, as tcpdump -w - would on a device: every
 * tick, the frames whose lab time has come are written as pcap records. `speed` lab seconds pass per wall second;
 * the pcap clock is the lab clock moved to start now, so flow durations and timeouts keep their lab meaning.
 */
import type { Writable } from 'node:stream';
import { pcapHeader, pcapRecords } from './pcap-stream.ts';
import type { TrafficSource } from './scenario.ts';

export interface ReplayStats {
  packets: number;
  bytes: number;
  /** Ticks whose write found the input still full (the hub is behind); the frames are written anyway. */
  backlogged: number;
}

export class Replayer {
  readonly stats: ReplayStats = { packets: 0, bytes: 0, backlogged: 0 };
  private timer: NodeJS.Timeout | undefined;
  private wallStart = 0;
  private readonly pcapBaseUs = Date.now() * 1000;
  private ended = false;

  constructor(
    private readonly source: TrafficSource,
    private readonly out: Writable,
    private readonly speed: number,
    private readonly tickMs = 100,
  ) {
    // A hub that went away (closed stdin) ends this replay instead of crashing the demo.
    out.on('error', () => this.stop());
  }

  start(): void {
    this.wallStart = performance.now();
    this.out.write(pcapHeader());
    this.timer = setInterval(() => this.tick(), this.tickMs);
  }

  /** Lab time (µs) the replay has reached. */
  get labNowUs(): number {
    return this.source.startUs + (performance.now() - this.wallStart) * 1000 * this.speed;
  }

  private tick(): void {
    if (this.ended) return;
    const { frames, times } = this.source.take(this.labNowUs);
    if (frames.length === 0) return;
    const shift = this.pcapBaseUs - this.source.startUs;
    for (let i = 0; i < times.length; i++) times[i] += shift;
    const buf = pcapRecords(frames, times, 0, frames.length);
    this.stats.packets += frames.length;
    this.stats.bytes += buf.byteLength;
    if (this.out.writableNeedDrain) this.stats.backlogged++;
    this.out.write(buf);
  }

  /** Stops pacing and ends the capture (the hub flushes its open flows). */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    if (!this.out.destroyed && !this.out.writableEnded) this.out.end();
  }
}
