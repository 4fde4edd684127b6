/**
 * `iot-ids rollout --bundle DIR --broker URL --db DB --canary SITE/HUB[,...] --watch 30m [--previous DIR]
 *  [--sign-key PEM | --insecure-demo-key] --key PEM`: a canary rollout with automatic promotion or rollback
 * (rollout.ts). Progress on stderr, the final state as JSON on stdout; exit 0 promoted, 3 rolled back or refused by the
 * pre-flight check (preflight.ts), 1 otherwise.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineCommand } from 'citty';
import { IdsError } from '../../shared/errors.ts';
import { intOption, numberOption } from '../../shared/options.ts';
import { isValidId } from '../../shared/topics.ts';
import { DEFAULT_LIMITS } from './decision.ts';
import { parseDuration } from './duration.ts';
import { DEFAULT_PREFLIGHT } from './preflight.ts';
import { abandonRollout, exitCodeOf, runRollout } from './rollout.ts';
import type { HubRef } from './store.ts';

const DEMO_PUBLIC = fileURLToPath(new URL('../../models/dev-key/public.pem', import.meta.url));
const DEMO_PRIVATE = fileURLToPath(new URL('../../models/dev-key/private.pem', import.meta.url));

export function parseCanaries(v: unknown): HubRef[] {
  const items = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x ?? '').split(',')).map((x) => x.trim()).filter(Boolean);
  const out: HubRef[] = [];
  for (const it of items) {
    const [site, hub, ...rest] = it.split('/');
    if (rest.length || !isValidId(site ?? '') || !isValidId(hub ?? '')) {
      throw new IdsError('BAD_OPTION', `--canary "${it}": expected SITE/HUB (ids of 1-64 letters, digits, '.', '_' or '-')`);
    }
    if (!out.some((h) => h.site === site && h.hub === hub)) out.push({ site, hub });
  }
  return out;
}

function readPem(option: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new IdsError('BAD_OPTION', `--${option} ${path}: ${(e as Error).message}`);
  }
}

/** The hubs' public key and the optional signing key, from --key / --sign-key / --insecure-demo-key. */
function keys(a: { key?: string; 'sign-key'?: string; 'insecure-demo-key'?: boolean }, log: (l: string) => void) {
  if (a['insecure-demo-key']) {
    if (a.key) throw new IdsError('BAD_OPTION', 'give --key or --insecure-demo-key, not both');
    if (!existsSync(DEMO_PUBLIC)) throw new IdsError('BAD_OPTION', '--insecure-demo-key: no demo key in this build; give --key');
    log('warning: --insecure-demo-key: verifying and re-signing with the DEMO key (models/dev-key/), whose private half is public; ' +
      'hubs on it take downlinks only with --demo-key-downlink');
    return {
      publicKeyPem: readPem('key', DEMO_PUBLIC),
      privateKeyPem: a['sign-key'] ? readPem('sign-key', a['sign-key']) : readPem('sign-key', DEMO_PRIVATE),
    };
  }
  if (!a.key) throw new IdsError('BAD_OPTION', '--key PEM (the hubs\' Ed25519 public key: the bundles are verified with it) is required');
  return { publicKeyPem: readPem('key', a.key), privateKeyPem: a['sign-key'] ? readPem('sign-key', a['sign-key']) : undefined };
}

const duration = (name: string, v: string | undefined, dflt: string): number => parseDuration(v ?? dflt, `--${name}`);

export const rollout = defineCommand({
  meta: { name: 'rollout', description: 'Canary rollout of a bundle: watch the canaries, then promote to every hub or roll back' },
  args: {
    bundle: { type: 'string', description: 'the new bundle folder' },
    previous: { type: 'string', description: 'bundle to roll back to (default: the bundle of the last promoted rollout)' },
    canary: { type: 'string', description: 'canary hubs: SITE/HUB[,SITE/HUB...]' },
    watch: { type: 'string', description: 'how long to watch the canaries (30m, 90s, 1h, 500ms)', default: '30m' },
    baseline: { type: 'string', description: 'the canaries\' own history the window is compared with', default: '1h' },
    broker: { type: 'string', description: 'MQTT broker URL', default: 'mqtt://127.0.0.1:1883' },
    db: { type: 'string', description: 'the aggregator\'s database: SQLite file or postgres://...[?schema=S]', default: 'aggregator.db' },
    key: { type: 'string', description: 'Ed25519 public key (PEM) the hubs verify bundles with (required, or --insecure-demo-key)' },
    'sign-key': { type: 'string', description: 'Ed25519 private key (PEM): a rollback re-releases the previous bundle under a higher release, signed again' },
    'insecure-demo-key': { type: 'boolean', description: 'use the committed demo key pair (models/dev-key/): demos only' },
    'max-rate-ratio': { type: 'string', description: `alert rate allowed as a multiple of the canary's baseline and of the fleet median (default ${DEFAULT_LIMITS.maxRateRatio})` },
    'max-fp-share': { type: 'string', description: `largest rise of the share of alerts marked false positive (default ${DEFAULT_LIMITS.maxFpShare})` },
    'min-alerts': { type: 'string', description: `verdicts in the window below which the rate never counts as worse (default ${DEFAULT_LIMITS.minAlerts})` },
    'max-recall-drop': { type: 'string', description: `pre-flight: largest drop of a confirmed class's recall against the previous bundle (default ${DEFAULT_PREFLIGHT.maxRecallDrop})` },
    'max-false-alert-rise': { type: 'string', description: `pre-flight: largest rise of the share of Normal rows (marked false positive or sampled) alerted on (default ${DEFAULT_PREFLIGHT.maxFalseAlertRise})` },
    'min-support': { type: 'string', description: `pre-flight: labelled rows a class needs to count (default ${DEFAULT_PREFLIGHT.minSupport})` },
    'preflight-rows': { type: 'string', description: `pre-flight: most marked alerts read, newest first (default ${DEFAULT_PREFLIGHT.maxRows})` },
    'preflight-samples': { type: 'string', description: `pre-flight: most Normal samples read, drawn at random (default ${DEFAULT_PREFLIGHT.samples})` },
    'skip-preflight': { type: 'boolean', description: 'start without the pre-flight check on the fleet\'s labelled rows (recorded in the rollout)' },
    'install-timeout': { type: 'string', description: 'how long canaries (and a rollback) may take to report the bundle', default: '5m' },
    'promote-timeout': { type: 'string', description: 'how long the other hubs may take to report the bundle', default: '10m' },
    poll: { type: 'string', description: 'how often the database is read', default: '5s' },
    resume: { type: 'string', description: 'continue rollout ID (after the process stopped)' },
    abandon: { type: 'string', description: 'give up rollout ID (state failed; nothing is sent: the canaries keep what they run)' },
    prefix: { type: 'string', description: 'topic prefix', default: 'ids/v1' },
    username: { type: 'string', description: 'MQTT username (env IOT_IDS_MQTT_USERNAME)' },
    password: { type: 'string', description: 'MQTT password (env IOT_IDS_MQTT_PASSWORD)' },
    'mqtt-version': { type: 'string', description: '5 or 4 (MQTT 3.1.1, e.g. the embedded demo broker)', default: '5' },
    retain: { type: 'boolean', description: 'publish bundles retained (--no-retain: only hubs connected now get them)', default: true },
  },
  async run({ args }) {
    const log = (l: string) => process.stderr.write(l + '\n');
    const abandon = intOption('abandon', args.abandon, { min: 1 });
    if (abandon !== undefined) {
      const r = await abandonRollout(args.db, abandon);
      log(`rollout ${r.id}: abandoned (was ${(r.decision as { abandoned: { state: string } }).abandoned.state}); the canaries keep the bundle they run`);
      process.stdout.write(JSON.stringify(r) + '\n');
      return;
    }
    const resume = intOption('resume', args.resume, { min: 1 });
    if (resume !== undefined && (args.bundle || args.canary || args.previous)) {
      throw new IdsError('BAD_OPTION', '--resume continues a stored rollout: give no --bundle, --canary or --previous with it');
    }
    const result = await runRollout({
      bundleDir: args.bundle,
      previousDir: args.previous,
      canaries: args.canary === undefined ? undefined : parseCanaries(args.canary),
      resume,
      db: args.db,
      mqtt: {
        broker: args.broker, prefix: args.prefix, retain: args.retain,
        username: args.username ?? process.env.IOT_IDS_MQTT_USERNAME,
        password: args.password ?? process.env.IOT_IDS_MQTT_PASSWORD,
        protocolVersion: intOption('mqtt-version', args['mqtt-version'], { min: 4, max: 5 }) as 4 | 5,
      },
      ...keys(args, log),
      watchMs: duration('watch', args.watch, '30m'),
      baselineMs: duration('baseline', args.baseline, '1h'),
      installTimeoutMs: duration('install-timeout', args['install-timeout'], '5m'),
      promoteTimeoutMs: duration('promote-timeout', args['promote-timeout'], '10m'),
      pollMs: duration('poll', args.poll, '5s'),
      limits: {
        maxRateRatio: numberOption('max-rate-ratio', args['max-rate-ratio'], { min: 1 }) ?? DEFAULT_LIMITS.maxRateRatio,
        maxFpShare: numberOption('max-fp-share', args['max-fp-share'], { min: 0, max: 1 }) ?? DEFAULT_LIMITS.maxFpShare,
        minAlerts: numberOption('min-alerts', args['min-alerts'], { min: 0 }) ?? DEFAULT_LIMITS.minAlerts,
      },
      preflight: {
        maxRecallDrop: numberOption('max-recall-drop', args['max-recall-drop'], { min: 0, max: 1 }) ?? DEFAULT_PREFLIGHT.maxRecallDrop,
        maxFalseAlertRise: numberOption('max-false-alert-rise', args['max-false-alert-rise'], { min: 0, max: 1 }) ?? DEFAULT_PREFLIGHT.maxFalseAlertRise,
        minSupport: intOption('min-support', args['min-support'], { min: 1 }) ?? DEFAULT_PREFLIGHT.minSupport,
        maxRows: intOption('preflight-rows', args['preflight-rows'], { min: 0, max: 1_000_000 }) ?? DEFAULT_PREFLIGHT.maxRows,
        samples: intOption('preflight-samples', args['preflight-samples'], { min: 0, max: 100_000 }) ?? DEFAULT_PREFLIGHT.samples,
      },
      skipPreflight: args['skip-preflight'] === true,
      log,
    });
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exitCode = exitCodeOf(result.state);
  },
});

export default rollout;
