/**
 * Starts the devices: mosquitto on the broker, and one process of lab/live/device/main.ts per host (its services
 * and background traffic) inside the host's namespace. Every process is bounded by its own time limit (and a
 * `timeout -s KILL` around it), so nothing outlives the lab even if the runner dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IdsError } from '../../shared/errors.ts';
import type { Lab } from './network.ts';

const DEVICE_MAIN = fileURLToPath(new URL('./device/main.ts', import.meta.url));
export const MOSQUITTO = '/usr/sbin/mosquitto';

/** Hosts that run a device process (the broker runs mosquitto; gateway and attacker run nothing of their own). */
export const DEVICE_HOSTS = ['inet', 'cam', 'dvr', 'plug', 'sensor', 'bulb', 'phone'] as const;

export interface Services {
  stop(): Promise<void>;
}

function inNs(ns: string, seconds: number, argv: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', ns, 'timeout', '-s', 'KILL', String(Math.ceil(seconds + 10)), ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  p.stderr!.resume();
  return p;
}

/** Runs one device behaviour for `seconds`; resolves once it says it is up. */
export function startDevice(ns: string, behaviour: string, seconds: number): Promise<ChildProcess> {
  const p = inNs(ns, seconds, [process.execPath, '--import', 'tsx', DEVICE_MAIN, '--as', behaviour, '--seconds', String(seconds)]);
  return new Promise((res, rej) => {
    let out = '';
    // Generous: seven TypeScript processes start at once, and a shared 2-core machine can be slow to give them time.
    const t = setTimeout(() => rej(new IdsError('STEP_FAILED', `device ${behaviour} did not start within 120 s`)), 120_000);
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('up')) {
        clearTimeout(t);
        res(p);
      }
    });
    p.once('exit', (code) => {
      clearTimeout(t);
      rej(new IdsError('STEP_FAILED', `device ${behaviour} exited (${code}) before it was up`));
    });
  });
}

export async function startServices(lab: Lab, runDir: string, seconds: number): Promise<Services> {
  const conf = join(runDir, 'mosquitto.conf');
  writeFileSync(conf, 'listener 1883 0.0.0.0\nallow_anonymous true\nmax_connections 64\nmax_queued_messages 100\npersistence false\nlog_dest none\n');
  const procs: ChildProcess[] = [inNs(lab.ns.broker, seconds, [MOSQUITTO, '-c', conf])];
  try {
    procs.push(...(await Promise.all(DEVICE_HOSTS.map((h) => startDevice(lab.ns[h], h, seconds)))));
  } catch (e) {
    procs.forEach((p) => p.kill('SIGKILL'));
    throw e;
  }
  return {
    async stop() {
      await Promise.all(
        procs.map((p) =>
          p.exitCode !== null || p.signalCode !== null
            ? undefined
            : new Promise<void>((res) => {
                p.once('exit', () => res());
                p.kill('SIGTERM');
              }),
        ),
      );
    },
  };
}
