/**
 * Settings of the hub's watchers (edge/watchers/, edge/README.md "Watchers"), as a bundle manifest carries them
 * (`watchers`, set by `bundle build --watchers FILE`) and as `iot-ids hub --watchers` takes them. Each watcher
 * is an object of settings, or `false` to turn it off; a watcher left out keeps its defaults. Every name is
 * checked: a misspelt setting would otherwise leave a default in force without a word.
 */
import { z } from 'zod';
import { IdsError } from './errors.ts';

const n = z.number().finite().min(0);
const port = z.number().int().min(0).max(65535);
const list = <T extends z.ZodType>(item: T) => z.array(item).max(1024);
const watcher = <S extends z.ZodRawShape>(shape: S) => z.union([z.literal(false), z.strictObject(shape).partial()]).optional();

export const WatcherSettingsSchema = z.strictObject({
  arp: watcher({
    gatewayIps: list(z.string().max(64)), graceMs: n, windowMs: n, repeatThreshold: n, requestWindowMs: n, rateLimitMs: n,
    maxEntries: n, multiIps: n, flips: n, gratuitousStorm: n, sweepHosts: n, sweepWindowMs: n,
  }),
  scan: watcher({
    shortWindowMs: n, longWindowMs: n, failures: n, slowFailures: n, echoHosts: n, oddProbes: n, serviceProbes: n,
    probeFollowMs: n, maxSources: n, reportEveryMs: n,
  }),
  propagation: watcher({ ports: list(port), hosts: n, windowMs: n, slowHosts: n, slowWindowMs: n, maxSources: n, reportEveryMs: n }),
  bruteForce: watcher({
    sessions: n, windowMs: n, burstSessions: n, burstWindowMs: n, maxPackets: n, maxSessionMs: n, maxPairs: n, reportEveryMs: n,
  }),
  flood: watcher({
    windowMs: n, synFlood: n, reflection: n, slowReflection: n, slowWindowMs: n, amplification: n, ampPorts: list(port),
    udpFlood: n, udpFloodPorts: n, icmpFlood: n, ackFlood: n, botPayloadBytes: list(port), maxHosts: n, reportEveryMs: n,
  }),
  relay: watcher({ maxDelayMs: n, relays: n, windowMs: n, slots: n, reportEveryMs: n }),
});

export type WatcherSettings = z.infer<typeof WatcherSettingsSchema>;
export const WATCHER_NAMES = Object.keys(WatcherSettingsSchema.shape) as (keyof WatcherSettings)[];

/**
 * `value` as watcher settings, or an IdsError (code `code`) naming the first bad setting and where it came from
 * (`where`: "--watchers", "manifest.json watchers", …), e.g. `--watchers: scan.failure is not a setting of scan
 * (one of shortWindowMs, …)`.
 */
export function parseWatcherSettings(value: unknown, where: string, code: 'BAD_OPTION' | 'BAD_BUNDLE' = 'BAD_OPTION'): WatcherSettings {
  const r = WatcherSettingsSchema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue.path.map(String);
  let what: string;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.join(', ');
    if (path.length === 0) what = `unknown watcher ${keys} (one of ${WATCHER_NAMES.join(', ')})`;
    else what = `${keys} is not a setting of ${path[0]} (one of ${settingNames(path[0]).join(', ')})`;
  } else if (issue.code === 'invalid_union' && path.length === 1) {
    what = `${path[0]} must be an object of settings or false`;
    // The object branch's own complaint (an unknown or bad setting) is the useful one.
    const inner = issue.errors.flat().find((e) => e.code === 'unrecognized_keys' || e.path.length > 0);
    if (inner?.code === 'unrecognized_keys') {
      what = `${inner.keys.join(', ')} is not a setting of ${path[0]} (one of ${settingNames(path[0]).join(', ')})`;
    } else if (inner) what = `${[path[0], ...inner.path.map(String)].join('.')}: ${inner.message}`;
  } else {
    what = `${path.join('.') || 'settings'}: ${issue.message}`;
  }
  throw new IdsError(code, `${where}: ${what}`);
}

/** JSON text (a file's or an option's) as watcher settings; errors name `where`. */
export function watcherSettingsFromJson(text: string, where: string): WatcherSettings {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new IdsError('BAD_OPTION', `${where}: not JSON (${(e as Error).message})`);
  }
  return parseWatcherSettings(value, where);
}

/** The setting names of one watcher. */
export function settingNames(name: string): string[] {
  const w = WatcherSettingsSchema.shape[name as keyof WatcherSettings];
  if (!w) return [];
  const obj = w.unwrap().options[1];
  return Object.keys(obj.shape);
}

/**
 * The manifest's settings with `over` on top, watcher by watcher and setting by setting (`--watchers` changes what
 * it names and keeps the rest of the bundle's); `false` on either side replaces the whole watcher.
 */
export function mergeWatcherSettings(base: WatcherSettings | undefined, over: WatcherSettings | undefined): WatcherSettings | undefined {
  if (!base) return over;
  if (!over) return base;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = (base as Record<string, unknown>)[k];
    out[k] = v === false || b === false || b === undefined ? v : { ...(b as object), ...(v as object) };
  }
  return out as WatcherSettings;
}
