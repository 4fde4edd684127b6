/**
 * `iot-ids aggregator --tokens FILE` as a child process: each named token is its own identity (GET /api/whoami),
 * `--token` beside it is "operator", anything else is 401; a bad file stops the command before anything starts,
 * naming the line.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';
import { freePort, startAedes } from './broker.ts';
import { tempDir, waitFor } from './fixtures.ts';

describe('aggregator --tokens', () => {
  it('serves each named token as its identity, --token as operator; refuses a bad file naming the line', async () => {
    const broker = await startAedes();
    const tmp = tempDir();
    const port = await freePort();
    const good = join(tmp.dir, 'tokens');
    writeFileSync(good, '# operators of the fleet\nalice alice-secret-1\nnoc   noc-secret-22 read\n');
    const bad = join(tmp.dir, 'bad-tokens');
    writeFileSync(bad, 'alice alice-secret-1\nbob alice-secret-1\n');
    const run = (extra: string[]) => {
      const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'aggregator', '--broker', broker.url,
        '--db', join(tmp.dir, 'x.db'), '--http', String(port), '--mqtt-version', '4', '--client-id', 'cli-tokens', ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, IOT_IDS_TOKEN: '', IOT_IDS_TOKENS: '' } });
      const out = { text: '' };
      child.stdout.on('data', (d) => (out.text += d));
      child.stderr.on('data', (d) => (out.text += d));
      return { child, out, exited: new Promise<number | null>((r) => child.once('exit', (code) => r(code))) };
    };
    const refused = run(['--tokens', bad]);
    let ok: ReturnType<typeof run> | undefined;
    try {
      assert.notEqual(await refused.exited, 0);
      assert.match(refused.out.text, /bad-tokens:2: the token of "bob" is already another name's/);
      assert.equal(existsSync(join(tmp.dir, 'x.db')), false, 'nothing opened');

      ok = run(['--tokens', good, '--token', 'op-secret-333']);
      await waitFor(() => ok!.out.text.includes('dashboard and API at'), 30_000, `the aggregator to start: ${ok.out.text}`);
      assert.match(ok.out.text, /2 named token\(s\) from .*: alice \(write\), noc \(read\)/);
      assert.ok(!ok.out.text.includes('alice-secret-1'), 'secrets are not printed');
      const who = async (token?: string) => {
        const r = await fetch(`http://127.0.0.1:${port}/api/whoami`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
        return r.status === 200 ? ((await r.json()) as { name: string; permission: string }) : r.status;
      };
      assert.deepEqual(await who('alice-secret-1'), { name: 'alice', permission: 'write' });
      assert.deepEqual(await who('noc-secret-22'), { name: 'noc', permission: 'read' });
      assert.deepEqual(await who('op-secret-333'), { name: 'operator', permission: 'write' });
      assert.equal(await who('nobody-secret'), 401);
      assert.equal(await who(), 401);
      ok.child.kill('SIGTERM');
      assert.equal(await ok.exited, 0, ok.out.text);
    } finally {
      if (refused.child.exitCode === null) refused.child.kill('SIGKILL');
      if (ok && ok.child.exitCode === null) ok.child.kill('SIGKILL');
      await broker.stop();
      tmp.cleanup();
    }
  });
});
