/**
 * `iot-ids lab --seed N --flows N --out DIR [--scenario NAME[,NAME]] [--mode compat|corrected] [--test-devices S
 * --val-devices S] [--share NAME=N,...] [--replay-share NAME=S,...]`: writes labelled pcaps and DIR/flows.csv (all
 * 86 IoTID20 columns), then prints per-class and per-sub-category counts.
 * `iot-ids lab live ...` is the live lab (lab/live/live-command.ts): real tools recorded in a sealed namespace LAN.
 */
import { defineCommand, runCommand } from 'citty';
import { resolve } from 'node:path';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdsError, isIdsError } from '../shared/errors.ts';
import { DEFAULT_DATA, runLab, type LabReport } from './corpus.ts';
import { SCENARIOS } from './scenarios.ts';

import { intOption, numberOption } from '../shared/options.ts';


const intArg = (name: string, v: string | undefined, dflt: number): number => intOption(name, v, { min: 0 }) ?? dflt;

/** `NAME=N[,NAME=N...]` → { NAME: N } (names and values are checked by runLab). */
export function parseAssignments(flag: string, v: string | undefined): Record<string, number> | undefined {
  if (v === undefined || v === '') return undefined;
  const out: Record<string, number> = {};
  for (const part of v.split(',')) {
    const m = /^\s*([\w-]+)\s*=\s*(\S+)\s*$/.exec(part);
    if (!m) throw new IdsError('BAD_OPTION', `--${flag} ${part}: expected SCENARIO=NUMBER`);
    out[m[1]] = numberOption(flag, m[2])!;
  }
  return out;
}

/** --test-devices / --val-devices → the device split, or undefined when neither is given. */
function deviceSplitOf(test: string | undefined, val: string | undefined): { test: number; validation: number } | undefined {
  const t = numberOption('test-devices', test, { min: 0, max: 0.9 });
  const v = numberOption('val-devices', val, { min: 0, max: 0.9 });
  return t === undefined && v === undefined ? undefined : { test: t ?? 0, validation: v ?? 0 };
}

export function formatReport(r: LabReport): string {
  const lines = [`${r.flows} flows in ${r.seconds.toFixed(1)} s`, 'per class:'];
  for (const [k, v] of Object.entries(r.byCat).sort()) lines.push(`  ${k.padEnd(22)} ${String(v).padStart(8)}`);
  lines.push('per sub-category:');
  for (const [k, v] of Object.entries(r.bySubCat).sort()) lines.push(`  ${k.padEnd(22)} ${String(v).padStart(8)}`);
  for (const l of r.live ?? []) lines.push(`live ${l.scenario} (${l.family}): ${l.side}, ${l.used} of ${l.flows} flows`);
  for (const h of r.heldOut ?? []) lines.push(`benign ${h.side}: ${h.devices} devices, ${h.captures} captures, ${h.flows} flows`);
  lines.push('sources:');
  for (const s of r.sources) lines.push(`  ${s.source.padEnd(60)} ${s.subCat.padEnd(22)} ${String(s.flows).padStart(7)} flows ${String(s.packets).padStart(9)} packets`);
  return lines.join('\n');
}

export default defineCommand({
  meta: { name: 'lab', description: 'Generate a labelled IoT traffic corpus (pcaps + IoTID20-format flows.csv)' },
  args: {
    seed: { type: 'string', description: 'random seed (same seed, same bytes)', default: '1' },
    flows: { type: 'string', description: 'flows to make in total', default: '100000' },
    // Not `required`: `lab live --cleanup` has no --out; the check is in run().
    out: { type: 'string', description: 'output folder (required)' },
    scenario: { type: 'string', description: `only these scenarios (comma-separated): ${SCENARIOS.map((s) => s.name).join(', ')}` },
    mode: { type: 'string', description: 'flow meter mode: corrected (default, as hubs run it) or cicflowmeter-compat', default: 'corrected' },
    data: { type: 'string', description: 'shared data folder with pcaps/benign and pcaps/attack', default: DEFAULT_DATA },
    real: { type: 'boolean', description: 'include the real attack captures (--no-real: leave them out)', default: true },
    'test-devices': { type: 'string', description: 'split the real benign captures by device: this share of each collection\'s devices is held out for test (benign-test.csv, benign-test/, split.json), never replayed into flows.csv' },
    'val-devices': { type: 'string', description: 'with the device split: this share is held out for validation (benign-validation.csv)' },
    live: { type: 'string', description: 'mix in live-lab recordings (DIR/<scenario>/flows.csv): whole scenarios split per family between flows.csv and live-test.csv' },
    'live-test': { type: 'string', description: 'with --live: share of each family\'s scenarios held out for test (default 0.3)' },
    'live-max': { type: 'string', description: 'with --live: at most this many flows of one training scenario (default 1500)' },
    'live-skip': { type: 'string', description: 'with --live: leave these scenarios out (comma-separated names)' },
    share: { type: 'string', description: 'override scenario shares of --flows, e.g. normal=4,mitm-arp-spoofing=1' },
    'replay-share': { type: 'string', description: 'override the share of a scenario made from replayed real captures, e.g. mitm-arp-spoofing=0' },
  },
  async run({ args, rawArgs }) {
    // `lab live ...` is the live lab (lab/live/), a command of its own: its options are not the generator's.
    if (rawArgs[0] === 'live') {
      const live = (await import('./live/live-command.ts')).default;
      await runCommand(live, { rawArgs: rawArgs.slice(1) });
      return;
    }
    try {
      if (!args.out) throw new IdsError('BAD_OPTION', '--out DIR is required');
      if (args.mode !== 'cicflowmeter-compat' && args.mode !== 'corrected') {
        throw new IdsError('BAD_OPTION', `--mode ${args.mode}: expected cicflowmeter-compat or corrected`);
      }
      const report = await runLab({
        seed: intArg('seed', args.seed, 1),
        flows: intArg('flows', args.flows, 100_000),
        out: resolve(args.out!),
        scenarios: args.scenario ? args.scenario.split(',').map((s) => s.trim()) : undefined,
        mode: args.mode,
        dataDir: resolve(args.data),
        real: args.real,
        deviceSplit: deviceSplitOf(args['test-devices'], args['val-devices']),
        live: args.live ? {
          dir: resolve(args.live),
          test: numberOption('live-test', args['live-test'], { min: 0, max: 0.9 }) ?? 0.3,
          maxPerScenario: intOption('live-max', args['live-max'], { min: 1 }) ?? 1500,
          skip: args['live-skip'] ? String(args['live-skip']).split(',').map((x) => x.trim()).filter(Boolean) : undefined,
        } : undefined,
        shares: parseAssignments('share', args.share),
        replayShares: parseAssignments('replay-share', args['replay-share']),
        log: (l) => process.stderr.write(`${l}\n`),
      });
      writeFileSync(join(resolve(args.out!), 'report.json'), JSON.stringify({ ...report, seconds: undefined }, null, 2) + '\n');
      process.stdout.write(formatReport(report) + '\n');
    } catch (e) {
      if (isIdsError(e)) {
        process.stderr.write(`lab: ${e.code}: ${e.message}\n`);
        process.exit(2);
      }
      throw e;
    }
  },
});
