/** A small generated flow CSV in IoTID20 column names: two (or three) behaviours a model separates in seconds. */
import { writeFileSync } from 'node:fs';
import { Rng } from '../../shared/random.ts';

export const TINY_HEADER = [
  'Flow_ID', 'Src_IP', 'Dst_IP', 'Dst_Port', 'Protocol', 'Flow_Duration', 'Tot_Fwd_Pkts', 'Tot_Bwd_Pkts',
  'TotLen_Fwd_Pkts', 'Flow_Byts/s', 'SYN_Flag_Cnt', 'ACK_Flag_Cnt', 'Label',
];

/** `rows` data rows; labels 'normal' / 'attack' (and 'other' every 50th row when withOther). Returns the text. */
export function tinyFlowsCsv(rows: number, seed: number, opts: { withOther?: boolean; badRows?: boolean } = {}): string {
  const rng = new Rng(seed);
  const lines = [TINY_HEADER.join(',')];
  for (let i = 0; i < rows; i++) {
    const attack = rng.next() < 0.4;
    const label = opts.withOther && i % 50 === 49 ? 'other' : attack ? 'attack' : 'normal';
    const dur = attack ? rng.int(1, 200) : rng.int(5000, 2_000_000);
    const fwd = attack ? 1 : rng.int(2, 40);
    const bytes = attack ? 0 : fwd * rng.int(40, 1400);
    const rate = i % 37 === 0 ? 'inf' : ((bytes * 1e6) / dur).toFixed(2);
    lines.push([
      `f${i}`, `10.0.0.${i % 9}`, `10.0.1.${i % 5}`, attack ? 23 : rng.pick([80, 443, 1883]), 6, dur, fwd,
      attack ? 0 : rng.int(1, 30), bytes, rate, attack ? 1 : 0, attack ? 0 : 1, label,
    ].join(','));
    if (opts.badRows && i === 10) lines.push('x,1,2,3'); // too few cells: skipped and counted
  }
  return lines.join('\n') + '\n';
}

export function writeTinyFlows(path: string, rows: number, seed: number, opts: { withOther?: boolean; badRows?: boolean } = {}): string {
  writeFileSync(path, tinyFlowsCsv(rows, seed, opts));
  return path;
}
