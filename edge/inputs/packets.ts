/**
 * Packets in (pcap/pcapng file or stdin, e.g. `tcpdump -i eth0 -w - | iot-ids hub --pcap -`): batches go
 * through the watchers (edge/watchers/: findings → rule alerts and host flags) and then the wasm flow meter
 * (finished flows → the watchers' flow rules, then the hub's raw rows). Watchers see a batch before its flows are
 * queued, so a finding is in place before the flows it concerns reach the model.
 * A corrupt or truncated capture file ends this input with an IdsError('BAD_CAPTURE') that the hub counts; flows
 * already metered are flushed first, so nothing seen before the damage is lost. A live stream (or `resync`)
 * instead skips to the next good record and carries on; `onDegraded` / `onResynced` tell the hub when it is
 * blind and when it sees again.
 */
import { readCapture } from '../../capture/reader.ts';
import { FlowMeter, type MeterMode } from '../../asm/flowmeter-host.ts';
import type { FlowRecord } from '../../shared/packets.ts';
import type { Evidence } from '../../shared/payloads.ts';
import type { ArpWatcherOptions } from '../watchers/arp.ts';
import { Watchers, type Finding } from '../watchers/index.ts';
import { RAW_COLUMNS, RAW_DST_PORT, RAW_PROTOCOL, RAW_SRC_PORT, STAT_TO_RAW } from '../raw-columns.ts';
import type { FlowSink } from './sink.ts';

export interface PacketInputOptions {
  /** The bundle's preprocess.wasm (the meter runs the same verified module the scaler does). */
  wasm?: Uint8Array;
  /** The hub's watchers (default: a set with default settings, `arp` applied). */
  watchers?: Watchers;
  arp?: ArpWatcherOptions;
  /** Flow meter semantics (asm/FLOWMETER.md); default the meter's own (CICFlowMeter-compatible, as the training data). */
  meterMode?: MeterMode;
  onFinding?: (f: Finding) => void;
  /** Evidence of each finding (kept for callers that only want the evidence). */
  onEvidence?: (e: Evidence) => void;
  signal?: AbortSignal;
  /**
   * Live capture (stdin from tcpdump): in corrected mode, when no packet comes for `idleAdvanceMs`, capture time
   * is moved on by the wall time since the last packet so idle flows still time out and reach the model.
   */
  live?: boolean;
  idleAdvanceMs?: number;
  /** Skip past a corrupt record to the next good one instead of ending (default: `live`). */
  resync?: boolean;
  /** The capture is corrupt at `offset` and no packet is analysed until onResynced (`reason` names the damage). */
  onDegraded?: (reason: string, offset: number) => void;
  /** Packets are analysed again from `offset`; `skipped` bytes of the capture were passed over. */
  onResynced?: (offset: number, skipped: number) => void;
}

export interface PacketInputResult {
  packets: number;
  flows: number;
  accepted: number;
  shed: number;
  evidence: number;
  /** Corrupt stretches the reader skipped (with resync) and the bytes they held. */
  resyncs: number;
  skippedBytes: number;
  /** Set when the capture was corrupt (and, with resync, ended while corrupt): the error, after the flows before it were delivered. */
  error?: Error;
}

export async function readPackets(source: string | NodeJS.ReadableStream, sink: FlowSink, opts: PacketInputOptions = {}):
  Promise<PacketInputResult> {
  const meter = await FlowMeter.create({ wasm: opts.wasm, mode: opts.meterMode });
  const watchers = opts.watchers ?? new Watchers({ arp: opts.arp });
  const found = (fs: readonly Finding[]): void => {
    for (const x of fs) {
      res.evidence++;
      opts.onFinding?.(x);
      opts.onEvidence?.(x.evidence);
    }
  };
  const row = new Float64Array(RAW_COLUMNS.length);
  const res: PacketInputResult = { packets: 0, flows: 0, accepted: 0, shed: 0, evidence: 0, resyncs: 0, skippedBytes: 0 };

  const deliver = async (flows: FlowRecord[]): Promise<void> => {
    for (const f of flows) {
      res.flows++;
      found(watchers.flow(f));
      // Wait before filling the shared row: an idle-advance delivery may run during the wait.
      if (sink.overflow === 'block' && sink.full) await sink.room();
      row.fill(NaN);
      const feats = f.features;
      for (let k = 0; k < feats.length; k++) row[STAT_TO_RAW[k]] = feats[k];
      row[RAW_SRC_PORT] = f.srcPort;
      row[RAW_DST_PORT] = f.dstPort;
      row[RAW_PROTOCOL] = f.protocol;
      if (sink.offer(row, 0, f.srcIp, f.dstIp, f.srcPort, f.dstPort, f.protocol)) res.accepted++;
      else res.shed++;
    }
  };

  let lastTsUs = 0;
  let lastWall = performance.now();
  let pending: Promise<void> = Promise.resolve();
  const idle = opts.live && opts.meterMode === 'corrected'
    ? setInterval(() => {
        const quiet = performance.now() - lastWall;
        if (lastTsUs === 0 || quiet < (opts.idleAdvanceMs ?? 1000)) return;
        const flows = meter.advance(lastTsUs + quiet * 1000);
        if (flows.length) pending = pending.then(() => deliver(flows));
      }, opts.idleAdvanceMs ?? 1000).unref()
    : undefined;
  try {
    const reading = readCapture(source, {
      resync: opts.resync ?? opts.live ?? false,
      onDegraded: opts.onDegraded,
      onResynced: (offset, skipped) => {
        res.resyncs++;
        res.skippedBytes += skipped;
        opts.onResynced?.(offset, skipped);
      },
    });
    for await (const batch of reading) {
      if (opts.signal?.aborted) break;
      res.packets += batch.count;
      if (batch.count > 0) lastTsUs = batch.timestampsUs[batch.count - 1];
      lastWall = performance.now();
      await pending;
      found(watchers.push(batch));
      await deliver(meter.push(batch));
    }
  } catch (e) {
    res.error = e as Error;
  } finally {
    if (idle) clearInterval(idle);
  }
  await pending;
  await deliver(meter.flush());
  return res;
}
