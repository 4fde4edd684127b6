/**
 * The live lab run: build the sealed LAN, start the devices, then for each scenario record the bridge while the
 * attacker's tool runs (bounded), write truth.json and the labelled flows beside the pcap. The lab is torn down on
 * return, on an error, on Ctrl-C/SIGTERM, and, should the runner itself be killed, by a watchdog process that
 * waits for the runner's pid to disappear.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { IdsError } from '../../shared/errors.ts';
import { labelCapture, makeTruth, writeTruth, type LabelCounts, type Truth } from './labels.ts';
import { checkNetns, checkSeal, createLab, destroyNamespaces, HOSTS, labNamespaces, macOf, NETNS_PREFIX, type Lab } from './network.ts';
import { startRecording } from './recorder.ts';
import type { Scenario } from './scenario.ts';
import { startDevice, startServices, MOSQUITTO } from './services.ts';

const BOT = fileURLToPath(new URL('./bot/mirai.ts', import.meta.url));
const RAW = fileURLToPath(new URL('./bot/raw.py', import.meta.url));
/** Background only, before and after the attack, so every capture has a calm start and the attack's tail. */
const LEAD_MS = 2000;
const TAIL_MS = 3000;

export interface LiveOptions {
  scenarios: Scenario[];
  out: string;
  log?: (line: string) => void;
  /** The run id in the namespace names (default: random); tests pass one to look for their own namespaces. */
  id?: string;
}

export interface ScenarioReport {
  name: string;
  cat: string;
  subCat: string;
  seconds: number;
  exitCode: number | null;
  corrected: LabelCounts;
  compat: LabelCounts;
}

/** Tools by the argv[0] scenarios use; the bot's two parts are ours. */
function toolArgv(argv0: string): string[] {
  if (argv0 === 'mirai-bot') return [process.execPath, '--import', 'tsx', BOT];
  if (argv0 === 'mirai-raw') return ['/usr/bin/python3', RAW];
  return [argv0];
}

const PACKAGES: Record<string, string> = { nmap: 'nmap', masscan: 'masscan', hping3: 'hping3', arpspoof: 'dsniff', tcpdump: 'tcpdump', '/usr/bin/python3': 'python3', [MOSQUITTO]: 'mosquitto' };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A command name on PATH (plus the sbin folders, where hping3 and arpspoof live), or an absolute path. */
const installed = (t: string): boolean =>
  t.includes('/') ? executable(t) : [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].some((d) => d && executable(join(d, t)));

/** The tools the scenarios need that this machine lacks, each with the Debian package that has it. */
export function missingTools(scenarios: Scenario[]): string[] {
  const need = new Set(['ip', 'timeout', 'tcpdump', MOSQUITTO, ...scenarios.map((s) => toolArgv(s.command[0])[0])]);
  return [...need].filter((t) => !installed(t)).map((t) => `${t} (Debian package ${PACKAGES[t] ?? t})`);
}

export function expand(argv: string[], files: Record<string, string>): string[] {
  return argv.map((a) =>
    a.replace(/\{(file|mac)?:?([a-z0-9.-]+)\}/g, (_m, kind: string | undefined, name: string) => {
      if (kind === 'file') {
        if (!files[name]) throw new IdsError('BAD_SCENARIO', `{file:${name}}: no such file in the scenario's files`);
        return files[name];
      }
      const h = name === 'attacker' ? HOSTS.find((x) => x.role === 'attacker') : HOSTS.find((x) => x.name === name);
      if (!h) throw new IdsError('BAD_SCENARIO', `{${name}}: no lab host of that name`);
      return kind === 'mac' ? macOf(h) : h.ip;
    }),
  );
}

/** Starts a detached watchdog that removes this run's namespaces once the runner's pid is gone. */
export function startWatchdog(id: string): void {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; for ns in $(ls /run/netns 2>/dev/null | grep '^${NETNS_PREFIX}${id}-'); do ip netns pids "$ns" | xargs -r kill -9; ip netns del "$ns"; done`;
  spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

/** Removes every lab namespace on this machine (a crashed run's leftovers; also a running lab's). */
export function cleanupAll(): string[] {
  const left = labNamespaces();
  destroyNamespaces(left);
  return left;
}

function runTool(lab: Lab, argv: string[], seconds: number, logFile: string): Promise<number | null> {
  return new Promise((res) => {
    const p = spawn('ip', ['netns', 'exec', lab.ns.atk, 'timeout', '-s', 'INT', '-k', '8', String(seconds), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let size = 0;
    const keep = (d: Buffer) => {
      if (size < 1 << 20) chunks.push(d), (size += d.length);
    };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    p.once('exit', (code) => {
      writeFileSync(logFile, Buffer.concat(chunks));
      res(code);
    });
  });
}

/** Meters a scenario's capture in both modes and writes its labelled flows beside it. */
async function labelScenario(dir: string, truth: Truth): Promise<ScenarioReport> {
  const pcap = join(dir, 'capture.pcap');
  const corrected = await labelCapture(pcap, join(dir, 'flows.csv'), truth, 'corrected');
  const compat = await labelCapture(pcap, join(dir, 'flows-compat.csv'), truth, 'cicflowmeter-compat');
  return { name: truth.scenario, cat: truth.cat, subCat: truth.subCat, seconds: (truth.endUs - truth.startUs) / 1e6, exitCode: truth.exitCode, corrected, compat };
}

/**
 * Labels a finished recording again from its captures and truth files (after a change of the labelling code):
 * rewrites every scenario's flows.csv and flows-compat.csv and DIR/report.json; the captures are not touched.
 */
export async function relabel(out: string): Promise<ScenarioReport[]> {
  const reports: ScenarioReport[] = [];
  for (const name of readdirSync(out).sort()) {
    const dir = join(out, name);
    if (!existsSync(join(dir, 'truth.json')) || !existsSync(join(dir, 'capture.pcap'))) continue;
    reports.push(await labelScenario(dir, JSON.parse(readFileSync(join(dir, 'truth.json'), 'utf8')) as Truth));
  }
  if (reports.length === 0) throw new IdsError('BAD_SCENARIO', `${out}: no scenario folders with capture.pcap and truth.json`);
  return reports;
}

async function runScenario(lab: Lab, s: Scenario, out: string, tmp: string): Promise<ScenarioReport> {
  const dir = join(out, s.name);
  mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {};
  for (const [name, hex] of Object.entries(s.files)) {
    files[name] = join(tmp, `${s.name}-${name}`);
    writeFileSync(files[name], Buffer.from(hex, 'hex'));
  }
  const argv = expand(s.command, files);
  const full = [...toolArgv(argv[0]), ...argv.slice(1)];
  const pcap = join(dir, 'capture.pcap');
  const rec = await startRecording(lab.ns.sw, pcap, s.seconds + 60);
  const helpers = await Promise.all(s.during.map((d) => startDevice(lab.ns[d.host], d.behaviour, s.seconds + 1)));
  let startUs = 0;
  let endUs = 0;
  let exitCode: number | null = null;
  try {
    await new Promise((r) => setTimeout(r, LEAD_MS));
    startUs = Date.now() * 1000;
    exitCode = await runTool(lab, full, s.seconds, join(dir, 'tool.log'));
    endUs = Date.now() * 1000;
    await new Promise((r) => setTimeout(r, TAIL_MS));
  } finally {
    helpers.forEach((h) => h.kill('SIGTERM'));
    await rec.stop();
  }
  // The command line as run, with our own scripts named relative to the project.
  const commandLine = [argv[0], ...argv.slice(1)].join(' ');
  const truth = makeTruth(s, commandLine, startUs, endUs, exitCode);
  writeTruth(join(dir, 'truth.json'), truth);
  return labelScenario(dir, truth);
}

export async function runLive(opts: LiveOptions): Promise<ScenarioReport[]> {
  const log = opts.log ?? (() => {});
  checkNetns();
  const missing = missingTools(opts.scenarios);
  if (missing.length) throw new IdsError('MISSING_TOOL', `not installed: ${missing.join(', ')}`);
  const id = opts.id ?? randomBytes(2).toString('hex');
  const tmp = mkdtempSync(join(tmpdir(), 'iot-ids-live-'));
  startWatchdog(id);
  const onSignal = (sig: NodeJS.Signals) => {
    destroyNamespaces(labNamespaces(id));
    rmSync(tmp, { recursive: true, force: true });
    process.stderr.write(`live lab: ${sig}: lab removed\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const reports: ScenarioReport[] = [];
  try {
    const lab = createLab(id);
    log(`lab ${id}: ${Object.keys(lab.ns).length} namespaces, sealed`);
    const budget = opts.scenarios.reduce((a, s) => a + s.seconds + 30, 60);
    const services = await startServices(lab, tmp, budget);
    log(`devices up (bounded to ${budget} s)`);
    try {
      // Give MQTT sessions and first lookups a moment, so the first capture is not all start-up.
      await new Promise((r) => setTimeout(r, 2000));
      for (const s of opts.scenarios) {
        checkSeal(lab);
        let r: ScenarioReport;
        try {
          r = await runScenario(lab, s, opts.out, tmp);
        } catch (e) {
          // One scenario's failure (a tool that crashed, a capture that broke) must not lose the others' records.
          if (!(e instanceof IdsError) || e.code !== 'STEP_FAILED') throw e;
          log(`${s.name}: FAILED: ${e.message}`);
          continue;
        }
        reports.push(r);
        const attack = r.corrected.bySubCat[s.subCat] ?? 0;
        log(`${s.name}: ${r.seconds.toFixed(1)} s, ${r.corrected.packets} packets, ${r.corrected.flows} flows (${attack} ${s.subCat}, ${r.corrected.bySubCat.Normal ?? 0} Normal)`);
      }
    } finally {
      await services.stop();
    }
  } finally {
    destroyNamespaces(labNamespaces(id));
    rmSync(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return reports;
}
