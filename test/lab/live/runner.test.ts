/**
 * End to end in the real sealed lab: one short scenario recorded while the host namespace is watched for lab
 * packets. Needs root (network namespaces) and the Debian tools; skips with the lab's own message otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_WASM_PATH } from '../../../asm/flowmeter-host.ts';
import { isIdsError } from '../../../shared/errors.ts';
import { checkNetns, checkSeal, createLab, destroyNamespaces, labNamespaces, nsName } from '../../../lab/live/network.ts';
import { loadScenarios, pickScenarios } from '../../../lab/live/scenario.ts';
import { missingTools, relabel, runLive } from '../../../lab/live/runner.ts';
import { PROJECT_ROOT } from '../../helpers/shared-data.ts';

/** Why the live lab cannot run here, or undefined when it can. */
function unavailable(names: string): string | undefined {
  if (!existsSync(DEFAULT_WASM_PATH)) return 'flow meter wasm missing: run npm run build:asm';
  try {
    checkNetns();
  } catch (e) {
    if (isIdsError(e, 'NO_NETNS')) return e.message;
    throw e;
  }
  const missing = missingTools(pickScenarios(loadScenarios(), names));
  return missing.length ? `live lab tools not installed: ${missing.join(', ')}` : undefined;
}

/** tcpdump in the host namespace on every interface, for any packet to or from the lab's range. */
async function watchHost(): Promise<{ stop(): Promise<string> }> {
  const p = spawn('tcpdump', ['-i', 'any', '-n', '-p', '-l', 'net', '198.18.0.0/15'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (seen += d.toString()).length > 4000 && (seen = seen.slice(0, 4000)));
  await new Promise<void>((res, rej) => {
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) res();
    });
    p.once('exit', () => rej(new Error(`host tcpdump exited: ${err}`)));
  });
  const exited = new Promise((r) => p.once('exit', r));
  return {
    async stop() {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGINT');
      await exited;
      return seen.trim();
    },
  };
}

test('a short scenario is recorded end to end while the host namespace sees none of its packets', async (t) => {
  const why = unavailable('nmap-syn-t4');
  if (why) return t.skip(why);
  const out = mkdtempSync(join(tmpdir(), 'live-e2e-'));
  const before = spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' }).stdout;
  // Other test runs on this machine may have labs of their own up: this one looks only at its own namespaces.
  const id = `e${randomBytes(2).toString('hex')}`;
  const host = await watchHost();
  try {
    const [r] = await runLive({ scenarios: pickScenarios(loadScenarios(), 'nmap-syn-t4'), out, id, log: (l) => t.diagnostic(l) });
    assert.equal(await host.stop(), '', 'packets of 198.18.0.0/15 seen in the host namespace');
    // Other jobs on the machine may add or drop interfaces of their own: what matters is that none of the lab's
    // (the bridge, its ports, the WAN link) and no lab address ever appears in the host namespace.
    const names = (j: string) => (JSON.parse(j) as { ifname: string }[]).map((l) => l.ifname);
    const added = names(spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' }).stdout).filter((n) => !names(before).includes(n));
    assert.deepEqual(added.filter((n) => n === 'br0' || n === 'wan0' || n.startsWith('p-')), [], 'lab interfaces in the host namespace');
    assert.doesNotMatch(spawnSync('ip', ['-4', 'addr', 'show'], { encoding: 'utf8' }).stdout, /inet 198\.1[89]\./, 'a lab address in the host namespace');
    assert.equal(r.exitCode, 0);
    assert.ok(r.corrected.bySubCat['Scan Hostport'] > 1000, JSON.stringify(r.corrected));
    const truth = JSON.parse(readFileSync(join(out, 'nmap-syn-t4', 'truth.json'), 'utf8'));
    assert.equal(truth.attacker, '198.18.0.66');
    assert.match(truth.commandLine, /^nmap -n -sS -T4/);
    assert.ok(truth.endUs > truth.startUs);
    const csv = readFileSync(join(out, 'nmap-syn-t4', 'flows.csv'), 'utf8').trimEnd().split('\n');
    assert.match(csv[0], /,Label,Cat,Sub_Cat$/);
    assert.equal(csv.length - 1, r.corrected.flows);
    assert.ok(csv.some((l) => l.endsWith(',Anomaly,Scan,Scan Hostport')));
    assert.ok(existsSync(join(out, 'nmap-syn-t4', 'flows-compat.csv')));
    // Labelling again from the capture and truth gives the same counts.
    const [again] = await relabel(out);
    assert.deepEqual(again.corrected, r.corrected);
    assert.deepEqual(again.compat, r.compat);
    assert.deepEqual(labNamespaces(id), [], 'the lab is gone after the run');
  } finally {
    await host.stop().catch(() => '');
    rmSync(out, { recursive: true, force: true });
  }
});

test('no lab namespace can route out, and the seal check catches a default route', async (t) => {
  try {
    checkNetns();
  } catch (e) {
    if (isIdsError(e, 'NO_NETNS')) return t.skip(e.message);
    throw e;
  }
  const id = `s${randomBytes(2).toString('hex')}`;
  const lab = createLab(id);
  try {
    for (const ns of Object.values(lab.ns)) {
      const r = spawnSync('ip', ['-n', ns, 'route', 'get', '192.0.2.1'], { encoding: 'utf8' });
      assert.notEqual(r.status, 0, `${ns} routes to 192.0.2.1: ${r.stdout}`);
      assert.doesNotMatch(spawnSync('ip', ['-n', ns, 'route'], { encoding: 'utf8' }).stdout, /default/);
    }
    checkSeal(lab);
    spawnSync('ip', ['-n', lab.ns.gw, 'route', 'add', 'default', 'via', '198.18.254.2']);
    assert.throws(() => checkSeal(lab), (e) => isIdsError(e, 'NOT_SEALED') && /default route/.test(e.message));
  } finally {
    destroyNamespaces(labNamespaces(id));
  }
  assert.deepEqual(labNamespaces(id), []);
});

test('a lab whose runner is killed (SIGKILL) is removed by its watchdog', async (t) => {
  try {
    checkNetns();
  } catch (e) {
    if (isIdsError(e, 'NO_NETNS')) return t.skip(e.message);
    throw e;
  }
  const id = `k${randomBytes(2).toString('hex')}`;
  const script = `import { createLab } from './lab/live/network.ts'; import { startWatchdog } from './lab/live/runner.ts';
    startWatchdog('${id}'); createLab('${id}'); console.log('ready'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && res()));
  assert.ok(labNamespaces(id).includes(nsName(id, 'sw')));
  child.kill('SIGKILL');
  const end = Date.now() + 30_000; // the watchdog polls once a second; the machine may be busy
  while (labNamespaces(id).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(labNamespaces(id), []);
});
