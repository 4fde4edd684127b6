/**
 * The whole fleet in one call: an embedded aedes broker (unless a broker URL is given), the aggregator with SQLite
 * in a temporary folder (unless a postgres:// URL is given), and the hubs of the plan, each fed by a Replayer.
 * `close()` stops everything in reverse order and removes the temporary folder; it is safe to call twice.
 */
import { createServer } from 'node:net';
import { startEmbeddedBroker } from '../embedded-broker.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { MeterMode } from '../../asm/flowmeter-host.ts';
import type { Aggregator } from '../../aggregator/aggregator.ts';
import type { TokenIdentity } from '../../aggregator/auth.ts';
import { fleetPlan, TrafficSource, type HubPlan } from './scenario.ts';
import { Replayer } from './replay.ts';
import { realBackground } from './real-background.ts';
import { DEMO_SAMPLE_NORMAL, startChildHub, startInProcessHub, type RunningHub } from './hubs.ts';

const STEP_TIMEOUT_MS = 4000;

export interface DemoOptions {
  bundleDir: string;
  publicKeyFile: string;
  /** HTTP port for the dashboard and API (0 = any free port). */
  http: number;
  broker?: string;
  db?: string;
  sites: number;
  hubsPerSite: number;
  /** Lab seconds per wall second. */
  speed: number;
  seed: number;
  meter: MeterMode;
  hubProcesses: boolean;
  statsMs?: number;
  /** Hubs attach raw features to alerts (default true: the fleet loop's training data). */
  attachFeatures?: boolean;
  /** Hubs sample about one Normal flow in N (default DEMO_SAMPLE_NORMAL; 0 = off). */
  sampleNormal?: number;
  /** Named API tokens for the aggregator (aggregator/auth.ts); default none: the demo's API is open. */
  tokens?: readonly TokenIdentity[];
  /** Shared data folder: its real benign captures join the background when present; undefined = generated only. */
  dataDir?: string;
  log: (line: string) => void;
}

export interface Demo {
  url: string;
  broker: string;
  workDir: string;
  plans: HubPlan[];
  hubs: RunningHub[];
  replayers: Replayer[];
  /** The real capture each hub replays as extra background (null: none). */
  realCaptures: (string | null)[];
  aggregator: Aggregator;
  close(): Promise<void>;
}



/** The port if it is free on 127.0.0.1, else 0 (any free one), so a busy 8080 does not stop the demo. */
export async function portOrAny(port: number): Promise<number> {
  if (port === 0) return 0;
  const s = createServer();
  const ok = await new Promise<boolean>((r) => {
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => r(true));
  });
  if (ok) await new Promise<void>((r) => s.close(() => r()));
  return ok ? port : 0;
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  // Child hubs run in the temporary folder: every path they get must be absolute.
  const o = { ...opts, bundleDir: resolve(opts.bundleDir), publicKeyFile: resolve(opts.publicKeyFile) };
  const workDir = mkdtempSync(join(tmpdir(), 'iot-ids-demo-'));
  const undo: [string, () => Promise<void>][] = [['temporary folder', async () => rmSync(workDir, { recursive: true, force: true })]];
  const unwind = async () => {
    for (const [name, u] of undo.splice(0).reverse()) {
      const t0 = performance.now();
      // Every step is bounded: one part that does not let go must not keep the others (or the folder) alive.
      const done = await Promise.race([
        u().then(() => true, (e) => (o.log(`demo: stopping ${name} failed: ${(e as Error).message}`), true)),
        new Promise<false>((r) => setTimeout(() => r(false), STEP_TIMEOUT_MS).unref()),
      ]);
      o.log(`demo: ${name} ${done ? 'stopped' : 'did not stop (timed out)'} after ${Math.round(performance.now() - t0)} ms`);
    }
  };
  try {
    let brokerUrl = o.broker;
    if (!brokerUrl) {
      const b = await startEmbeddedBroker();
      undo.push(['broker', () => b.close()]);
      brokerUrl = b.url;
    }
    const { startAggregator } = await import('../../aggregator/aggregator.ts');
    const aggregator = await startAggregator({
      broker: brokerUrl,
      db: o.db ?? join(workDir, 'aggregator.db'),
      http: await portOrAny(o.http),
      host: '127.0.0.1',
      // aedes speaks MQTT 3.1.1 only; a real broker gets MQTT 5 (as the aggregator command's default).
      protocolVersion: o.broker ? 5 : 4,
      clientId: 'iot-ids-demo-aggregator',
      tokens: o.tokens,
      log: (l) => o.log(`aggregator: ${l}`),
    });
    // Graceful: the last batch is committed and acknowledged before the aggregator disconnects.
    undo.push(['aggregator', () => aggregator.close()]);

    const publicKeyPem = readFileSync(o.publicKeyFile, 'utf8');
    const plans = fleetPlan(o.sites, o.hubsPerSite, o.seed);
    const hubs: RunningHub[] = [];
    const replayers: Replayer[] = [];
    undo.push(['hubs', async () => {
      for (const r of replayers) r.stop();
      await Promise.all(hubs.map((h) => h.stop()));
    }]);
    const start = o.hubProcesses ? startChildHub : startInProcessHub;
    // In-process hubs load one after another (each verifies the bundle and opens an ONNX session); child hubs
    // are spawned at once and connect when they are ready, their stdin buffering the first packets meanwhile.
    for (const p of plans) hubs.push(await start(spec(p)));
    const labStartUs = Date.UTC(2026, 0, 5, 8) * 1000;
    const realCaptures: (string | null)[] = [];
    const sources = [];
    for (const p of plans) {
      const src = new TrafficSource(p, labStartUs);
      const real = o.dataDir ? await realBackground(o.dataDir, p, labStartUs) : null;
      if (real) src.addFrames(real.frames);
      realCaptures.push(real?.capture ?? null);
      sources.push(src);
    }
    for (let i = 0; i < plans.length; i++) {
      const r = new Replayer(sources[i], hubs[i].input, o.speed);
      replayers.push(r);
      r.start();
    }
    return { url: aggregator.url!, broker: brokerUrl, workDir, plans, hubs, replayers, realCaptures, aggregator, close: unwind };

    function spec(p: HubPlan) {
      return {
        site: p.site, hub: p.hub, bundleDir: o.bundleDir, publicKeyPem, publicKeyFile: o.publicKeyFile,
        broker: brokerUrl!, meter: o.meter, statsMs: o.statsMs ?? 5000, workDir, log: o.log,
        attachFeatures: o.attachFeatures ?? true, sampleNormal: o.sampleNormal ?? DEMO_SAMPLE_NORMAL,
      };
    }
  } catch (e) {
    await unwind();
    throw e;
  }
}
