/**
 * Scores captures as a hub sees them: each capture runs through the hub's own packet path (edge/hub.ts with the
 * defaults `iot-ids hub --pcap` uses: corrected meter, watchers, MITM gate, summarising), in process and without a
 * broker (alerts stay in the hub's memory queue), and every flow's final verdict and every watcher finding is
 * tallied against the ground truth:
 *   attack captures (expected.json: families + attackFlows) — attack flows alerted with a right family, by the
 *   model and by a watcher's upgrade, other alerts, and whether the capture counts as caught (≥ 90 % of attack
 *   flows, or a right-family watcher finding when the attack has no IP flows);
 *   benign captures — the share of flows alerted and the share the model alone calls non-Normal;
 *   live-lab recordings (DIR/<scenario>/capture.pcap + truth.json) — detected with a right family, and the time
 *   from the scenario's start to the first right-family alert (capture time).
 */
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { IdsError } from '../shared/errors.ts';
import { NORMAL_LABEL } from '../shared/labels.ts';
import { Hub, PACKET_MITM_NEEDS_ARP_MS, type FlowVerdict, type HubOptions } from './hub.ts';
import type { Finding } from './watchers/index.ts';

export const CAUGHT_SHARE = 0.9;

export interface Expectation {
  families: string[];
  /** 'all', 'none', 'src:IP' or 'dst:IP'. */
  attackFlows: string;
  what?: string;
}

export interface CaptureScore {
  capture: string;
  kind: 'attack' | 'benign' | 'lab';
  packets: number;
  flows: number;
  /** Flows the model alone calls neither Normal nor unsure. */
  modelNonNormal: number;
  alertedFlows: number;
  /** Alerted flows per class and source ("DoS/model"). */
  alertedBy: Record<string, number>;
  attackFlows: number;
  /** Attack flows alerted with a right family: the model's own verdict / a watcher's upgrade. */
  rightByModel: number;
  rightByRule: number;
  /** Alerted flows that are not attack flows or carry a wrong family. */
  otherAlerts: number;
  findings: number;
  rightFindings: number;
  /** Finding kinds raised, with counts. */
  findingKinds: Record<string, number>;
  caught?: boolean;
  /** Lab: seconds from the scenario's start to the first right-family alert (capture time). */
  timeToDetectS?: number | null;
  families?: string[];
  error?: string;
}

export interface ScoreOptions {
  bundleDir: string;
  publicKeyPem: string;
  /** Extra hub options (tests); the defaults are the `--pcap` hub's. */
  hub?: Partial<HubOptions>;
}

function matcher(spec: string): (v: FlowVerdict) => boolean {
  if (spec === 'all') return () => true;
  if (spec === 'none') return () => false;
  const m = /^(src|dst):(.+)$/.exec(spec);
  if (!m) throw new IdsError('BAD_OPTION', `attackFlows "${spec}" must be all, none, src:IP or dst:IP`);
  const ip = m[2];
  return m[1] === 'src' ? (v) => v.src === ip : (v) => v.dst === ip;
}

/** Runs one capture through a fresh hub; `families` empty = benign. `startUs` (lab) starts the detection clock. */
export async function scoreCapture(file: string, name: string, kind: CaptureScore['kind'], exp: Expectation | undefined,
  o: ScoreOptions, startUs?: number): Promise<CaptureScore> {
  const families = new Set(exp?.families ?? []);
  const isAttack = matcher(exp?.attackFlows ?? 'none');
  const s: CaptureScore = {
    capture: name, kind, packets: 0, flows: 0, modelNonNormal: 0, alertedFlows: 0, alertedBy: {}, attackFlows: 0, rightByModel: 0,
    rightByRule: 0, otherAlerts: 0, findings: 0, rightFindings: 0, findingKinds: {},
  };
  let firstUs = Infinity;
  let hub: Hub | undefined;
  const onVerdict = (v: FlowVerdict): void => {
    s.flows++;
    if (v.model !== NORMAL_LABEL && v.model !== 'unsure') s.modelNonNormal++;
    const attack = isAttack(v);
    if (attack) s.attackFlows++;
    if (v.alerted === undefined) return;
    s.alertedFlows++;
    const by = `${v.alerted}/${v.source}`;
    s.alertedBy[by] = (s.alertedBy[by] ?? 0) + 1;
    const right = families.has(v.alerted);
    if (right && hub && startUs !== undefined) firstUs = Math.min(firstUs, hub.watchers.lastUs);
    if (attack && right) {
      if (v.source === 'model') s.rightByModel++;
      else s.rightByRule++;
    } else {
      s.otherAlerts++;
    }
  };
  const onFinding = (f: Finding): void => {
    s.findings++;
    s.findingKinds[f.evidence.kind] = (s.findingKinds[f.evidence.kind] ?? 0) + 1;
    if (families.has(f.class)) {
      s.rightFindings++;
      if (startUs !== undefined && f.tUs >= startUs) firstUs = Math.min(firstUs, f.tUs);
    }
  };
  hub = await Hub.start({
    bundleDir: o.bundleDir,
    publicKeyPem: o.publicKeyPem,
    // Nothing listens there: alerts wait in the memory queue, which is all a score needs.
    broker: 'mqtt://127.0.0.1:9',
    reconnectMs: 60_000,
    site: 'score',
    hub: 'capture',
    statsIntervalMs: 0,
    offlineMax: 1000,
    overflow: 'block',
    mitmNeedsArpMs: PACKET_MITM_NEEDS_ARP_MS,
    meterMode: 'corrected',
    log: () => undefined,
    onVerdict,
    onFinding,
    ...o.hub,
  });
  try {
    const r = await hub.runPackets(file);
    s.packets = r.packets;
    if (r.error) s.error = r.error.message;
    await hub.drain();
  } finally {
    await hub.close();
  }
  if (kind === 'attack') {
    const right = s.rightByModel + s.rightByRule;
    s.caught = exp?.attackFlows === 'none' ? s.rightFindings > 0 : s.attackFlows > 0 && right >= CAUGHT_SHARE * s.attackFlows;
  }
  if (kind === 'lab') {
    s.caught = firstUs !== Infinity;
    s.timeToDetectS = s.caught && startUs !== undefined ? Math.max(0, (firstUs - startUs) / 1e6) : null;
  }
  if (exp) s.families = [...families];
  return s;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : /\.(pcap|pcapng)$/.test(n) ? [p] : [];
  }).sort();
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new IdsError('BAD_OPTION', `${path}: ${(e as Error).message}`);
  }
}

/** Benign captures of one side of a device split (split.json: train, validation, test devices). */
export interface SideScore {
  side: string;
  devices: number;
  captures: number;
  flows: number;
  alerted: number;
  modelNonNormal: number;
  findings: number;
}

export interface ScoreRun {
  attack: CaptureScore[];
  benign: CaptureScore[];
  lab: CaptureScore[];
  /** With `split`: the benign captures per side of the model's device split. */
  sides?: SideScore[];
  totals: {
    attackCaught: number;
    attackCaptures: number;
    benignFlows: number;
    benignAlerted: number;
    benignAlertedShare: number;
    benignModelNonNormalShare: number;
    benignFindings: number;
    labDetected: number;
    labScenarios: number;
    labWithin10s: number;
  };
}

/** Scores the attack captures of an expected.json (beside it: attack/), a benign folder, and lab recordings. */
export async function scoreAll(o: ScoreOptions & { expect?: string; benign?: string; lab?: string; attackDir?: string;
  split?: string; progress?: (s: CaptureScore) => void }): Promise<ScoreRun> {
  const run: ScoreRun = { attack: [], benign: [], lab: [], totals: {
    attackCaught: 0, attackCaptures: 0, benignFlows: 0, benignAlerted: 0, benignAlertedShare: 0, benignModelNonNormalShare: 0,
    benignFindings: 0, labDetected: 0, labScenarios: 0, labWithin10s: 0,
  } };
  if (o.expect) {
    const doc = readJson(o.expect) as { attack?: Record<string, Expectation> };
    if (!doc.attack || typeof doc.attack !== 'object') throw new IdsError('BAD_OPTION', `${o.expect}: no "attack" table`);
    const dir = o.attackDir ?? join(o.expect, '..', 'attack');
    for (const [name, exp] of Object.entries(doc.attack)) {
      const file = join(dir, name);
      if (!existsSync(file)) throw new IdsError('BAD_OPTION', `${file} (named in ${o.expect}) not found`);
      const s = await scoreCapture(file, name, 'attack', exp, o);
      run.attack.push(s);
      o.progress?.(s);
    }
  }
  if (o.benign) {
    for (const file of walk(o.benign)) {
      const s = await scoreCapture(file, relative(o.benign, file), 'benign', undefined, o);
      run.benign.push(s);
      o.progress?.(s);
    }
  }
  if (o.lab) {
    for (const d of readdirSync(o.lab).sort()) {
      const pcap = join(o.lab, d, 'capture.pcap');
      const truthFile = join(o.lab, d, 'truth.json');
      if (!existsSync(pcap) || !existsSync(truthFile)) continue;
      const truth = readJson(truthFile) as { cat?: string; startUs?: number; start?: string; attacker?: string };
      const startUs = truth.startUs ?? (truth.start ? Date.parse(truth.start) * 1000 : undefined);
      if (!truth.cat || startUs === undefined) throw new IdsError('BAD_OPTION', `${truthFile}: needs cat and startUs`);
      // A scenario of the devices' own life (cat Normal) is scored like a benign capture: every alert is false.
      const normal = truth.cat === NORMAL_LABEL;
      const s = normal
        ? await scoreCapture(pcap, basename(join(o.lab, d)), 'benign', undefined, o)
        : await scoreCapture(pcap, basename(join(o.lab, d)), 'lab', { families: [truth.cat], attackFlows: truth.attacker ? `src:${truth.attacker}` : 'none' }, o, startUs);
      run.lab.push(s);
      o.progress?.(s);
    }
  }
  const t = run.totals;
  t.attackCaptures = run.attack.length;
  t.attackCaught = run.attack.filter((s) => s.caught).length;
  for (const s of run.benign) {
    t.benignFlows += s.flows;
    t.benignAlerted += s.alertedFlows;
    t.benignFindings += s.findings;
  }
  t.benignAlertedShare = t.benignFlows ? t.benignAlerted / t.benignFlows : 0;
  if (o.split) run.sides = bySide(run.benign, o.split);
  t.benignModelNonNormalShare = t.benignFlows ? run.benign.reduce((a, s) => a + s.modelNonNormal, 0) / t.benignFlows : 0;
  const attacks = run.lab.filter((s) => s.kind === 'lab');
  t.labScenarios = attacks.length;
  t.labDetected = attacks.filter((s) => s.caught).length;
  t.labWithin10s = attacks.filter((s) => s.caught && (s.timeToDetectS ?? Infinity) <= 10).length;
  return run;
}

/**
 * Benign scores per side of a device split (a model's split.json: `devices[]` with `side` and `files` relative to
 * the benign folder); captures the split does not name are "unsplit".
 */
function bySide(benign: CaptureScore[], splitFile: string): SideScore[] {
  const doc = readJson(splitFile) as { devices?: { id: string; side: string; files: string[] }[] };
  if (!Array.isArray(doc.devices)) throw new IdsError('BAD_OPTION', `${splitFile}: no "devices" list`);
  const of = new Map<string, { side: string; device: string }>();
  for (const d of doc.devices) for (const f of d.files) of.set(f, { side: d.side, device: d.id });
  const sides = new Map<string, SideScore & { ids: Set<string> }>();
  for (const s of benign) {
    const at = of.get(s.capture.split('\\').join('/')) ?? { side: 'unsplit', device: s.capture };
    let x = sides.get(at.side);
    if (!x) sides.set(at.side, x = { side: at.side, devices: 0, captures: 0, flows: 0, alerted: 0, modelNonNormal: 0, findings: 0, ids: new Set() });
    x.ids.add(at.device);
    x.captures++;
    x.flows += s.flows;
    x.alerted += s.alertedFlows;
    x.modelNonNormal += s.modelNonNormal;
    x.findings += s.findings;
  }
  return [...sides.values()].map(({ ids, ...x }) => ({ ...x, devices: ids.size })).sort((a, b) => a.side.localeCompare(b.side));
}

const pct = (a: number, b: number, digits = 1): string => (b ? `${((100 * a) / b).toFixed(digits)} %` : '-');

/** The table a person reads. */
export function formatRun(r: ScoreRun): string {
  const lines: string[] = [];
  if (r.attack.length) {
    lines.push('| attack capture | flows | attack flows | right family: model | right family: rule | other alerts | findings (right family) | caught |');
    lines.push('|---|---|---|---|---|---|---|---|');
    for (const s of r.attack) {
      lines.push(`| ${s.capture} | ${s.flows} | ${s.attackFlows || 'none'} | ${s.rightByModel} | ${s.rightByRule} | ${s.otherAlerts} | ` +
        `${s.findings} (${s.rightFindings}: ${Object.keys(s.findingKinds).join(', ') || '-'}) | ` +
        `${s.caught ? 'yes' : 'NO'}${s.attackFlows ? ` (${pct(s.rightByModel + s.rightByRule, s.attackFlows)})` : ''} |`);
    }
    lines.push(`\ncaught: ${r.totals.attackCaught} of ${r.totals.attackCaptures}\n`);
  }
  if (r.benign.length) {
    const noisy = r.benign.filter((s) => s.alertedFlows > 0 || s.findings > 0).sort((a, b) => b.alertedFlows - a.alertedFlows);
    lines.push(`benign: ${r.benign.length} captures, ${r.totals.benignFlows} flows, alerted ${r.totals.benignAlerted} ` +
      `(${pct(r.totals.benignAlerted, r.totals.benignFlows, 2)}), model alone non-Normal ${(100 * r.totals.benignModelNonNormalShare).toFixed(2)} %, ` +
      `watcher findings ${r.totals.benignFindings}`);
    if (r.sides) {
      lines.push('| benign side (device split) | devices | captures | flows | alerted | model non-Normal | findings |', '|---|---|---|---|---|---|---|');
      for (const x of r.sides) {
        lines.push(`| ${x.side} | ${x.devices} | ${x.captures} | ${x.flows} | ${x.alerted} (${pct(x.alerted, x.flows, 2)}) | ` +
          `${pct(x.modelNonNormal, x.flows, 2)} | ${x.findings} |`);
      }
      lines.push('');
    }
    if (noisy.length) {
      lines.push('| benign capture (with alerts) | flows | alerted | model non-Normal | findings |', '|---|---|---|---|---|');
      for (const s of noisy.slice(0, 20)) {
        lines.push(`| ${s.capture} | ${s.flows} | ${s.alertedFlows} (${pct(s.alertedFlows, s.flows)}) | ${pct(s.modelNonNormal, s.flows)} | ` +
          `${s.findings}${s.findings ? ` (${Object.keys(s.findingKinds).join(', ')})` : ''} |`);
      }
      if (noisy.length > 20) lines.push(`| … ${noisy.length - 20} more | | | | |`);
    }
    lines.push('');
  }
  if (r.lab.length) {
    lines.push('| lab scenario | family | flows | alerted | findings | detected | time to detect |', '|---|---|---|---|---|---|---|');
    for (const s of r.lab) {
      if (s.kind === 'benign') {
        lines.push(`| ${s.capture} | Normal (no attack) | ${s.flows} | ${s.alertedFlows} (false) | ${Object.keys(s.findingKinds).join(', ') || '-'} | - | - |`);
        continue;
      }
      lines.push(`| ${s.capture} | ${s.families?.join('/')} | ${s.flows} | ${s.alertedFlows} | ${Object.keys(s.findingKinds).join(', ') || '-'} | ` +
        `${s.caught ? 'yes' : 'NO'} | ${s.timeToDetectS == null ? '-' : `${s.timeToDetectS.toFixed(1)} s`} |`);
    }
    lines.push(`\nlab: ${r.totals.labDetected} of ${r.totals.labScenarios} detected, ${r.totals.labWithin10s} within 10 s\n`);
  }
  return lines.join('\n');
}
