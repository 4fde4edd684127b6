/**
 * The lab run: for each scenario, generate (or replay) packets in rounds, write them to DIR/pcaps/NAME.pcap, feed
 * them through the flow meter and write every finished flow to DIR/flows.csv with the scenario's labels, until the
 * scenario's share of `--flows` is reached. Real attack captures join first, labelled by capture. Everything comes
 * from seeded generators, so a seed gives byte-identical pcaps and CSV.
 *
 * Labels: each pcap holds the packets of exactly one generator or capture, so the label map is per pcap: every flow
 * the meter finds in it carries that source's label (the MITM pcap holds the victim's relayed sessions, which are
 * what the attack produced).
 */
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlowMeter, type MeterMode } from '../asm/flowmeter-host.ts';
import { formatFlowCsvRow, LABELED_FLOW_CSV_HEADER, type FlowLabels } from '../asm/flow-csv.ts';
import { PcapWriter } from '../capture/pcap-writer.ts';
import { readCapture } from '../capture/reader.ts';
import { IdsError } from '../shared/errors.ts';
import { LINKTYPE_ETHERNET, type FlowRecord, type PacketBatch } from '../shared/packets.ts';
import { Rng } from '../shared/random.ts';
import { listCaptures, replayCapture } from './background.ts';
import { REAL_ATTACKS, SCENARIOS, type Scenario } from './scenarios.ts';
import { FrameList, PayloadPool } from './wire.ts';
import { relayCapture } from './relay.ts';
import { listDevices, splitDevices, filesOf, type DeviceSplit } from './benign-split.ts';
import { writeHeldOut, type HeldOutReport } from './held-out.ts';
import { mixLive, type LiveScenarioReport } from './live-mix.ts';

/** ../shared/data beside the project, where the real captures live (a user points --data elsewhere). */
export const DEFAULT_DATA = resolve(fileURLToPath(new URL('../..', import.meta.url)), 'shared', 'data');

export interface LabOptions {
  seed: number;
  /** Flows wanted in total (shared between the scenarios by their shares). */
  flows: number;
  out: string;
  /** Scenario names to make (default: all). */
  scenarios?: string[];
  mode?: MeterMode;
  /** The shared data folder (pcaps/benign, pcaps/attack). */
  dataDir: string;
  /** Include the real attack captures (default true). */
  real?: boolean;
  /**
   * Split the real benign captures by device (lab/benign-split.ts): only the train side is replayed into the
   * corpus; the validation and test devices are metered apart (lab/held-out.ts). Absent: every capture replays.
   */
  deviceSplit?: { test: number; validation: number };
  /**
   * Live-lab recordings to mix in (lab/live-mix.ts): whole scenarios split per family, `test` share to
   * live-test.csv, the rest into flows.csv (at most `maxPerScenario` flows each), on top of `--flows`.
   */
  live?: { dir: string; test: number; maxPerScenario: number; skip?: string[] };
  /** Replace scenarios' shares of `--flows` (by scenario name). */
  shares?: Record<string, number>;
  /** Replace the share of a replaying scenario's flows made from the real captures (by scenario name; 0 = none). */
  replayShares?: Record<string, number>;
  log?: (line: string) => void;
}

export interface SourceReport {
  source: string;
  cat: string;
  subCat: string;
  packets: number;
  flows: number;
}

export interface LabReport {
  flows: number;
  byCat: Record<string, number>;
  bySubCat: Record<string, number>;
  sources: SourceReport[];
  /** Per side of the device split, when there is one. */
  heldOut?: HeldOutReport[];
  /** Per live-lab scenario, when recordings were mixed in. */
  live?: LiveScenarioReport[];
  seconds: number;
}

const BATCH = 4096;
/** Lab clock: Monday 5 January 2026, 08:00 UTC (µs); scenario k starts k hours later. */
const LAB_EPOCH_US = Date.UTC(2026, 0, 5, 8) * 1000;
/** Gap between rounds, longer than the flow timeout, so rounds never share a flow. */
const ROUND_GAP_US = 180_000_000;
/** Units per round: bounds the packets held in memory at once (a round is sorted before it is written). */
const MAX_UNITS_PER_ROUND = 20_000;
/**
 * Gap between replayed benign captures: longer than the ARP watcher's default grace (300 s), because captures from
 * different homes put different devices (MACs) on the same re-addressed IP, which within the grace would read as
 * an IP conflict.
 */
const BACKGROUND_GAP_US = 600_000_000;

function seedFor(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Buffered CSV output. */
class CsvOut {
  private fd: number;
  private parts: string[] = [];
  private size = 0;
  rows = 0;
  constructor(path: string) {
    this.fd = openSync(path, 'w');
    this.line(LABELED_FLOW_CSV_HEADER);
    this.rows = 0;
  }
  line(s: string): void {
    this.parts.push(s, '\n');
    this.size += s.length + 1;
    this.rows++;
    if (this.size > 1 << 22) this.flush();
  }
  flush(): void {
    if (this.parts.length) writeSync(this.fd, this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** Frames (in time order) → one batch over a fresh buffer. */
function batchOf(list: FrameList, order: Uint32Array, from: number, to: number): PacketBatch {
  const n = to - from;
  let bytes = 0;
  for (let i = from; i < to; i++) bytes += list.frames[order[i]].length;
  const data = new Uint8Array(bytes);
  const offsets = new Uint32Array(n);
  const lengths = new Uint32Array(n);
  const ts = new Float64Array(n);
  let p = 0;
  for (let i = 0; i < n; i++) {
    const f = list.frames[order[from + i]];
    data.set(f, p);
    offsets[i] = p;
    lengths[i] = f.length;
    ts[i] = list.times[order[from + i]];
    p += f.length;
  }
  const wire = new Uint32Array(n);
  for (let i = 0; i < n; i++) wire[i] = list.wires[order[from + i]];
  return { count: n, data, offsets, lengths, wireLengths: wire, timestampsUs: ts, linkTypes: new Uint16Array(n).fill(LINKTYPE_ETHERNET), sourceOffset: 0 };
}

/** Runs the round's frames (in time order) through the meter; returns the order and the flows (meter flushed). */
function meterRound(list: FrameList, meter: FlowMeter): { order: Uint32Array; flows: FlowRecord[] } {
  const order = list.order();
  const flows: FlowRecord[] = [];
  for (let i = 0; i < order.length; i += BATCH) flows.push(...meter.push(batchOf(list, order, i, Math.min(order.length, i + BATCH))));
  flows.push(...meter.flush());
  return { order, flows };
}

function writeRound(list: FrameList, order: Uint32Array, writer: PcapWriter): void {
  for (let i = 0; i < order.length; i++) writer.write(list.frames[order[i]], list.times[order[i]], list.wires[order[i]]);
}

const labelsOf = (s: { cat: string; subCat: string }): FlowLabels => ({ label: s.cat === 'Normal' ? 'Normal' : 'Anomaly', cat: s.cat, subCat: s.subCat });

export async function runLab(opts: LabOptions): Promise<LabReport> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  if (!Number.isInteger(opts.flows) || opts.flows < 1) throw new IdsError('BAD_OPTION', `--flows must be a positive integer, got ${opts.flows}`);
  if (!Number.isInteger(opts.seed) || opts.seed < 0) throw new IdsError('BAD_OPTION', `--seed must be a non-negative integer, got ${opts.seed}`);
  const chosen = opts.scenarios?.length ? opts.scenarios : SCENARIOS.map((s) => s.name);
  const unknown = chosen.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) throw new IdsError('BAD_OPTION', `--scenario ${unknown.join(',')}: expected one of ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const scenarios = withOverrides(SCENARIOS.filter((s) => chosen.includes(s.name)), opts);
  const budget = new Map<Scenario, number>();
  const shares = scenarios.reduce((a, s) => a + s.share, 0);
  let left = opts.flows;
  scenarios.forEach((s, i) => {
    const b = i === scenarios.length - 1 ? left : Math.round((opts.flows * s.share) / shares);
    budget.set(s, b);
    left -= b;
  });

  mkdirSync(join(opts.out, 'pcaps'), { recursive: true });
  const csv = new CsvOut(join(opts.out, 'flows.csv'));
  const sources: SourceReport[] = [];
  // A fresh meter per source: no state (or clock) crosses from one pcap to the next.
  const newMeter = () => FlowMeter.create({ mode: opts.mode });
  const benignDir = join(opts.dataDir, 'pcaps', 'benign');
  let live: LiveScenarioReport[] | undefined;
  let split: DeviceSplit | undefined;
  if (opts.deviceSplit && existsSync(benignDir)) split = splitDevices(listDevices(benignDir), { seed: opts.seed, ...opts.deviceSplit });
  const replayFiles = split ? filesOf(split, 'train').map((f) => join(benignDir, f)) : undefined;
  try {
    if (opts.real ?? true) await addRealAttacks(opts, scenarios, budget, newMeter, csv, sources, log);
    for (const [k, s] of scenarios.entries()) {
      let want = budget.get(s)! - sources.filter((r) => r.subCat === s.subCat).reduce((a, r) => a + r.flows, 0);
      if (want <= 0) continue;
      if (s.replay) {
        const rep = await replayScenario(s, Math.round(want * s.replay.share), opts, replayFiles, LAB_EPOCH_US - 86_400_000_000 * (k + 1), await newMeter(), csv);
        sources.push(rep);
        want -= rep.flows;
        log(`${s.name} (replayed captures): ${rep.flows} flows, ${rep.packets} packets (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      }
      if (want <= 0) continue;
      const rep = await generateScenario(s, want, opts.seed, LAB_EPOCH_US + k * 3_600_000_000, opts.out, await newMeter(), csv);
      sources.push(rep);
      log(`${s.name}: ${rep.flows} flows, ${rep.packets} packets (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
    if (opts.live) {
      live = mixLive(opts.live.dir, { seed: opts.seed, test: opts.live.test, maxPerScenario: opts.live.maxPerScenario, skip: opts.live.skip, mode: opts.mode }, (row) => csv.line(row), join(opts.out, 'live-test.csv'));
      for (const l of live) log(`live ${l.scenario} (${l.family}): ${l.side}, ${l.used} of ${l.flows} flows`);
    }
  } finally {
    csv.close();
  }
  let heldOut: HeldOutReport[] | undefined;
  if (split) {
    const replayed = sources.filter((r) => r.source.includes('-replay.pcap') && r.cat === 'Normal').reduce((a, r) => a + r.flows, 0);
    heldOut = await writeHeldOut(split, benignDir, opts.out, opts.mode, replayed);
    for (const h of heldOut) log(`benign ${h.side}: ${h.devices} devices, ${h.captures} captures${h.side === 'train' ? `, ${h.flows} Normal flows replayed` : `, ${h.flows} flows`}`);
  }
  const byCat: Record<string, number> = {};
  const bySubCat: Record<string, number> = {};
  for (const r of sources) {
    byCat[r.cat] = (byCat[r.cat] ?? 0) + r.flows;
    bySubCat[r.subCat] = (bySubCat[r.subCat] ?? 0) + r.flows;
  }
  // Live rows carry their own labels per flow; only the class totals can name them without reading them again.
  for (const l of live?.filter((x) => x.side === 'train') ?? []) {
    const scale = l.flows ? l.used / l.flows : 0;
    for (const [cat, n] of Object.entries(l.byCat)) byCat[cat] = (byCat[cat] ?? 0) + Math.round(n * scale);
  }
  return { flows: csv.rows, byCat, bySubCat, sources, ...(heldOut ? { heldOut } : {}), ...(live ? { live } : {}), seconds: (performance.now() - t0) / 1000 };
}

/** The scenarios with `--share` / `--replay-share` applied (each name checked, each value a finite number ≥ 0). */
function withOverrides(scenarios: Scenario[], opts: LabOptions): Scenario[] {
  const check = (what: string, o: Record<string, number> | undefined) => {
    for (const [name, v] of Object.entries(o ?? {})) {
      if (!SCENARIOS.some((s) => s.name === name)) throw new IdsError('BAD_OPTION', `--${what} ${name}: expected one of ${SCENARIOS.map((s) => s.name).join(', ')}`);
      if (!(Number.isFinite(v) && v >= 0) || (what === 'replay-share' && v > 1)) throw new IdsError('BAD_OPTION', `--${what} ${name}=${v}: expected a number ≥ 0${what === 'replay-share' ? ' and ≤ 1' : ''}`);
    }
  };
  check('share', opts.shares);
  check('replay-share', opts.replayShares);
  return scenarios.map((s) => {
    const share = opts.shares?.[s.name] ?? s.share;
    const r = opts.replayShares?.[s.name];
    const replay = r === undefined ? s.replay : r === 0 ? undefined : { share: r, relay: s.replay?.relay ?? s.cat !== 'Normal' };
    return { ...s, share, replay };
  });
}

async function generateScenario(s: Scenario, want: number, seed: number, startUs: number, out: string, meter: FlowMeter, csv: CsvOut): Promise<SourceReport> {
  const rng = new Rng(seedFor(seed, s.name));
  const ctx = { rng, pool: new PayloadPool(rng), sink: new FrameList() };
  const writer = new PcapWriter(join(out, 'pcaps', `${s.name}.pcap`));
  const labels = labelsOf(s);
  let flows = 0;
  let packets = 0;
  let units = 0;
  let t = startUs;
  for (let round = 0, idle = 0; flows < want && idle < 3; round++) {
    // A small first round learns how many flows a unit gives; later rounds ask for what is missing.
    const perUnit = units > 0 && flows > 0 ? flows / units : 1;
    const missing = round === 0 ? want / 4 : (want - flows) / perUnit;
    const ask = Math.min(MAX_UNITS_PER_ROUND, Math.max(1, Math.ceil(missing)));
    const before = flows;
    ctx.sink = new FrameList();
    t = s.generate!(ctx, t, ask) + ROUND_GAP_US;
    units += ask;
    packets += ctx.sink.length;
    const r = meterRound(ctx.sink, meter);
    writeRound(ctx.sink, r.order, writer);
    for (const rec of r.flows) csv.line(formatFlowCsvRow(rec, labels));
    flows += r.flows.length;
    idle = flows === before ? idle + 1 : 0; // a generator that yields no flows must not loop forever
  }
  await writer.close();
  return { source: `pcaps/${s.name}.pcap`, cat: s.cat, subCat: s.subCat, packets, flows };
}

/**
 * Replays the real benign captures (`only`: the train side of a device split) under the MITM relay when the
 * scenario says so, until `want` flows.
 */
async function replayScenario(s: Scenario, want: number, opts: LabOptions, only: string[] | undefined, startUs: number, meter: FlowMeter, csv: CsvOut): Promise<SourceReport> {
  const dir = join(opts.dataDir, 'pcaps', 'benign');
  if (!existsSync(dir)) throw new IdsError('EMPTY_INPUT', `benign captures not found at ${dir}: the Normal class is made from them`);
  const files = only ?? listCaptures(dir);
  if (files.length === 0) throw new IdsError('EMPTY_INPUT', `no captures in ${dir}`);
  const rng = new Rng(seedFor(opts.seed, `${s.name}-replay`));
  const writer = new PcapWriter(join(opts.out, 'pcaps', `${s.name}-replay.pcap`));
  const labels = labelsOf(s);
  let flows = 0;
  let packets = 0;
  let t = startUs;
  for (let replica = 0; flows < want; replica++) {
    const before = flows;
    for (const f of rng.shuffle([...files])) {
      let list = new FrameList();
      const r = await replayCapture(f, list, t, replica);
      if (s.replay?.relay) {
        const relayed = relayCapture(list, rng);
        if (!relayed) continue;
        list = relayed.frames;
      }
      const m = meterRound(list, meter);
      // Skip a capture that would overshoot the budget by more than 10% (a smaller one may fit).
      if (m.flows.length === 0 || flows + m.flows.length > want * 1.1) continue;
      t = r.endUs + BACKGROUND_GAP_US;
      packets += list.length;
      writeRound(list, m.order, writer);
      for (const rec of m.flows) csv.line(formatFlowCsvRow(rec, labels));
      flows += m.flows.length;
      if (flows >= want) break;
    }
    if (flows === before) break; // the captures hold no flows at all
  }
  await writer.close();
  return { source: `pcaps/${s.name}-replay.pcap (${files.length} benign captures${only ? ' of the train devices' : ''}${s.replay?.relay ? ', relayed' : ''})`, cat: s.cat, subCat: s.subCat, packets, flows };
}

/** Real attack captures, labelled by capture; each sub-category takes at most half its budget from them. */
async function addRealAttacks(opts: LabOptions, scenarios: Scenario[], budget: Map<Scenario, number>, newMeter: () => Promise<FlowMeter>, csv: CsvOut, sources: SourceReport[], log: (l: string) => void): Promise<void> {
  const dir = join(opts.dataDir, 'pcaps', 'attack');
  if (!existsSync(dir)) {
    log(`real attack captures not found at ${dir}: skipped`);
    return;
  }
  const rng = new Rng(seedFor(opts.seed, 'real-attacks'));
  for (const sub of new Set(REAL_ATTACKS.map((r) => r.subCat))) {
    const s = scenarios.find((x) => x.subCat === sub);
    if (!s) continue;
    const cap = Math.floor(budget.get(s)! / 2);
    const found: { file: string; recs: FlowRecord[]; packets: number }[] = [];
    for (const r of REAL_ATTACKS.filter((x) => x.subCat === sub)) {
      const path = join(dir, r.file);
      if (!existsSync(path)) continue;
      const recs: FlowRecord[] = [];
      const meter = await newMeter();
      let packets = 0;
      for await (const b of readCapture(path)) {
        packets += b.count;
        recs.push(...meter.push(b));
      }
      recs.push(...meter.flush());
      found.push({ file: r.file, recs, packets });
    }
    const total = found.reduce((a, f) => a + f.recs.length, 0);
    // Keep each flow with probability cap/total (seeded), so every capture keeps its share.
    const keep = total > cap ? cap / total : 1;
    for (const f of found) {
      let n = 0;
      for (const rec of f.recs) {
        if (keep < 1 && rng.next() >= keep) continue;
        csv.line(formatFlowCsvRow(rec, labelsOf(s)));
        n++;
      }
      sources.push({ source: `attack/${f.file}`, cat: s.cat, subCat: s.subCat, packets: f.packets, flows: n });
    }
  }
}
