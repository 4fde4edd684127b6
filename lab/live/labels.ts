/**
 * Ground truth and flow labels. A scenario's truth.json says who attacked whom with what and when; a flow is the
 * attack's when its two endpoints match one of the scenario's `attack` rules and it started inside the attack's
 * time window (plus a short tail for replies and retransmissions); every other flow is the devices' own life,
 * Normal. Flows come from the project's flow meter (asm/flowmeter-host.ts) in both of its modes.
 */
import { createWriteStream, writeFileSync } from 'node:fs';
import { FlowMeter, type MeterMode } from '../../asm/flowmeter-host.ts';
import { formatFlowCsvRow, LABELED_FLOW_CSV_HEADER, type FlowLabels } from '../../asm/flow-csv.ts';
import { readCapture } from '../../capture/reader.ts';
import type { FlowRecord } from '../../shared/packets.ts';
import { STAT_FEATURES } from '../../shared/features.ts';
import { HOSTS, INTERNET_CIDR, LAN_CIDR, hostByName } from './network.ts';
import type { MatchRule, Scenario } from './scenario.ts';

export interface Truth {
  scenario: string;
  description: string;
  cat: string;
  subCat: string;
  tool: string;
  commandLine: string;
  attacker: string;
  victims: { host: string; ip: string }[];
  /** µs since the epoch, the clock of the capture's timestamps. */
  startUs: number;
  endUs: number;
  /** ISO forms of the same times, for people. */
  start: string;
  end: string;
  exitCode: number | null;
  attack: MatchRule[];
  /** The lab's host names and addresses. */
  hosts: Record<string, string>;
}

/** The lab's hosts as a table for truth readers (names ↔ addresses). */
export const HOST_TABLE: Record<string, string> = Object.fromEntries(HOSTS.map((h) => [h.name, h.ip]));

/** Flows that start this long after the attack ended still belong to it (late replies, retransmissions). */
export const TAIL_US = 3_000_000;

const toInt = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);

function inCidr(ip: string, cidr: string): boolean {
  const [base, len] = cidr.split('/');
  const bits = Number(len ?? 32);
  const size = 2 ** (32 - bits);
  return Math.floor(toInt(ip) / size) === Math.floor(toInt(base) / size);
}

/** Does address `ip` match endpoint `e` (a name, a class of addresses, or an address/CIDR)? */
export function endpointMatches(e: string, ip: string, attacker: string): boolean {
  if (e === 'any') return true;
  if (e === 'attacker') return ip === attacker;
  if (e === 'internet') return inCidr(ip, INTERNET_CIDR);
  if (e === 'lan') return inCidr(ip, LAN_CIDR);
  if (/^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(e)) return inCidr(ip, e);
  return hostByName(e).ip === ip;
}

export function ruleMatches(r: MatchRule, f: Pick<FlowRecord, 'srcIp' | 'dstIp' | 'srcPort' | 'dstPort' | 'protocol'>, attacker: string): boolean {
  // In compat mode the meter writes protocol 0 for anything but TCP/UDP, as CICFlowMeter does; in the lab (IPv6
  // off) that is ICMP.
  const proto = f.protocol === 0 ? 1 : f.protocol;
  if (r.proto !== undefined && r.proto !== proto) return false;
  if (r.port !== undefined && r.port !== f.srcPort && r.port !== f.dstPort) return false;
  const [a, b] = r.between;
  return (
    (endpointMatches(a, f.srcIp, attacker) && endpointMatches(b, f.dstIp, attacker)) ||
    (endpointMatches(a, f.dstIp, attacker) && endpointMatches(b, f.srcIp, attacker))
  );
}

const DURATION = STAT_FEATURES.indexOf('Flow_Duration');

export function labelFor(t: Truth, f: FlowRecord): FlowLabels {
  // A flow belongs to the attack when its life overlaps the attack's window: a session that began before an ARP
  // poisoning and went on through it was relayed from then on (flows started after the window are not).
  const endUs = f.startUs + (DURATION >= 0 ? (f.features[DURATION] ?? 0) : 0);
  const inWindow = endUs >= t.startUs - 1_000_000 && f.startUs <= t.endUs + TAIL_US;
  if (t.cat !== 'Normal' && inWindow && t.attack.some((r) => ruleMatches(r, f, t.attacker))) return { label: 'Anomaly', cat: t.cat, subCat: t.subCat };
  return { label: 'Normal', cat: 'Normal', subCat: 'Normal' };
}

export function makeTruth(s: Scenario, commandLine: string, startUs: number, endUs: number, exitCode: number | null): Truth {
  return {
    scenario: s.name,
    description: s.description,
    cat: s.cat,
    subCat: s.subCat,
    tool: s.tool,
    commandLine,
    attacker: hostByName('atk').ip,
    victims: s.victims.map((v) => ({ host: v, ip: v === 'internet' ? INTERNET_CIDR : v === 'lan' ? LAN_CIDR : hostByName(v).ip })),
    hosts: HOST_TABLE,
    startUs,
    endUs,
    start: new Date(startUs / 1000).toISOString(),
    end: new Date(endUs / 1000).toISOString(),
    exitCode,
    attack: s.attack,
  };
}

export function writeTruth(path: string, t: Truth): void {
  writeFileSync(path, JSON.stringify(t, null, 2) + '\n');
}

export interface LabelCounts {
  packets: number;
  flows: number;
  /** Flows per Sub_Cat (Normal included). */
  bySubCat: Record<string, number>;
}

/** Meters the capture in one mode and writes the labelled flows; returns the counts. */
export async function labelCapture(pcap: string, csvPath: string, truth: Truth, mode: MeterMode): Promise<LabelCounts> {
  const meter = await FlowMeter.create({ mode });
  const out = createWriteStream(csvPath);
  const counts: LabelCounts = { packets: 0, flows: 0, bySubCat: {} };
  const emit = (recs: FlowRecord[]) => {
    if (recs.length === 0) return;
    let text = '';
    for (const r of recs) {
      const l = labelFor(truth, r);
      counts.bySubCat[l.subCat] = (counts.bySubCat[l.subCat] ?? 0) + 1;
      text += formatFlowCsvRow(r, l) + '\n';
    }
    counts.flows += recs.length;
    out.write(text);
  };
  out.write(LABELED_FLOW_CSV_HEADER + '\n');
  for await (const b of readCapture(pcap)) {
    counts.packets += b.count;
    emit(meter.push(b));
  }
  emit(meter.flush());
  await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
  return counts;
}
