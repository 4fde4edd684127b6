/**
 * The interface the checks use: `iot-ids aggregator --broker ... --db ... --http ... --token ...` as a child
 * process; hubs publish N alerts; GET /api/summary reports alerts = N with per-class counts; SIGTERM stops it cleanly.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';
import { freePort, hasMosquitto, startAedes, startMosquitto } from './broker.ts';
import { publisher } from './publisher.ts';
import { tempDir, waitFor } from './fixtures.ts';

describe('aggregator command', () => {
  it('runs from the CLI, counts what hubs publish in /api/summary, stops on SIGTERM', async () => {
    const real = hasMosquitto();
    const broker = real ? await startMosquitto() : await startAedes();
    const tmp = tempDir();
    const port = await freePort();
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'aggregator', '--broker', broker.url,
      '--db', join(tmp.dir, 'fleet.db'), '--http', String(port), '--token', 'cli-token', '--client-id', 'cli-agg',
      ...(real ? [] : ['--mqtt-version', '4'])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const pub = await publisher(broker.url);
    try {
      await waitFor(() => out.includes('dashboard and API at'), 30_000, `the aggregator to start: ${out}`);
      const hubs: [string, string][] = [['s1', 'h1'], ['s2', 'h2']];
      const n = (await pub.alerts(hubs, 0, 150, 'Mirai')) + (await pub.alerts(hubs, 150, 200, 'DoS'));
      const summary = async () => {
        const r = await fetch(`http://127.0.0.1:${port}/api/summary`, { headers: { authorization: 'Bearer cli-token' } });
        return (await r.json()) as { alerts: number; classes: Record<string, number> };
      };
      await waitFor(async () => (await summary()).alerts === n, 15_000, `${n} alerts in /api/summary`);
      assert.deepEqual((await summary()).classes, { Mirai: 300, DoS: 100 });
      assert.equal((await fetch(`http://127.0.0.1:${port}/api/summary`)).status, 401);
      // The command runs from its bundle (scripts/build-aggregator.mjs): the dashboard's files are still found.
      const page = await fetch(`http://127.0.0.1:${port}/?token=cli-token`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<html/i);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, out);
      assert.match(out, /stopping/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await pub.close();
      await broker.stop();
      tmp.cleanup();
    }
  });

  it('refuses to start without a token unless --no-auth is given (then it warns loudly)', async () => {
    const broker = await startAedes();
    const tmp = tempDir();
    const run = (extra: string[], env: NodeJS.ProcessEnv = {}) => spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'),
      'aggregator', '--broker', broker.url, '--db', join(tmp.dir, 'x.db'), '--http', '0', '--mqtt-version', '4', '--client-id', 'cli-open',
      ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, IOT_IDS_TOKEN: '', ...env } });
    let child = run([]);
    let out = '';
    const capture = () => {
      out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      return new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    };
    try {
      const refused = await capture();
      assert.equal(refused, 2, out);
      assert.match(out, /no access token: give --token T .* or --no-auth/);
      assert.equal(existsSync(join(tmp.dir, 'x.db')), false, 'nothing opened');
      child = run(['--no-auth']);
      const exited = capture();
      await waitFor(() => out.includes('dashboard and API at'), 30_000, `the aggregator to start: ${out}`);
      assert.match(out, /WARNING: the aggregator API and dashboard are OPEN/);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await broker.stop();
      tmp.cleanup();
    }
  });
});
