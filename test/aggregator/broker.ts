/**
 * Brokers for aggregator tests: our OWN mosquitto on a free port (the system one at 1883 drops queued messages
 * and is shared), or the embedded aedes broker (MQTT 3.1.1) where a real one is not needed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './fixtures.ts';
import { freePort, waitPort } from '../helpers/net.ts';
import { startEmbeddedBroker } from '../../cli/embedded-broker.ts';

export { freePort };

export const MOSQUITTO = process.env.IOT_IDS_MOSQUITTO ?? '/usr/sbin/mosquitto';

export interface TestBroker {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}


export const hasMosquitto = (): boolean => existsSync(MOSQUITTO);

/**
 * Starts mosquitto with an unlimited queue per persistent session and a generous in-flight window.
 * `extra` lines are appended to the config (password_file, acl_file, ...); `anonymous` false turns auth on.
 */
export async function startMosquitto(opts: { extra?: string[]; anonymous?: boolean; inflight?: number } = {}): Promise<TestBroker> {
  const tmp = tempDir('iot-ids-mosq-');
  const port = await freePort();
  const conf = join(tmp.dir, 'mosquitto.conf');
  writeFileSync(conf, [
    `listener ${port} 127.0.0.1`,
    `allow_anonymous ${opts.anonymous ?? true}`,
    'persistence false',
    'max_queued_messages 0',
    `max_inflight_messages ${opts.inflight ?? 1000}`,
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    ...(opts.extra ?? []),
    '',
  ].join('\n'));
  const proc: ChildProcess = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  // Never leave a broker behind when a test run ends early (timeout, failure).
  const reap = () => proc.kill('SIGKILL');
  process.once('exit', reap);
  try {
    await waitPort(port, 5000, 'mosquitto');
  } catch (e) {
    proc.kill('SIGKILL');
    tmp.cleanup();
    throw new Error(`${(e as Error).message}: ${stderr}`);
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dir: tmp.dir,
    stop: async () => {
      process.removeListener('exit', reap);
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
      tmp.cleanup();
    },
  };
}

/** The embedded aedes broker on a free port (MQTT 3.1.1 only, in-memory sessions). */
export async function startAedes(): Promise<TestBroker> {
  const b = await startEmbeddedBroker();
  return { url: b.url, port: b.port, dir: '', stop: () => b.close() };
}

