/**
 * Flow meter throughput, single thread, capture already in memory: packets/s through the capture reader and the
 * wasm flow meter (push every batch, flush at the end), on the spoofed SYN flood (37,841 packets, one flow per
 * packet: the worst case for the flow table) and on a benign IoT capture. References measured in the same run:
 * the reader alone, and a plain-JS loop that parses Ethernet/IPv4/TCP-UDP and counts packets per 5-tuple in a Map.
 * Each capture also runs with the hub's watchers in front of the meter (alternating with the plain runs): their
 * cost per packet is the difference of the medians. Peak RSS covers both (the watchers' tables are fixed-size:
 * a spoofed flood churns them, it does not grow them).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCaptureBuffer } from '../capture/reader.ts';
import { FlowMeter, type MeterMode } from '../asm/flowmeter-host.ts';
import { Watchers } from '../edge/watchers/index.ts';
import { emit, median } from './report.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const DATA = process.env.IOT_IDS_SHARED_DATA ?? resolve(ROOT, '..', 'shared', 'data');
const RUNS = 7;

const CAPTURES: { name: string; path: string; modes: MeterMode[] }[] = [
  {
    name: 'stopddos_pkt.TCP.synflood.spoofed.pcap',
    path: join(DATA, 'pcaps', 'attack', 'stopddos_pkt.TCP.synflood.spoofed.pcap'),
    modes: ['cicflowmeter-compat', 'corrected'],
  },
  {
    name: 'iotensemble/mercury_wirecamera/2020-11-24.pcap',
    path: join(DATA, 'pcaps', 'benign', 'iotensemble', 'mercury_wirecamera', '2020-11-24.pcap'),
    modes: ['cicflowmeter-compat', 'corrected'],
  },
];

function readerOnly(buf: Uint8Array): number {
  let n = 0;
  for (const b of readCaptureBuffer(buf)) n += b.count;
  return n;
}

/** The naive baseline: per packet, parse in JS and count in a Map keyed by a 5-tuple string. */
function jsHashCount(buf: Uint8Array): number {
  const m = new Map<string, number>();
  let n = 0;
  for (const b of readCaptureBuffer(buf)) {
    const d = b.data;
    for (let i = 0; i < b.count; i++) {
      n++;
      const o = b.offsets[i];
      if (b.lengths[i] < 38 || d[o + 12] !== 8 || d[o + 13] !== 0) continue;
      const ip = o + 14;
      const l4 = ip + (d[ip] & 15) * 4;
      const proto = d[ip + 9];
      const key = `${d[ip + 12]}.${d[ip + 13]}.${d[ip + 14]}.${d[ip + 15]}|${d[ip + 16]}.${d[ip + 17]}.${d[ip + 18]}.${d[ip + 19]}|${(d[l4] << 8) | d[l4 + 1]}|${(d[l4 + 2] << 8) | d[l4 + 3]}|${proto}`;
      m.set(key, (m.get(key) ?? 0) + 1);
    }
  }
  return n + m.size * 0;
}

/**
 * One pass; the meter is reused across runs (flush leaves it empty), as a hub keeps one meter running. With
 * `watchers`, every batch also goes through the hub's watchers first and every finished flow through their flow
 * rules, exactly as edge/inputs/packets.ts does.
 */
function meterRun(meter: FlowMeter, buf: Uint8Array, watchers?: Watchers) {
  const before = meter.stats();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let flows = 0;
  for (const b of readCaptureBuffer(buf)) {
    if (watchers) {
      watchers.push(b);
      for (const f of meter.push(b)) watchers.flow(f);
    }
    else flows += meter.push(b).length;
  }
  if (watchers) for (const f of meter.flush()) watchers.flow(f);
  else flows += meter.flush().length;
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000;
  const stats = meter.stats();
  return { ms, cpuMs, flows, evicted: stats.evicted - before.evicted, wasmMemoryBytes: stats.wasmMemoryBytes };
}

const timeIt = (f: () => unknown): number => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};

export async function run(): Promise<void> {
  let peakRss = process.memoryUsage().rss;
  for (const cap of CAPTURES) {
    if (!existsSync(cap.path)) {
      process.stderr.write(`flowmeter bench: ${cap.path} not found, skipped (see ../shared/data/README.md)\n`);
      continue;
    }
    const buf = readFileSync(cap.path);
    const packets = readerOnly(buf);
    for (const mode of cap.modes) {
      const meter = await FlowMeter.create({ mode });
      const watched = await FlowMeter.create({ mode });
      const watchers = new Watchers();
      meterRun(meter, buf); // warm-up: JIT, and the first touch of the flow pool's pages
      meterRun(watched, buf, watchers);

      jsHashCount(buf);
      const meterMs: number[] = [];
      const meterCpuMs: number[] = [];
      const readerMs: number[] = [];
      const jsMs: number[] = [];
      let last: ReturnType<typeof meterRun> | undefined;
      // Meter runs first, references after: the JS baseline's garbage would otherwise be collected inside them.
      const watchMs: number[] = [];
      const watchCpuMs: number[] = [];
      // Alternating runs with and without the watchers, so both see the same moments of a shared machine.
      for (let r = 0; r < RUNS; r++) {
        last = meterRun(meter, buf);
        meterMs.push(last.ms);
        meterCpuMs.push(last.cpuMs);
        const w = meterRun(watched, buf, watchers);
        watchMs.push(w.ms);
        watchCpuMs.push(w.cpuMs);
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      }
      for (let r = 0; r < RUNS; r++) readerMs.push(timeIt(() => readerOnly(buf)));
      for (let r = 0; r < RUNS; r++) jsMs.push(timeIt(() => jsHashCount(buf)));
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      const pps = (ms: number) => Math.round(packets / (ms / 1000));
      emit({
        bench: 'flowmeter',
        metric: 'packetsPerSec',
        value: pps(median(meterMs)),
        unit: 'packets/s',
        capture: cap.name,
        mode,
        packets,
        flows: last!.flows,
        evicted: last!.evicted,
        runs: RUNS,
        // Packets per second of this process's CPU time: on a machine shared by many jobs, wall time also counts
        // the time the scheduler gave to others.
        cpuPacketsPerSec: pps(median(meterCpuMs)),
        // The same path with the hub's watchers (edge/watchers/) in front of the meter, and their cost per packet.
        withWatchersPacketsPerSec: pps(median(watchMs)),
        watcherUsPerPacket: Math.round(((median(watchMs) - median(meterMs)) * 1000 / packets) * 1000) / 1000,
        watcherCpuUsPerPacket: Math.round(((median(watchCpuMs) - median(meterCpuMs)) * 1000 / packets) * 1000) / 1000,
        watcherTables: watchers.stats().scan?.evicted !== undefined
          ? { scanEvicted: watchers.stats().scan!.evicted, floodEvicted: watchers.stats().flood!.evicted } : undefined,
        peakRssBytes: peakRss,
        wasmMemoryBytes: last!.wasmMemoryBytes,
        reference: {
          readerOnlyPacketsPerSec: pps(median(readerMs)),
          jsHashCountPacketsPerSec: pps(median(jsMs)),
          note: 'medians of runs on a shared 2-core machine; reader-only and JS 5-tuple Map count measured in the same runs',
        },
      });
    }
  }
  emit({
    bench: 'flowmeter',
    metric: 'peakRssBytes',
    value: peakRss,
    unit: 'bytes',
    reference: { heapUsedBytes: process.memoryUsage().heapUsed },
  });
}
