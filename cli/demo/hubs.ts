/**
 * The demo's hubs, two ways: in this process (one Hub per site/hub from edge/hub.ts, fed through a PassThrough:
 * the light default on a small machine), or one `iot-ids hub --pcap -` child process each, fed on its stdin as
 * tcpdump would feed it on a device (--hub-processes). Both read pcap bytes from `input`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, type Writable } from 'node:stream';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { MeterMode } from '../../asm/flowmeter-host.ts';
import { DEMO_KEY_FINGERPRINT, keyFingerprint } from '../../shared/bundle-verify.ts';

/**
 * The demo's hubs sample about one Normal flow in this many: a few per second across the fleet, within each hub's
 * default byte budget, so the aggregator has the fleet's own normal traffic to export for retraining.
 */
export const DEMO_SAMPLE_NORMAL = 20;

export interface HubSpec {
  site: string;
  hub: string;
  bundleDir: string;
  /** PEM text and the file it came from (a child gets the file). */
  publicKeyPem: string;
  publicKeyFile: string;
  broker: string;
  meter: MeterMode;
  statsMs: number;
  /** The demo's temporary folder: child hubs keep their state and log here. */
  workDir: string;
  /** Raw features on every flow alert (hub --attach-features). */
  attachFeatures: boolean;
  /** About one Normal flow in N published as a sample (hub --sample-normal); 0 = off. */
  sampleNormal: number;
  log: (line: string) => void;
}

export interface RunningHub {
  site: string;
  hub: string;
  /** Pcap bytes in. */
  input: Writable;
  /** Child process id (absent for in-process hubs). */
  pid?: number;
  /** Ends the input, lets the hub flush and closes it; resolves when it is gone. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * A hub's state folder inside the demo's temporary folder, its alert sequence starting at the current time in µs:
 * the aggregator drops alerts whose (site, hub, seq) it has stored, so a second demo run against the same
 * PostgreSQL (--db) must not number its alerts from 0 again.
 */
export function hubStateDir(workDir: string, site: string, hub: string): string {
  const dir = join(workDir, 'hubs', `${site}.${hub}`, 'state');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'seq'), String(Date.now() * 1000));
  return dir;
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | undefined> =>
  Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);

export async function startInProcessHub(s: HubSpec): Promise<RunningHub> {
  const { Hub, PACKET_MITM_NEEDS_ARP_MS } = await import('../../edge/hub.ts');
  const hub = await Hub.start({
    bundleDir: s.bundleDir,
    publicKeyPem: s.publicKeyPem,
    broker: s.broker,
    site: s.site,
    hub: s.hub,
    stateDir: hubStateDir(s.workDir, s.site, s.hub),
    overflow: 'drop',
    meterMode: s.meter,
    mitmNeedsArpMs: PACKET_MITM_NEEDS_ARP_MS,
    statsIntervalMs: s.statsMs,
    attachFeatures: s.attachFeatures,
    sampleNormal: s.sampleNormal,
    log: (l) => s.log(`${s.site}/${s.hub}: ${l}`),
  });
  const input = new PassThrough();
  const run = hub.runPackets(input).then(
    (r) => s.log(`${s.site}/${s.hub}: input ended: ${r.packets} packets, ${r.flows} flows, ${r.shed} shed`),
    (e) => s.log(`${s.site}/${s.hub}: input failed: ${(e as Error).message}`),
  ).then(() => true);
  let stopped: Promise<void> | undefined;
  return {
    site: s.site,
    hub: s.hub,
    input,
    stop(timeoutMs = 5000) {
      stopped ??= (async () => {
        if (!input.writableEnded) input.end();
        const t0 = performance.now();
        const lap = (what: string) => s.log(`${s.site}/${s.hub}: ${what} after ${Math.round(performance.now() - t0)} ms`);
        if ((await withTimeout(run, timeoutMs)) === undefined) lap('input still running');
        await withTimeout(hub.finish(Math.min(2000, timeoutMs)), timeoutMs);
        lap('finished');
        await withTimeout(hub.close(), timeoutMs);
        lap('closed');
      })();
      return stopped;
    },
  };
}

const BIN = fileURLToPath(new URL('../../bin/iot-ids.mjs', import.meta.url));

export async function startChildHub(s: HubSpec): Promise<RunningHub> {
  const state = hubStateDir(s.workDir, s.site, s.hub);
  const dir = join(s.workDir, 'hubs', `${s.site}.${s.hub}`);
  const logFile = createWriteStream(join(dir, 'hub.log'));
  const child: ChildProcess = spawn(process.execPath, [
    BIN, 'hub', '--bundle', s.bundleDir, '--pcap', '-', '--broker', s.broker, '--site', s.site, '--hub', s.hub,
    // The demo's committed key is trusted only when named as such (the hub then also keeps its downlink off).
    ...(keyFingerprint(s.publicKeyPem) === DEMO_KEY_FINGERPRINT ? ['--insecure-demo-key'] : ['--key', s.publicKeyFile]),
    '--meter', s.meter, '--queue-dir', state, '--stats-ms', String(s.statsMs),
    ...(s.attachFeatures ? ['--attach-features'] : []), ...(s.sampleNormal ? ['--sample-normal', String(s.sampleNormal)] : []),
  ], { stdio: ['pipe', 'pipe', 'pipe'], cwd: s.workDir, env: { ...process.env, TSX_DISABLE_CACHE: '1' } });
  child.stdout!.pipe(logFile, { end: false });
  child.stderr!.pipe(logFile, { end: false });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let stopped: Promise<void> | undefined;
  child.once('exit', (code, signal) => {
    const msg = `${s.site}/${s.hub}: hub process ${child.pid} exited (${signal ?? code}); its log: ${join(dir, 'hub.log')}`;
    // An exit nobody asked for is news even without verbose logging.
    if (stopped) s.log(msg);
    else process.stderr.write(`demo: ${msg}\n`);
    logFile.end();
  });
  return {
    site: s.site,
    hub: s.hub,
    input: child.stdin!,
    pid: child.pid,
    stop(timeoutMs = 5000) {
      stopped ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        if ((await withTimeout(exited, timeoutMs)) === undefined && child.exitCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      })();
      return stopped;
    },
  };
}
