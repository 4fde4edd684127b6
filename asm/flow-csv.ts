/**
 * IoTID20-format CSV rows from FlowRecords: the 83 flow columns of `header.csv` in order (optionally the 3 label
 * columns). Flow_ID is written as CICFlowMeter writes it (the two addresses ordered by their bytes read as signed
 * Java bytes, so both directions of a conversation share one id); Timestamp as IoTID20 prints it
 * (`25/07/2019 03:25:53 AM`), in UTC so the same capture gives the same bytes on every machine.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { FLOW_COLUMNS, LABEL_COLUMNS } from '../shared/features.ts';
import type { FlowRecord } from '../shared/packets.ts';

/** The 83 non-label IoTID20 columns, comma-joined. */
export const FLOW_CSV_HEADER = FLOW_COLUMNS.join(',');
/** All 86 columns: the flow columns then Label,Cat,Sub_Cat. */
export const LABELED_FLOW_CSV_HEADER = [...FLOW_COLUMNS, ...LABEL_COLUMNS].join(',');

export const flowCsvHeader = (withLabels = false): string => (withLabels ? LABELED_FLOW_CSV_HEADER : FLOW_CSV_HEADER);

export interface FlowLabels {
  label: string;
  cat: string;
  subCat: string;
}

/** Address bytes of an IPv4 or IPv6 text (IPv6 with "::" and an embedded IPv4 tail). */
export function ipBytes(ip: string): Uint8Array {
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) return new Uint8Array(0);
  let text = ip;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    tail.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
    text = text.slice(0, -v4[1].length) + '0:0';
  }
  const [head, rest] = text.split('::');
  const parseWords = (s: string | undefined) => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  let words = parseWords(head);
  if (rest !== undefined) {
    const right = parseWords(rest);
    words = [...words, ...new Array(8 - words.length - right.length).fill(0), ...right];
  }
  if (tail.length) words.splice(words.length - 2, 2, ...tail);
  const out = new Uint8Array(16);
  words.slice(0, 8).forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 255;
  });
  return out;
}

/** True when CICFlowMeter would put `a` second in the Flow_ID (first differing byte larger as a signed byte). */
function signedGreater(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return ((a[i] << 24) >> 24) > ((b[i] << 24) >> 24);
  }
  return false;
}

/** Flow_ID as CICFlowMeter writes it: "ipLow-ipHigh-portLow-portHigh-proto". */
export function cicFlowId(r: Pick<FlowRecord, 'srcIp' | 'dstIp' | 'srcPort' | 'dstPort' | 'protocol'>): string {
  if (signedGreater(ipBytes(r.srcIp), ipBytes(r.dstIp))) {
    return `${r.dstIp}-${r.srcIp}-${r.dstPort}-${r.srcPort}-${r.protocol}`;
  }
  return `${r.srcIp}-${r.dstIp}-${r.srcPort}-${r.dstPort}-${r.protocol}`;
}

const pad2 = (n: number) => (n < 10 ? '0' : '') + n;

/** µs since the epoch → `25/07/2019 03:25:53 AM` (UTC). */
export function formatIotid20Timestamp(us: number): string {
  const d = new Date(Math.floor(us / 1000));
  const h = d.getUTCHours();
  const h12 = h % 12 === 0 ? 12 : h % 12;
  return (
    `${pad2(d.getUTCDate())}/${pad2(d.getUTCMonth() + 1)}/${d.getUTCFullYear()} ` +
    `${pad2(h12)}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} ${h < 12 ? 'AM' : 'PM'}`
  );
}

/** A feature value as IoTID20 spells it: integers bare, `inf` for rates over a zero duration, `NaN` for 0/0. */
export function formatValue(v: number): string {
  if (Number.isFinite(v)) return String(v);
  if (Number.isNaN(v)) return 'NaN';
  return v > 0 ? 'inf' : '-inf';
}

const csvCell = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** One CSV row (no newline) in FLOW_CSV_HEADER order, plus the labels when given. */
export function formatFlowCsvRow(rec: FlowRecord, labels?: FlowLabels): string {
  const cells: string[] = [
    cicFlowId(rec),
    rec.srcIp,
    String(rec.srcPort),
    rec.dstIp,
    String(rec.dstPort),
    String(rec.protocol),
    formatIotid20Timestamp(rec.startUs),
  ];
  const f = rec.features;
  for (let i = 0; i < f.length; i++) cells.push(formatValue(f[i]));
  if (labels) cells.push(csvCell(labels.label), csvCell(labels.cat), csvCell(labels.subCat));
  return cells.join(',');
}
