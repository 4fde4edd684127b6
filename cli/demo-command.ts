/**
 * `iot-ids demo` (npm start): the whole fleet on this machine in one command. See cli/demo/fleet.ts for what runs
 * and cli/demo/scenario.ts for the traffic. Prints the dashboard URL, then a live line of fleet totals from
 * GET /api/summary; Ctrl-C or SIGTERM stops everything and removes the temporary folder.
 */
import { defineCommand } from 'citty';
import { intOption, numberOption } from '../shared/options.ts';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { IdsError, isIdsError } from '../shared/errors.ts';
import type { MeterMode } from '../asm/flowmeter-host.ts';
import { formatSummary, type Summary } from './demo/summary.ts';
import { DEMO_SAMPLE_NORMAL } from './demo/hubs.ts';

export const SHIPPED_BUNDLE = fileURLToPath(new URL('../models/iot-ids-lab-v1', import.meta.url));
const DEFAULT_DATA = fileURLToPath(new URL('../../shared/data', import.meta.url));
const DEV_PUBLIC_KEY = fileURLToPath(new URL('../models/dev-key/public.pem', import.meta.url));

const int = (name: string, v: string | undefined, dflt: number, min: number, max: number): number =>
  intOption(name, v, { min, max }) ?? dflt;
const num = (name: string, v: string | undefined, dflt: number, min: number, max: number): number =>
  numberOption(name, v, { min, max }) ?? dflt;

export default defineCommand({
  meta: { name: 'demo', description: 'Run the whole fleet locally: broker, aggregator + dashboard, hubs replaying lab traffic' },
  args: {
    http: { type: 'string', description: 'dashboard/API port on 127.0.0.1 (default 8080; any free port if busy; 0 = any)' },
    broker: { type: 'string', description: 'use this MQTT broker (mqtt://HOST:PORT) instead of the embedded one' },
    db: { type: 'string', description: 'use this PostgreSQL database (postgres://...) instead of SQLite in the temporary folder' },
    sites: { type: 'string', description: 'sites (default 3)' },
    'hubs-per-site': { type: 'string', description: 'hubs per site (default 2); the first hub of each site is attacked' },
    bundle: { type: 'string', description: 'hub bundle folder (default models/iot-ids-lab-v1)' },
    key: { type: 'string', description: 'Ed25519 public key (PEM) the bundle is signed with (default: the demo dev key)' },
    speed: { type: 'string', description: 'lab seconds per wall second (default 1; 4 shows every attack within a minute)' },
    seed: { type: 'string', description: 'traffic seed (default 1)' },
    meter: { type: 'string', description: 'hub flow meter mode: corrected (default, as the shipped model was trained) or cicflowmeter-compat' },
    'hub-processes': { type: 'boolean', description: 'run every hub as its own `iot-ids hub --pcap -` process fed on stdin (default: in this process)' },
    'stats-ms': { type: 'string', description: 'hub stats period in ms (default 5000)' },
    duration: { type: 'string', description: 'stop by itself after this many seconds (default: run until Ctrl-C)' },
    'summary-ms': { type: 'string', description: 'fleet line period in ms (default 2000)' },
    data: { type: 'string', description: 'shared data folder: its real benign captures join the background when present (default ../shared/data)' },
    real: { type: 'boolean', default: true, description: 'replay a real benign capture per hub when --data has them (--no-real: generated traffic only)' },
    'attach-features': { type: 'boolean', default: true, description: 'hubs attach each flow alert\'s raw features (--no-attach-features: alerts as without the fleet loop)' },
    'sample-normal': { type: 'string', description: `hubs publish about one Normal flow in N with its features on the sample channel (default ${DEMO_SAMPLE_NORMAL}; 0 = off)` },
  },
  async run({ args }) {
    const say = (s: string) => process.stdout.write(s + '\n');
    const warn = (s: string) => process.stderr.write(s + '\n');
    let demo: Awaited<ReturnType<typeof import('./demo/fleet.ts').startDemo>> | undefined;
    try {
      const meter = (args.meter ?? 'corrected') as MeterMode;
      if (meter !== 'corrected' && meter !== 'cicflowmeter-compat') throw new IdsError('BAD_OPTION', `--meter must be corrected or cicflowmeter-compat, got "${args.meter}"`);
      if (args.db && !/^postgres(ql)?:\/\//i.test(args.db)) throw new IdsError('BAD_OPTION', `--db must be a postgres:// URL (the demo's SQLite lives in its temporary folder), got "${args.db}"`);
      if (args.broker && !/^(mqtts?|wss?):\/\//i.test(args.broker)) throw new IdsError('BAD_OPTION', `--broker must be mqtt://HOST:PORT (or mqtts://, ws://, wss://), got "${args.broker}"`);
      const bundleDir = resolve(args.bundle ?? SHIPPED_BUNDLE);
      if (!existsSync(resolve(bundleDir, 'manifest.json'))) throw new IdsError('BAD_OPTION', `--bundle ${bundleDir}: no manifest.json there`);
      const keyFile = resolve(args.key ?? DEV_PUBLIC_KEY);
      if (!existsSync(keyFile)) throw new IdsError('BAD_OPTION', `--key ${keyFile}: no such file`);
      const opts = {
        bundleDir,
        publicKeyFile: keyFile,
        http: int('http', args.http, 8080, 0, 65535),
        broker: args.broker,
        db: args.db,
        sites: int('sites', args.sites, 3, 1, 50),
        hubsPerSite: int('hubs-per-site', args['hubs-per-site'], 2, 1, 20),
        speed: num('speed', args.speed, 1, 0.1, 50),
        seed: int('seed', args.seed, 1, 0, 2 ** 31),
        meter,
        hubProcesses: !!args['hub-processes'],
        statsMs: int('stats-ms', args['stats-ms'], 5000, 100, 600_000),
        attachFeatures: args['attach-features'] !== false,
        sampleNormal: int('sample-normal', args['sample-normal'], DEMO_SAMPLE_NORMAL, 0, 1_000_000),
        dataDir: args.real === false ? undefined : resolve(args.data ?? DEFAULT_DATA),
      };
      const duration = num('duration', args.duration, 0, 0, 7 * 86400);
      const summaryMs = int('summary-ms', args['summary-ms'], 2000, 100, 600_000);
      if (!args.key) warn('demo: bundle verified with the DEMO development key (models/dev-key); never use it for a real fleet');
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const { startDemo } = await import('./demo/fleet.ts');
      demo = await startDemo({ ...opts, log: (l) => { if (process.env.IOT_IDS_DEMO_VERBOSE) warn(l); } });
      const d = demo;
      const attacked = d.plans.filter((p) => p.episodes.length > 0).map((p) => `${p.site}/${p.hub}`);
      say(`demo: dashboard ${d.url}/`);
      say(`demo: API ${d.url}/api/summary`);
      say(`demo: broker ${d.broker}${opts.broker ? '' : ' (embedded aedes)'}, database ${opts.db ? 'PostgreSQL' : 'SQLite'}, temporary folder ${d.workDir}`);
      say(`demo: ${d.plans.length} hubs (${opts.hubProcesses ? 'one process each' : 'in this process'}), attacked: ${attacked.join(', ')}; speed ${opts.speed}x; pid ${process.pid}` +
        (d.hubs.some((h) => h.pid) ? `, hub pids ${d.hubs.map((h) => h.pid).join(' ')}` : ''));
      const real = d.realCaptures.filter((c) => c).length;
      say(`demo: background: generated device life on every hub` +
        (real ? ` + one real benign capture per hub (${real} from ${opts.dataDir})` : ' (no real captures found; --data DIR adds them)'));
      if (opts.attachFeatures || opts.sampleNormal) {
        say(`demo: fleet loop: ${opts.attachFeatures ? 'alerts carry their flow\'s features' : 'no features on alerts'}` +
          (opts.sampleNormal ? `, ~1 in ${opts.sampleNormal} Normal flows sampled (addresses hashed)` : ', no Normal samples'));
      }
      say('demo: Ctrl-C to stop');

      let last: Summary | undefined;
      let stopping = false;
      const tty = process.stdout.isTTY;
      const poll = setInterval(async () => {
        try {
          const res = await fetch(`${d.url}/api/summary`);
          const s = (await res.json()) as Summary;
          if (stopping) return;
          last = s;
          const cpu = process.cpuUsage(cpu0);
          const wall = (performance.now() - t0) / 1000;
          const line = `${formatSummary(last)} | demo cpu ${(((cpu.user + cpu.system) / 1e6 / wall) * 100).toFixed(0)}%`;
          process.stdout.write(tty ? `\r\x1b[2K${line}` : `fleet: ${line}\n`);
        } catch {
          // the server is going away
        }
      }, summaryMs);

      await new Promise<void>((res) => {
        let signals = 0;
        const stop = () => {
          // A second Ctrl-C while shutting down: leave at once (the OS reclaims sockets; the temp folder may stay).
          if (signals++ > 0) {
            warn(`demo: stopping at once; remove ${d.workDir} by hand`);
            process.exit(130);
          }
          res();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        if (duration > 0) setTimeout(stop, duration * 1000).unref();
      });
      clearInterval(poll);
      stopping = true;
      if (tty) process.stdout.write('\n');
      say('demo: stopping');
      const cpu = process.cpuUsage(cpu0);
      const wall = (performance.now() - t0) / 1000;
      const packets = d.replayers.reduce((a, r) => a + r.stats.packets, 0);
      await d.close();
      demo = undefined;
      say(`demo: stopped after ${wall.toFixed(0)} s: ${packets} packets replayed, demo process CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s` +
        ` (${(((cpu.user + cpu.system) / 1e6 / wall) * 100).toFixed(0)}% of one core${opts.hubProcesses ? ', hub processes not included' : ''})`);
      if (last) say(`demo: last summary ${formatSummary(last)}`);
    } catch (e) {
      if (demo) await demo.close();
      if (isIdsError(e)) {
        warn(`demo: ${e.code}: ${e.message}`);
        process.exit(2);
      }
      warn(`demo: ${(e as Error).stack ?? String(e)}`);
      process.exit(1);
    }
    // Sockets the libraries keep (keep-alive fetch, ort threads) must not hold a stopped demo open.
    process.exit(0);
  },
});
