/**
 * `iot-ids aggregator --broker mqtt://HOST:PORT [--db FILE | --db postgres://...] [--http PORT] [--token T]
 *  [--tokens FILE] [--group G] [--prefix P] [--retention-hours H]`: runs the fleet aggregator until SIGINT/SIGTERM.
 */
import { defineCommand } from 'citty';
import { IdsError } from '../shared/errors.ts';
import { startAggregator } from './aggregator.ts';
import { intOption } from '../shared/options.ts';
import { identities, readTokensFile } from './auth.ts';
import { DEFAULT_HEAP_GROWTH, setHeapGrowth } from './heap.ts';
import { DEFAULT_MAX_PENDING } from './consumer.ts';

const intArg = (name: string, v: string | undefined, min: number, max: number): number | undefined =>
  intOption(name, v, { min, max });

export const aggregator = defineCommand({
  meta: { name: 'aggregator', description: 'Fleet aggregator: MQTT → SQLite/PostgreSQL, incidents, HTTP API and live dashboard' },
  args: {
    broker: { type: 'string', description: 'MQTT broker URL (mqtt://, mqtts://, ws://)', default: 'mqtt://127.0.0.1:1883' },
    db: { type: 'string', description: 'SQLite file or postgres://user@host/db[?schema=NAME]', default: 'aggregator.db' },
    http: { type: 'string', description: 'HTTP port for the API and dashboard (0 = any free port)', default: '8080' },
    host: { type: 'string', description: 'HTTP listen address', default: '127.0.0.1' },
    token: { type: 'string', description: 'access token for the API and dashboard, identity "operator" (env IOT_IDS_TOKEN)' },
    tokens: { type: 'string', description: 'file of named tokens, one "name token [read|write]" per line: who marks alerts (env IOT_IDS_TOKENS)' },
    auth: { type: 'boolean', description: 'require a token (--no-auth: open access, local demo only)', default: true },
    group: { type: 'string', description: 'shared-subscription group: instances with the same group split the load' },
    prefix: { type: 'string', description: 'topic prefix', default: 'ids/v1' },
    'client-id': { type: 'string', description: 'MQTT client id (default: iot-ids-aggregator; in a group -GROUP-HOST-HTTPPORT, unique per instance)' },
    'session-expiry': { type: 'string', description: 'MQTT 5 session expiry in seconds (default 604800; 15 in a group, so a lost member\'s share goes back to the hubs)' },
    'max-pending': { type: 'string', description: `messages read and not yet committed before reading pauses (default ${DEFAULT_MAX_PENDING})` },
    username: { type: 'string', description: 'MQTT username (env IOT_IDS_MQTT_USERNAME)' },
    password: { type: 'string', description: 'MQTT password (env IOT_IDS_MQTT_PASSWORD)' },
    'mqtt-version': { type: 'string', description: '5 or 4 (MQTT 3.1.1)', default: '5' },
    'retention-hours': { type: 'string', description: 'roll raw alerts older than this into hourly counts' },
    'feature-retention-days': { type: 'string', description: 'delete alert feature vectors older than this, except marked alerts\' (default 30)' },
    'sample-retention-days': { type: 'string', description: 'delete sampled Normal flows received longer ago than this (default 30)' },
    'samples-per-hub': { type: 'string', description: 'keep at most this many samples per hub, the newest (default 100000)' },
    'heap-growth': { type: 'string', description: `percent the heap may grow past what survived the last full garbage collection (default ${DEFAULT_HEAP_GROWTH}; 0 = V8's own, up to ~4×)` },
    'sqlite-thread': { type: 'boolean', description: 'SQLite: write on a worker thread (keeps the API responsive during long writes)', default: false },
  },
  async run({ args }) {
    const token = args.token ?? process.env.IOT_IDS_TOKEN;
    const tokensFile = args.tokens ?? process.env.IOT_IDS_TOKENS;
    const tokens = tokensFile ? readTokensFile(tokensFile) : undefined;
    identities(token, tokens); // a name or a secret given twice fails here, before anything starts
    if (!args.auth && (token || tokens)) throw new IdsError('BAD_OPTION', '--no-auth and --token/--tokens contradict each other');
    // Open by accident is the failure that matters: without a token the operator must say --no-auth.
    if (args.auth && !token && !tokens) {
      process.stderr.write('iot-ids aggregator: no access token: give --token T (or IOT_IDS_TOKEN), --tokens FILE, or --no-auth for an open local demo\n');
      process.exit(2);
    }
    if (!token && !tokens) {
      console.warn('\n  *** WARNING: the aggregator API and dashboard are OPEN (--no-auth). ***');
      console.warn('  *** Anyone who can reach the HTTP port reads every alert. Local demo only. ***\n');
    }
    const version = intArg('mqtt-version', args['mqtt-version'], 4, 5) as 4 | 5;
    setHeapGrowth(intArg('heap-growth', args['heap-growth'], 0, 1000) ?? DEFAULT_HEAP_GROWTH);
    const agg = await startAggregator({
      broker: args.broker,
      db: args.db,
      http: intArg('http', args.http, 0, 65535),
      host: args.host,
      token: token || undefined,
      tokens,
      group: args.group,
      prefix: args.prefix,
      clientId: args['client-id'],
      username: args.username ?? process.env.IOT_IDS_MQTT_USERNAME,
      password: args.password ?? process.env.IOT_IDS_MQTT_PASSWORD,
      protocolVersion: version,
      sessionExpirySec: intArg('session-expiry', args['session-expiry'], 0, 2 ** 32 - 1),
      maxPending: intArg('max-pending', args['max-pending'], 1, 1_000_000),
      retentionHours: intArg('retention-hours', args['retention-hours'], 1, 24 * 365 * 10),
      featureRetentionDays: intArg('feature-retention-days', args['feature-retention-days'], 1, 365 * 100),
      sampleRetentionDays: intArg('sample-retention-days', args['sample-retention-days'], 1, 365 * 100),
      samplesPerHub: intArg('samples-per-hub', args['samples-per-hub'], 1, 1e9),
      sqliteThread: args['sqlite-thread'],
    });
    console.log(`aggregator: consuming ${agg.consumer.filters.join(', ')} from ${args.broker} into ${agg.store.kind}`);
    if (tokens) console.log(`aggregator: ${tokens.length} named token(s) from ${tokensFile}: ${tokens.map((t) => `${t.name} (${t.permission})`).join(', ')}`);
    if (agg.url) console.log(`aggregator: dashboard and API at ${agg.url}/${token || tokens ? '?token=…' : ''}`);
    await new Promise<void>((resolve) => {
      let closing = false;
      const stop = () => {
        if (closing) return;
        closing = true;
        console.log('aggregator: stopping (committing what was read)');
        agg.close().then(resolve, (e) => (console.error(e), resolve()));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
});

export default aggregator;
