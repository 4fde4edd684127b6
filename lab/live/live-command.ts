/**
 * `iot-ids lab live --scenarios NAME[,NAME…]|all --out DIR` records real attack tools in the sealed lab:
 * DIR/<scenario>/{capture.pcap,truth.json,flows.csv,flows-compat.csv,tool.log} and DIR/report.json.
 * `iot-ids lab live --cleanup` removes what a crashed run left (every iotlab-* namespace and its processes).
 * `iot-ids lab live --list` prints the scenarios. `iot-ids lab live --relabel DIR` labels a recording again.
 */
import { defineCommand } from 'citty';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isIdsError, type ErrorCode } from '../../shared/errors.ts';
import { loadScenarios, pickScenarios } from './scenario.ts';
import { cleanupAll, relabel, runLive, type ScenarioReport } from './runner.ts';
import { mixRecordings } from './mix.ts';
import { DEFAULT_DATA } from '../corpus.ts';
import { formatReport } from '../lab-command.ts';

export function formatLiveReport(rs: ScenarioReport[], seconds: number): string {
  const lines = [`${rs.length} scenarios in ${seconds.toFixed(0)} s`];
  lines.push(`${'scenario'.padEnd(26)} ${'Sub_Cat'.padEnd(24)} ${'packets'.padStart(8)} ${'flows'.padStart(7)} ${'attack'.padStart(7)} ${'Normal'.padStart(7)}  compat flows`);
  for (const r of rs) {
    const c = r.corrected;
    lines.push(`${r.name.padEnd(26)} ${r.subCat.padEnd(24)} ${String(c.packets).padStart(8)} ${String(c.flows).padStart(7)} ${String(c.bySubCat[r.subCat] ?? 0).padStart(7)} ${String(c.bySubCat.Normal ?? 0).padStart(7)}  ${r.compat.flows}`);
  }
  return lines.join('\n');
}

/** The live lab's own failures (shared/errors.ts): told by code, exit 3 when the machine lacks something, else 2. */
const LAB_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['NO_NETNS', 'MISSING_TOOL', 'NOT_SEALED', 'BAD_SCENARIO', 'STEP_FAILED']);

export default defineCommand({
  meta: { name: 'live', description: 'Record real attack tools (nmap, masscan, hping3, arpspoof, a Mirai-style bot) in a sealed virtual IoT LAN' },
  args: {
    scenarios: { type: 'string', description: 'all, or a comma list of scenario names (see --list)', default: 'all' },
    out: { type: 'string', description: 'output folder' },
    cleanup: { type: 'boolean', description: 'remove every lab namespace a crashed run left, then exit', default: false },
    list: { type: 'boolean', description: 'list the scenarios and exit', default: false },
    relabel: { type: 'string', description: 'label a finished recording DIR again from its captures and truth files' },
    mix: { type: 'boolean', description: 'after recording, mix DIR with the synthetic lab and the real benign captures (benign split by device) into DIR/corpus.csv; held-out sides in DIR/corpus/', default: false },
    data: { type: 'string', description: 'with --mix: shared data folder with pcaps/benign and pcaps/attack', default: DEFAULT_DATA },
  },
  async run({ args }) {
    try {
      if (args.cleanup) {
        const gone = cleanupAll();
        process.stdout.write(gone.length ? `removed ${gone.length} lab namespaces: ${gone.join(' ')}\n` : 'no lab namespaces left\n');
        return;
      }
      if (args.relabel) {
        const dir = resolve(args.relabel);
        const t0 = Date.now();
        const reports = await relabel(dir);
        writeFileSync(join(dir, 'report.json'), JSON.stringify(reports, null, 2) + '\n');
        process.stdout.write(formatLiveReport(reports, (Date.now() - t0) / 1000) + '\n');
        return;
      }
      const all = loadScenarios();
      if (args.list) {
        for (const s of all) process.stdout.write(`${s.name.padEnd(26)} ${s.cat.padEnd(18)} ${s.subCat.padEnd(24)} ${s.description}\n`);
        return;
      }
      if (!args.out) {
        process.stderr.write('lab live: --out DIR is required\n');
        process.exit(2);
      }
      const out = resolve(args.out);
      mkdirSync(out, { recursive: true });
      const t0 = Date.now();
      const reports = await runLive({ scenarios: pickScenarios(all, args.scenarios), out, log: (l) => process.stderr.write(`${l}\n`) });
      writeFileSync(join(out, 'report.json'), JSON.stringify(reports, null, 2) + '\n');
      process.stdout.write(formatLiveReport(reports, (Date.now() - t0) / 1000) + '\n');
      if (args.mix) {
        const mixed = await mixRecordings({ dir: out, dataDir: resolve(args.data), log: (l) => process.stderr.write(`${l}\n`) });
        process.stdout.write(`\ncorpus: ${join(out, 'corpus.csv')}\n${formatReport(mixed)}\n`);
      }
    } catch (e) {
      if (isIdsError(e) && LAB_CODES.has(e.code)) {
        process.stderr.write(`lab live: ${e.code}: ${e.message}\n`);
        process.exit(e.code === 'NO_NETNS' || e.code === 'MISSING_TOOL' ? 3 : 2);
      }
      throw e;
    }
  },
});
