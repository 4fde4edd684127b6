/**
 * tcpdump on the bridge, inside the bridge's namespace: it sees every frame between the lab's hosts (the bridge is
 * promiscuous) and nothing else. Bounded by a packet count and a time limit of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { IdsError } from '../../shared/errors.ts';

export const MAX_PACKETS = 3_000_000;

export interface Recording {
  stop(): Promise<void>;
}

export async function startRecording(swNs: string, file: string, maxSeconds: number): Promise<Recording> {
  const p: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', swNs, 'timeout', '-s', 'INT', String(Math.ceil(maxSeconds)), 'tcpdump', '-i', 'br0', '-n', '-U', '-s', '0', '-c', String(MAX_PACKETS), '-w', file],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((res) => p.once('exit', () => res()));
  await new Promise<void>((res, rej) => {
    let err = '';
    const t = setTimeout(() => rej(new IdsError('STEP_FAILED', `tcpdump did not start within 10 s: ${err}`)), 10_000);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) {
        clearTimeout(t);
        res();
      }
    });
    p.once('exit', (code) => {
      clearTimeout(t);
      rej(new IdsError('STEP_FAILED', `tcpdump exited (${code}): ${err.trim()}`));
    });
  });
  return {
    async stop() {
      p.kill('SIGINT');
      await exited;
    },
  };
}
