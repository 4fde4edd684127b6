/**
 * The fleet loop's inputs, built at test time from the real data in ../shared/data (nothing here is committed):
 * per hub and phase one IoTID20 flow CSV mixing
 *  - the misclassified device: iot-sentinel/MAXGateway, a held-out benign device (split.json side "test") on which
 *    the shipped model calls 25 of 131 flows Scan (REPRODUCE.md, "Held-out benign devices"). Its captures are
 *    split between the phases, so phase 2 shows the fine-tuned model set-up sessions it never saw marked;
 *  - other real benign traffic the model mostly calls Normal (held-out devices without that address);
 *  - real attack flows the model catches by itself (SYN and UDP port scans, an ICMP sweep, a spoofed SYN flood),
 *    a different slice per hub and phase.
 * Flows are metered as a hub meters packets (corrected mode), so `hub --flows` sees what `hub --pcap` would.
 * The original-corpus replay for the fine-tune is the lab corpus the shipped model was made from, at a small size
 * (same seed, same device split: `iot-ids lab`, models/iot-ids-lab-v1/REPRODUCE.md).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { writeFlowsCsv } from '../../asm/flows-command.ts';
import { FLOW_CSV_HEADER } from '../../asm/flow-csv.ts';

/** The device the shipped model misclassifies, and its address in every one of its captures. */
export const DEVICE = { id: 'iot-sentinel/MAXGateway', ip: '10.10.10.129' };

/** Its captures with alerts, split so that each phase holds set-up sessions the other does not. */
const DEVICE_CAPTURES: Record<'a' | 'b', string[]> = {
  a: ['Setup-A-6-STA', 'Setup-A-8-STA', 'Setup-A-1-STA', 'Setup-A-3-STA', 'Setup-A-5-STA', 'Setup-C-1-STA', 'Setup-C-3-STA',
    'Setup-C-5-STA', 'Setup-C-7-STA', 'Setup-C-9-STA', 'Setup-C-11-STA'],
  b: ['Setup-A-7-STA', 'Setup-A-9-STA', 'Setup-A-2-STA', 'Setup-A-4-STA', 'Setup-C-2-STA', 'Setup-C-4-STA', 'Setup-C-6-STA',
    'Setup-C-8-STA', 'Setup-C-10-STA'],
};

/** Background benign devices (held out from training; none of them uses the device's address). */
const BACKGROUND = ['iotensemble/gree_gateway', 'iotensemble/mercury_wirecamera', 'lifecycle-camera/xiaodu_plug', 'iot-sentinel/WeMoSwitch2'];

/** Real attacks the model catches on its own (README "Detection on real traffic"), with their attack flows. */
export const ATTACKS = [
  { file: 'pcaphunt_ps-tcp_syn.pcap', family: 'Scan', src: '10.0.0.140' },
  { file: 'pcaphunt_ps-udp.pcap', family: 'Scan', src: '10.0.0.135' },
  { file: 'pcaphunt_hs-icmpScan.pcap', family: 'Scan', src: '10.0.0.128' },
  { file: 'stopddos_pkt.TCP.synflood.spoofed.pcap', family: 'DoS', src: undefined },
] as const;

export interface Row {
  line: string;
  src: string;
  dst: string;
  /** src|sport|dst|dport|proto, as a hub's verdict or an alert's flow names it. */
  key: string;
}

export const flowKey = (f: { src: string; sport: number | string; dst: string; dport: number | string; proto: number | string }): string =>
  `${f.src}|${f.sport}|${f.dst}|${f.dport}|${f.proto}`;

export interface HubInput {
  /** Flow CSV per phase: 1 (before feedback), 2 (the good bundle's canary window), 3 (the worse bundle's). */
  phases: string[];
}

export interface FleetInputs {
  hubs: HubInput[];
  /** Rows per phase and hub: device flows, other benign flows, attack flows per family. */
  counts: { device: number[]; benign: number; attack: number }[];
  /** The original-corpus replay CSV for the fine-tune (labelled). */
  replay?: string;
  /** The attack family of a flow (by flowKey), undefined for benign flows. */
  attackFamily(key: string): string | undefined;
  /** A flow of the misclassified device (by flowKey): every flow of its captures, DHCP before it has an address too. */
  isDevice(key: string): boolean;
}

/** Meters one capture (corrected mode, as the hub does) into rows. */
export async function meter(path: string): Promise<Row[]> {
  let text = '';
  const out = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const r = await writeFlowsCsv({ capture: path, out, mode: 'corrected' });
  if (r.error) throw new Error(`${path}: ${r.error.message}`);
  return text.split('\n').slice(1).filter(Boolean).map((line) => {
    const c = line.split(',', 6);
    return { line, src: c[1], dst: c[3], key: flowKey({ src: c[1], sport: c[2], dst: c[3], dport: c[4], proto: c[5] }) };
  });
}

/** A small seeded generator (mulberry32): the same inputs on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(xs: T[], seed: number): T[] {
  const r = rng(seed);
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export interface BuildOptions {
  hubs: number;
  /** Attack flows per attack capture, per hub and phase. */
  attackPerCapture?: number;
}

/**
 * Writes DIR/hubN-phaseP.csv. Phases 1 and 3 carry the device's captures of side a, phase 2 those of side b (set-up
 * sessions no mark covered); the background and the attacks are fresh slices in every phase.
 */
export async function buildFleetInputs(data: string, dir: string, o: BuildOptions): Promise<FleetInputs> {
  mkdirSync(dir, { recursive: true });
  const benignDir = join(data, 'pcaps', 'benign');
  const device: Record<'a' | 'b', Row[]> = { a: [], b: [] };
  for (const side of ['a', 'b'] as const) {
    for (const c of DEVICE_CAPTURES[side]) device[side].push(...(await meter(join(benignDir, DEVICE.id, `${c}.pcap`))));
  }
  const backgroundAll: Row[] = [];
  for (const d of BACKGROUND) {
    const files = readdirSync(join(benignDir, d)).filter((f) => /\.pcapn?g?$/.test(f)).sort();
    for (const f of files) backgroundAll.push(...(await meter(join(benignDir, d, f))));
  }
  for (const r of backgroundAll) {
    if (r.src === DEVICE.ip || r.dst === DEVICE.ip) throw new Error(`background flow uses the device's address ${DEVICE.ip}`);
  }
  // Broadcast flows (DHCP from 0.0.0.0) look alike on every device: keep the background's apart from the device's.
  const deviceKeys = new Set([...device.a, ...device.b].map((r) => r.key));
  const background = backgroundAll.filter((r) => !deviceKeys.has(r.key));
  const attacks: Row[][] = [];
  for (const a of ATTACKS) {
    const rows = (await meter(join(data, 'pcaps', 'attack', a.file))).filter((r) => a.src === undefined || r.src === a.src);
    attacks.push(shuffle(rows, 7));
  }
  const per = o.attackPerCapture ?? 30;
  const phases = 3;
  const bg = shuffle(background, 11);
  const bgPer = Math.floor(bg.length / (o.hubs * phases));
  const hubs: HubInput[] = [];
  const counts: FleetInputs['counts'] = [];
  for (let h = 0; h < o.hubs; h++) {
    const files: string[] = [];
    const n = { device: [] as number[], benign: bgPer, attack: 0 };
    for (let p = 0; p < phases; p++) {
      const slot = h * phases + p;
      const rows: Row[] = [...(p === 1 ? device.b : device.a), ...bg.slice(slot * bgPer, (slot + 1) * bgPer)];
      n.device.push(p === 1 ? device.b.length : device.a.length);
      for (const a of attacks) {
        // Wraps around a capture shorter than hubs × phases × per (the ICMP sweep has 256 flows).
        for (let i = 0; i < per; i++) rows.push(a[(slot * per + i) % a.length]);
      }
      n.attack = per * attacks.length;
      const file = join(dir, `hub${h + 1}-phase${p + 1}.csv`);
      writeFileSync(file, FLOW_CSV_HEADER + '\n' + shuffle(rows, 100 + slot).map((r) => r.line).join('\n') + '\n');
      files.push(file);
    }
    hubs.push({ phases: files });
    counts.push(n);
  }
  const families = new Map<string, string>();
  ATTACKS.forEach((a, i) => attacks[i].forEach((r) => families.set(r.key, a.family)));
  for (const k of deviceKeys) if (families.has(k)) throw new Error(`a device flow ${k} is also an attack flow`);
  return {
    hubs,
    counts,
    isDevice: (key) => deviceKeys.has(key),
    attackFamily: (key) => families.get(key),
  };
}
