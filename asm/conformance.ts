/**
 * Conformance of the flow meter with CICFlowMeter's own output: runs a capture through FlowMeter, matches flows
 * with a reference CSV (either header dialect) by directed 5-tuple and start time, and counts per feature how
 * many matched flows agree within a relative tolerance.
 *
 * The reference writes its start time as local "dd/MM/yyyy hh:mm:ss" (12-hour clock, no AM/PM, the zone of the
 * machine that ran it), so times are compared modulo 12 hours after finding the zone offset that most
 * tuple-matched pairs share.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { canonicalColumn, STAT_FEATURES, type Column } from '../shared/features.ts';
import { strictDecimal } from '../shared/decimal.ts';
import { IdsError } from '../shared/errors.ts';
import type { FlowRecord } from '../shared/packets.ts';
import { readCaptureBuffer } from '../capture/reader.ts';
import { FlowMeter, type MeterMode, type MeterStats } from './flowmeter-host.ts';

export interface ReferenceFlow {
  row: number;
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
  protocol: number;
  /** Seconds since the epoch of the printed time, read as UTC. */
  printedSec: number;
  features: number[];
}

export interface FeatureAgreement {
  feature: Column;
  agree: number;
  total: number;
  /** First disagreement: reference row, our value, theirs. */
  example?: { row: number; ours: number; reference: number };
}

export interface ConformanceReport {
  referenceFlows: number;
  ourFlows: number;
  matched: number;
  /** Reference rows we produced no flow for, and our flows with no reference row. */
  missing: ReferenceFlow[];
  extra: FlowRecord[];
  zoneOffsetSec: number;
  perFeature: FeatureAgreement[];
  meter: MeterStats;
}

/** A reference CSV cell: a decimal or an Infinity/NaN spelling; anything else (hex included) is NaN. */
export function parseNumber(cell: string): number {
  const t = cell.trim();
  if (t === 'Infinity' || t === 'inf' || t === 'Inf') return Infinity;
  if (t === '-Infinity' || t === '-inf') return -Infinity;
  if (t === 'NaN' || t === 'nan' || t === '') return NaN;
  return strictDecimal(t);
}

/** Reads a CICFlowMeter CSV (short v4 or long CIC-IDS2017 headers). */
export function readReferenceCsv(path: string): ReferenceFlow[] {
  const rows: string[][] = parse(readFileSync(path), { relax_column_count: true, skip_empty_lines: true });
  if (rows.length === 0) throw new IdsError('EMPTY_INPUT', `${path}: no rows`);
  const col = new Map<Column, number>();
  rows[0].forEach((h, i) => {
    const c = canonicalColumn(h);
    if (c && !col.has(c)) col.set(c, i); // the long dialect repeats "Fwd Header Length": the first is the feature
  });
  for (const need of ['Src_IP', 'Src_Port', 'Dst_IP', 'Dst_Port', 'Protocol', 'Timestamp', ...STAT_FEATURES] as Column[]) {
    if (!col.has(need)) throw new IdsError('BAD_HEADER', `${path}: no column for ${need}`);
  }
  const at = (r: string[], c: Column) => r[col.get(c)!].trim();
  return rows.slice(1).map((r, i) => {
    const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4}) (\d{1,2}):(\d{2}):(\d{2})/.exec(at(r, 'Timestamp'));
    if (!m) throw new IdsError('BAD_ROW', `${path} row ${i + 2}: Timestamp "${at(r, 'Timestamp')}" is not dd/MM/yyyy hh:mm:ss`);
    const printedSec = Date.UTC(+m[3], +m[2] - 1, +m[1], +m[4], +m[5], +m[6]) / 1000;
    return {
      row: i + 2,
      srcIp: at(r, 'Src_IP'),
      srcPort: Number(at(r, 'Src_Port')),
      dstIp: at(r, 'Dst_IP'),
      dstPort: Number(at(r, 'Dst_Port')),
      protocol: Number(at(r, 'Protocol')),
      printedSec,
      features: STAT_FEATURES.map((c) => parseNumber(at(r, c))),
    };
  });
}

export function agrees(a: number, b: number, relTol: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  return Math.abs(a - b) <= relTol * Math.max(Math.abs(a), Math.abs(b));
}

const HALF_DAY = 12 * 3600;
const tupleKey = (f: { srcIp: string; srcPort: number; dstIp: string; dstPort: number; protocol: number }) =>
  `${f.srcIp}|${f.srcPort}|${f.dstIp}|${f.dstPort}|${f.protocol}`;
const mod = (x: number, m: number) => ((x % m) + m) % m;

/** Runs a capture through a fresh meter and returns every flow (finished and flushed). */
export async function meterCapture(
  capturePath: string,
  mode: MeterMode,
): Promise<{ flows: FlowRecord[]; stats: MeterStats }> {
  const meter = await FlowMeter.create({ mode });
  const flows: FlowRecord[] = [];
  for (const batch of readCaptureBuffer(readFileSync(capturePath))) flows.push(...meter.push(batch));
  flows.push(...meter.flush());
  return { flows, stats: meter.stats() };
}

export function compareFlows(
  ours: FlowRecord[],
  reference: ReferenceFlow[],
  relTol = 1e-6,
): Omit<ConformanceReport, 'meter'> {
  // 1. The zone offset (mod 12 h) most same-tuple pairs share.
  const byTuple = new Map<string, FlowRecord[]>();
  for (const f of ours) {
    const k = tupleKey(f);
    if (!byTuple.has(k)) byTuple.set(k, []);
    byTuple.get(k)!.push(f);
  }
  const votes = new Map<number, number>();
  for (const r of reference) {
    for (const f of byTuple.get(tupleKey(r)) ?? []) {
      const d = mod(Math.floor(f.startUs / 1e6) - r.printedSec, HALF_DAY);
      votes.set(d, (votes.get(d) ?? 0) + 1);
    }
  }
  let zone = 0;
  let best = -1;
  for (const [d, n] of votes) if (n > best) [zone, best] = [d, n];
  // 2. Pair each reference row with an unused flow of the same tuple and start second.
  const used = new Set<FlowRecord>();
  const pairs: [ReferenceFlow, FlowRecord][] = [];
  const missing: ReferenceFlow[] = [];
  for (const r of reference) {
    const cand = (byTuple.get(tupleKey(r)) ?? []).find(
      (f) => !used.has(f) && mod(Math.floor(f.startUs / 1e6) - r.printedSec, HALF_DAY) === zone,
    );
    if (cand) {
      used.add(cand);
      pairs.push([r, cand]);
    } else missing.push(r);
  }
  const perFeature: FeatureAgreement[] = STAT_FEATURES.map((feature, j) => {
    let agree = 0;
    let example: FeatureAgreement['example'];
    for (const [r, f] of pairs) {
      if (agrees(f.features[j], r.features[j], relTol)) agree++;
      else example ??= { row: r.row, ours: f.features[j], reference: r.features[j] };
    }
    return { feature, agree, total: pairs.length, example };
  });
  return {
    referenceFlows: reference.length,
    ourFlows: ours.length,
    matched: pairs.length,
    missing,
    extra: ours.filter((f) => !used.has(f)),
    zoneOffsetSec: zone,
    perFeature,
  };
}

export async function conformanceReport(
  capturePath: string,
  referenceCsv: string,
  mode: MeterMode = 'cicflowmeter-compat',
  relTol = 1e-6,
): Promise<ConformanceReport> {
  const { flows, stats } = await meterCapture(capturePath, mode);
  return { ...compareFlows(flows, readReferenceCsv(referenceCsv), relTol), meter: stats };
}

/** One line per feature: "Flow_Duration 96/96". */
export function formatReport(r: ConformanceReport): string {
  const lines = [
    `reference flows ${r.referenceFlows}, ours ${r.ourFlows}, matched ${r.matched}, missing ${r.missing.length}, extra ${r.extra.length}`,
  ];
  for (const f of r.perFeature) {
    const ex = f.example ? `  (row ${f.example.row}: ours ${f.example.ours}, reference ${f.example.reference})` : '';
    lines.push(`${f.feature.padEnd(18)} ${f.agree}/${f.total}${ex}`);
  }
  return lines.join('\n');
}
