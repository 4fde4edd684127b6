/**
 * Scenarios are data: one JSON file each in lab/live/scenarios/, so a user adds one without code. A file names
 * the labels its flows get, the command the attacker runs (with {host} placeholders), its time bound, and which
 * flows are the attack's (`attack`: endpoint pairs; by default every flow of the attacker's address).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { z } from 'zod';
import { IdsError } from '../../shared/errors.ts';
import { HOSTS } from './network.ts';

const CLASSES = ['attacker', 'internet', 'lan', 'any'];
const isEndpoint = (e: string) => CLASSES.includes(e) || HOSTS.some((h) => h.name === e) || /^198\.1[89]\.\d+\.\d+(\/\d+)?$/.test(e);

/** Names a scenario uses that the lab does not have (checked at load, not after a run). */
function unknownNames(s: Scenario): string[] {
  const bad = [...s.victims, ...s.attack.flatMap((r) => r.between)].filter((e) => !isEndpoint(e));
  bad.push(...s.during.map((d) => d.host).filter((h) => !HOSTS.some((x) => x.name === h)));
  return bad;
}

export const SCENARIO_DIR = fileURLToPath(new URL('./scenarios', import.meta.url));

const Endpoint = z.string().min(1);
const Rule = z.object({
  /** Two endpoints, either order: `attacker`, a host name, `internet`, `lan`, `any`, or an address/CIDR. */
  between: z.tuple([Endpoint, Endpoint]),
  proto: z.number().int().optional(),
  /** Matches when either port of the flow is this one. */
  port: z.number().int().optional(),
});

export const ScenarioSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  description: z.string(),
  cat: z.enum(['Normal', 'Scan', 'DoS', 'Mirai', 'MITM ARP Spoofing']),
  subCat: z.string().min(1),
  tool: z.string().min(1),
  /** argv run in the attacker's namespace; `{cam}` → the host's address, `{attacker}`, `{mac:gw}`, `{file:NAME}`. */
  command: z.array(z.string()).min(1),
  /** Hard bound: the command is interrupted after this many seconds. */
  seconds: z.number().positive().max(60),
  victims: z.array(z.string()).min(1),
  /** Extra load during the attack: a device behaviour run in a host's namespace (e.g. a victim's browsing). */
  during: z.array(z.object({ host: z.string(), behaviour: z.string() })).default([]),
  attack: z.array(Rule).default([{ between: ['attacker', 'any'] }]),
  /** Small files the command reads (hex), written beside the run; referred to as {file:NAME}. */
  files: z.record(z.string(), z.string().regex(/^[0-9a-f]*$/)).default({}),
});

export type Scenario = z.infer<typeof ScenarioSchema>;
export type MatchRule = z.infer<typeof Rule>;

export function loadScenarios(dir = SCENARIO_DIR): Scenario[] {
  const out: Scenario[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    } catch (e) {
      throw new IdsError('BAD_SCENARIO', `${f}: not JSON: ${(e as Error).message}`);
    }
    const r = ScenarioSchema.safeParse(raw);
    if (!r.success) throw new IdsError('BAD_SCENARIO', `${f}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const bad = unknownNames(r.data);
    if (bad.length) throw new IdsError('BAD_SCENARIO', `${f}: unknown hosts or endpoints ${bad.join(', ')}`);
    if (`${r.data.name}.json` !== f) throw new IdsError('BAD_SCENARIO', `${f}: name "${r.data.name}" must match the file name`);
    out.push(r.data);
  }
  return out;
}

/** `all` or a comma list of names → the scenarios, in file order; unknown names are an error naming them. */
export function pickScenarios(all: Scenario[], spec: string): Scenario[] {
  if (spec === 'all') return all;
  const names = spec.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !all.some((s) => s.name === n));
  if (unknown.length || names.length === 0) {
    throw new IdsError('BAD_SCENARIO', `--scenarios ${spec}: unknown ${unknown.join(', ') || '(none given)'}; expected all or some of ${all.map((s) => s.name).join(', ')}`);
  }
  return all.filter((s) => names.includes(s.name));
}
