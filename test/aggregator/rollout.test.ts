/**
 * `iot-ids rollout` end to end on one embedded broker, one aggregator (SQLite) and real hubs (edge/hub.ts, the
 * tiny fixture model) fed flows all along: a bundle a canary refuses (signed with a key it does not trust) is
 * rolled back; a good bundle is promoted to every hub (the aggregator restarting mid-window); a bundle that makes its canary alert ten times more is
 * rolled back automatically (by the CLI, exit 3), the canary ending on the previous bundle re-released under a
 * higher release; GET /api/rollouts shows each; `--resume` continues a rollout left in its window (in process, and
 * after a SIGKILLed CLI); a canary that goes degraded is rolled back before its window ends; without a signing key
 * a hub keeps refusing the older release. Windows are seconds long (a real fleet watches for 30 minutes).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hub } from '../../edge/hub.ts';
import { startAggregator, type Aggregator } from '../../aggregator/aggregator.ts';
import { abandonRollout, runRollout, type RolloutOptions } from '../../aggregator/rollout/rollout.ts';
import { RolloutStore } from '../../aggregator/rollout/store.ts';
import { isIdsError } from '../../shared/errors.ts';
import {
  FIXTURE_CSV_HEADER, buildFixtureBundle, devKeyPair, fixtureCsvRow, type KeyPair,
} from '../edge/fixtures/bundle.ts';
import { startAedes, type TestBroker } from './broker.ts';
import { tempDir, waitFor } from './fixtures.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';

const tmp = tempDir('iot-ids-rollout-e2e-');
const quiet = () => undefined;
let broker: TestBroker;
let agg: Aggregator;
let db: string;
let keys: KeyPair;
const bundles: Record<string, string> = {};
const hubs = new Map<string, Hub>();
let feeding = true;
let feeder: Promise<void>;

/** A bundle whose first two features are swapped: the Normal rows' long durations now drive the DoS output. */
const worseBundle = (dir: string, k: KeyPair): Promise<string> => buildFixtureBundle(dir, k, 'fixture-3-worse', '2026-12-02T00:00:00Z', [0, 1]);

async function startHub(site: string, hub: string, bundleDir: string, publicKeyPem: string): Promise<void> {
  const h = await Hub.start({
    bundleDir, publicKeyPem, broker: broker.url, site, hub, stateDir: join(tmp.dir, 'hubs', `${site}.${hub}`),
    statsIntervalMs: 500, log: quiet, overflow: 'block',
  });
  hubs.set(`${site}/${hub}`, h);
}

/** Every 200 ms each hub reads 10 Normal flows and 1 DoS flow: 5 alerts/s with a sound model. */
async function feed(): Promise<void> {
  let i = 0;
  while (feeding) {
    const rows = [...Array.from({ length: 10 }, () => fixtureCsvRow(i++, 0)), fixtureCsvRow(i++, 1)];
    const csv = FIXTURE_CSV_HEADER + '\n' + rows.join('\n') + '\n';
    await Promise.all([...hubs.values()].map((h) => h.runFlows(Readable.from([csv]))));
    await new Promise((r) => setTimeout(r, 200));
  }
}

const storedBundle = async (name: string): Promise<string | null | undefined> => {
  const rs = await RolloutStore.open(db);
  try {
    return (await rs.hubs()).find((h) => `${h.site}/${h.hub}` === name)?.bundle;
  } finally {
    await rs.close();
  }
};

/** `iot-ids rollout ARGS` as a process; `done` resolves with its exit code and output. */
function cli(args: string[]) {
  const child = spawn(process.execPath, ['bin/iot-ids.mjs', 'rollout', ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise<{ code: number | null; out: string; err: string }>((r) => child.on('exit', (code) => r({ code, out, err })));
  return { child, done };
}

const settings = (): Omit<RolloutOptions, 'bundleDir' | 'canaries'> => ({
  db, mqtt: { broker: broker.url, protocolVersion: 4 }, publicKeyPem: keys.publicKeyPem, privateKeyPem: keys.privateKeyPem,
  watchMs: 3000, baselineMs: 3000, installTimeoutMs: 15_000, promoteTimeoutMs: 15_000, pollMs: 200,
  limits: { maxRateRatio: 3, maxFpShare: 0.1, minAlerts: 5 }, log: quiet,
});

before(async () => {
  keys = devKeyPair();
  const other = devKeyPair();
  const b = (name: string) => join(tmp.dir, 'bundles', name);
  mkdirSync(join(tmp.dir, 'bundles'), { recursive: true });
  bundles.v1 = await buildFixtureBundle(b('v1'), keys, 'fixture-1', '2026-11-30T00:00:00Z');
  bundles.v1other = await buildFixtureBundle(b('v1-other-key'), other, 'fixture-1', '2026-11-30T00:00:00Z');
  bundles.v2 = await buildFixtureBundle(b('v2'), keys, 'fixture-2', '2026-12-01T00:00:00Z');
  bundles.v3 = await worseBundle(b('v3'), keys);
  bundles.v4 = await buildFixtureBundle(b('v4'), keys, 'fixture-4', '2026-12-03T00:00:00Z');
  bundles.v5 = await buildFixtureBundle(b('v5'), keys, 'fixture-5', '2026-12-04T00:00:00Z');
  bundles.v6 = await buildFixtureBundle(b('v6'), keys, 'fixture-6', '2026-12-05T00:00:00Z');
  broker = await startAedes();
  // IOT_IDS_ROLLOUT_TEST_DB=postgres://...?schema=S runs the same file on PostgreSQL.
  db = process.env.IOT_IDS_ROLLOUT_TEST_DB ?? join(tmp.dir, 'fleet.db');
  agg = await startAggregator({ broker: broker.url, db, protocolVersion: 4, clientId: 'rollout-agg', http: 0, token: 't', log: quiet });
  await startHub('s1', 'h1', bundles.v1, keys.publicKeyPem);
  await startHub('s1', 'h2', bundles.v1, keys.publicKeyPem);
  await startHub('s2', 'h3', bundles.v1, keys.publicKeyPem);
  // Trusts another signer: every bundle of this operator fails its signature check there.
  await startHub('s3', 'odd', bundles.v1other, other.publicKeyPem);
  feeder = feed();
  await waitFor(async () => (await Promise.all(['s1/h1', 's1/h2', 's2/h3', 's3/odd'].map(storedBundle))).every((v) => v === 'fixture-1'), 15_000, 'hubs stored');
  // The baseline: a few seconds of every hub on v1.
  await new Promise((r) => setTimeout(r, 3000));
});

after(async () => {
  feeding = false;
  await feeder?.catch(() => undefined);
  for (const h of hubs.values()) await h.close();
  await agg?.close();
  await broker?.stop();
  tmp.cleanup();
});

test('refuses to start without a rollback target, with a signing key that is not the hubs\' key, or on an unknown canary', async () => {
  const base = { ...settings(), bundleDir: bundles.v2 };
  await assert.rejects(runRollout({ ...base, canaries: [{ site: 's1', hub: 'h1' }] }), (e) => isIdsError(e, 'BAD_OPTION') && /--previous/.test(e.message));
  await assert.rejects(runRollout({ ...base, previousDir: bundles.v1, canaries: [{ site: 's1', hub: 'nope' }] }),
    (e) => isIdsError(e, 'BAD_OPTION') && /s1\/nope: not known/.test(e.message));
  await assert.rejects(runRollout({ ...base, previousDir: bundles.v1, canaries: [{ site: 's1', hub: 'h1' }], privateKeyPem: devKeyPair().privateKeyPem }),
    (e) => isIdsError(e, 'BAD_OPTION') && /--sign-key is not the private half of --key/.test(e.message));
  await assert.rejects(runRollout({ ...base, previousDir: bundles.v1other, canaries: [{ site: 's1', hub: 'h1' }] }),
    (e) => isIdsError(e, 'BAD_BUNDLE') && /--previous.*signature/.test(e.message));
  const rs = await RolloutStore.open(db);
  assert.deepEqual(await rs.list(), [], 'nothing recorded, nothing sent');
  await rs.close();
});

test('a canary that refuses the bundle (bad signature) is rolled back at once', { timeout: 30_000 }, async () => {
  const t0 = Date.now();
  const r = await runRollout({ ...settings(), bundleDir: bundles.v2, previousDir: bundles.v1, canaries: [{ site: 's3', hub: 'odd' }] });
  assert.equal(r.state, 'rolled-back');
  const d = r.decision as unknown as { reasons: string[]; install: { refused: { hub: string; error: string }[] } };
  assert.equal(d.install.refused[0].hub, 's3/odd');
  assert.match(d.install.refused[0].error ?? '', /signature/);
  assert.match(d.reasons[0], /s3\/odd refused the bundle/);
  assert.ok(Date.now() - t0 < 10_000, 'no watch window after a refusal');
  assert.equal(hubs.get('s3/odd')!.modelVersion, 'fixture-1');
  // The odd hub would refuse every later bundle too: it leaves (its status goes offline) before the next rollouts.
  await hubs.get('s3/odd')!.close();
  hubs.delete('s3/odd');
  await waitFor(async () => {
    const rs = await RolloutStore.open(db);
    try {
      return (await rs.hubs()).find((h) => h.hub === 'odd')?.state === 'offline';
    } finally {
      await rs.close();
    }
  }, 10_000, 'odd offline');
  await assert.rejects(runRollout({ ...settings(), bundleDir: bundles.v2, previousDir: bundles.v1, canaries: [{ site: 's3', hub: 'odd' }] }),
    (e) => isIdsError(e, 'BAD_OPTION') && /s3\/odd is offline: canaries must be online/.test(e.message));
});

test('a good bundle is watched on its canary and promoted, across an aggregator restart: every hub ends on it; the API shows the numbers', { timeout: 40_000 }, async () => {
  const run = runRollout({ ...settings(), bundleDir: bundles.v2, previousDir: bundles.v1, canaries: [{ site: 's1', hub: 'h1' }] });
  // The aggregator restarts in the middle of the window: the rollout, a separate client of the database, goes on.
  await waitFor(async () => {
    const rs = await RolloutStore.open(db);
    try {
      return (await rs.list(1))[0]?.state === 'watching';
    } finally {
      await rs.close();
    }
  }, 15_000, 'watching');
  await agg.close();
  agg = await startAggregator({ broker: broker.url, db, protocolVersion: 4, clientId: 'rollout-agg', http: 0, token: 't', log: quiet });
  const r = await run;
  const d = r.decision as unknown as { action: string; canaries: { perHour: number; baselinePerHour: number; limitPerHour: number }[]; fleetHubs: number;
    promotion: { confirmed: string[]; offline: string[] } };
  assert.equal(r.state, 'promoted', JSON.stringify(d));
  if (process.env.ROLLOUT_SHOW) writeFileSync(process.env.ROLLOUT_SHOW + '.promote', JSON.stringify(d, null, 1));
  assert.equal(d.action, 'promote');
  assert.equal(d.fleetHubs, 2);
  assert.ok(d.canaries[0].perHour > 0 && d.canaries[0].baselinePerHour > 0, JSON.stringify(d.canaries));
  assert.deepEqual(d.promotion.confirmed.sort(), ['s1/h2', 's2/h3']);
  assert.deepEqual(d.promotion.offline, ['s3/odd']);
  for (const h of hubs.values()) assert.equal(h.modelVersion, 'fixture-2');
  const res = await fetch(`${agg.url}/api/rollouts`, { headers: { authorization: 'Bearer t' } });
  const body = (await res.json()) as { rollouts: { id: number; state: string; bundle: { version: string }; decision: { action: string } }[] };
  assert.deepEqual(body.rollouts.map((x) => [x.state, x.bundle.version]), [['promoted', 'fixture-2'], ['rolled-back', 'fixture-2']]);
  const one = await fetch(`${agg.url}/api/rollouts/${r.id}?token=t`);
  assert.equal(((await one.json()) as { decision: { action: string } }).decision.action, 'promote');
  assert.equal((await fetch(`${agg.url}/api/rollouts/999?token=t`)).status, 404);
  assert.equal((await fetch(`${agg.url}/api/rollouts`)).status, 401);
  // The dashboard's rollouts card reads the same route.
  assert.match(await (await fetch(`${agg.url}/?token=t`)).text(), /<script src="rollouts.js">/);
  assert.match(await (await fetch(`${agg.url}/rollouts.js?token=t`)).text(), /api\/rollouts/);
});

test('a bundle that makes its canary alert ten times more is rolled back by `iot-ids rollout` (exit 3); the canary ends on the previous bundle', { timeout: 60_000 }, async () => {
  const keyFile = join(tmp.dir, 'public.pem');
  const signFile = join(tmp.dir, 'private.pem');
  writeFileSync(keyFile, keys.publicKeyPem);
  writeFileSync(signFile, keys.privateKeyPem);
  // No --previous: the bundle of the last promoted rollout (fixture-2).
  const args = ['--bundle', bundles.v3, '--broker', broker.url, '--mqtt-version', '4', '--db', db,
    '--canary', 's1/h2', '--watch', '3s', '--baseline', '3s', '--poll', '200ms', '--key', keyFile, '--sign-key', signFile,
    '--max-rate-ratio', '3'];
  const { code, out, err } = await cli(args).done;
  assert.equal(code, 3, err);
  if (process.env.ROLLOUT_SHOW) writeFileSync(process.env.ROLLOUT_SHOW + '.cli', err + out);
  assert.match(err, /rollout \d+: decision: rollback: s1\/h2: [\d.]+ alerts\/h > limit/);
  assert.match(err, /re-released as release \d+ and signed again/);
  const r = JSON.parse(out) as { state: string; decision: { canaries: { perHour: number; baselinePerHour: number }[]; rollback: { release: number; resigned: boolean } } };
  assert.equal(r.state, 'rolled-back');
  const c = r.decision.canaries[0];
  assert.ok(c.perHour > 5 * c.baselinePerHour, JSON.stringify(c));
  assert.ok(r.decision.rollback.resigned);
  assert.equal(r.decision.rollback.release, Date.parse('2026-12-02T00:00:00Z') / 1000 + 1, 'just above the worse bundle\'s release');
  assert.equal(hubs.get('s1/h2')!.modelVersion, 'fixture-2', 'the canary runs the previous bundle again');
  assert.equal(await storedBundle('s1/h2'), 'fixture-2');
  for (const other of ['s1/h1', 's2/h3']) assert.equal(hubs.get(other)!.modelVersion, 'fixture-2', `${other} never saw the worse bundle`);
});

test('--resume continues a watching rollout whose process stopped, in its stored window; no other rollout starts meanwhile', { timeout: 30_000 }, async () => {
  const s = settings();
  const now = Date.now();
  const rs = await RolloutStore.open(db);
  const rel = (d: string) => Date.parse(d) / 1000;
  // What a process killed in the middle of its watch window leaves behind.
  const id = await rs.create({
    bundle: { version: 'fixture-2', release: rel('2026-12-01T00:00:00Z'), dir: bundles.v2 },
    previous: { version: 'fixture-1', release: rel('2026-11-30T00:00:00Z'), dir: bundles.v1 },
    canaries: [{ site: 's1', hub: 'h1' }], state: 'watching', startedAt: now - 1000, watchUntil: now + 2000, finishedAt: null,
    decision: { install: { confirmed: ['s1/h1'], refused: [], pending: [] } },
    // A long stored window: a resume that started a new one would take 10 s more.
    options: { watchMs: 10_000, baselineMs: s.baselineMs, installTimeoutMs: s.installTimeoutMs, promoteTimeoutMs: s.promoteTimeoutMs, pollMs: 200, limits: s.limits },
  }, now);
  await rs.close();
  await assert.rejects(runRollout({ ...s, bundleDir: bundles.v3, previousDir: bundles.v2, canaries: [{ site: 's2', hub: 'h3' }] }),
    (e) => isIdsError(e, 'BAD_OPTION') && new RegExp(`rollout ${id} is still watching.*--resume ${id}, or give it up with --abandon ${id}`).test(e.message));
  const r = await runRollout({ ...s, resume: id });
  assert.equal(r.state, 'promoted', JSON.stringify(r.decision));
  assert.ok(Date.now() >= now + 2000, 'watched until the stored watchUntil');
  assert.ok(Date.now() < now + 9000, 'not a new window');
  assert.deepEqual((r.decision as { install: unknown }).install, { confirmed: ['s1/h1'], refused: [], pending: [] }, 'the stored decision is kept');
  // A finished rollout is only reported.
  assert.equal((await runRollout({ ...s, resume: 1 })).state, 'rolled-back');
  // One that cannot go on is given up: failed, nothing sent.
  const rs2 = await RolloutStore.open(db);
  const stuck = await rs2.create({ ...(await rs2.get(id))!, state: 'canary', watchUntil: null, decision: null }, Date.now());
  await rs2.close();
  const ab = await abandonRollout(db, stuck);
  assert.equal(ab.state, 'failed');
  assert.deepEqual((ab.decision as { abandoned: { state: string } }).abandoned.state, 'canary');
  await assert.rejects(abandonRollout(db, stuck), /already failed/);
});

test('a canary that goes degraded during the window is rolled back at once, before the window ends', { timeout: 30_000 }, async () => {
  const canary = hubs.get('s2/h3')!;
  const t0 = Date.now();
  const run = runRollout({ ...settings(), watchMs: 20_000, bundleDir: bundles.v4, canaries: [{ site: 's2', hub: 'h3' }] });
  await waitFor(() => canary.modelVersion === 'fixture-4', 15_000, 'canary on fixture-4');
  canary.degrade('capture lost (test)');
  const r = await run;
  canary.recover('input');
  assert.equal(r.state, 'rolled-back', JSON.stringify(r.decision));
  assert.match((r.decision as { reasons: string[] }).reasons[0], /s2\/h3 went degraded/);
  assert.ok(Date.now() - t0 < 15_000, 'did not wait for the 20 s window');
  assert.equal(canary.modelVersion, 'fixture-2');
});

test('without --sign-key the previous bundle goes as it is: a hub without --allow-downgrade refuses it and the rollout ends failed', { timeout: 40_000 }, async () => {
  const canary = hubs.get('s2/h3')!;
  await waitFor(async () => {
    const rs = await RolloutStore.open(db);
    try {
      return (await rs.hubs()).find((h) => h.hub === 'h3')?.state === 'online';
    } finally {
      await rs.close();
    }
  }, 10_000, 'h3 online again');
  const lines: string[] = [];
  const run = runRollout({ ...settings(), privateKeyPem: undefined, installTimeoutMs: 5000, watchMs: 20_000, bundleDir: bundles.v5,
    canaries: [{ site: 's2', hub: 'h3' }], log: (l) => lines.push(l) });
  await waitFor(() => canary.modelVersion === 'fixture-5', 15_000, 'canary on fixture-5');
  canary.degrade('capture lost (test)');
  const r = await run;
  canary.recover('input');
  assert.equal(r.state, 'failed', JSON.stringify(r.decision));
  const rb = (r.decision as unknown as { rollback: { resigned: boolean; refused: { hub: string; error: string }[] } }).rollback;
  assert.equal(rb.resigned, false);
  assert.match(rb.refused[0]?.error ?? '', /not newer than the running fixture-5.*--allow-downgrade/);
  assert.ok(lines.some((l) => /no --sign-key: a rollback sends fixture-2 as it is, which only hubs started with --allow-downgrade install/.test(l)), lines.join('\n'));
  assert.equal(canary.modelVersion, 'fixture-5', 'the anti-rollback rule held');
});

test('a rollout process killed in its window is continued by `iot-ids rollout --resume ID` (exit 0 when promoted)', { timeout: 60_000 }, async () => {
  const keyFile = join(tmp.dir, 'public.pem');
  const common = ['--broker', broker.url, '--mqtt-version', '4', '--db', db, '--poll', '200ms', '--key', keyFile];
  const first = cli(['--bundle', bundles.v6, '--canary', 's1/h1', '--watch', '4s', '--baseline', '3s', '--max-rate-ratio', '3', ...common]);
  let id = 0;
  await waitFor(async () => {
    const rs = await RolloutStore.open(db);
    try {
      const r = (await rs.list(1))[0];
      if (r?.bundle.version === 'fixture-6' && r.state === 'watching') id = r.id;
      return id > 0;
    } finally {
      await rs.close();
    }
  }, 30_000, 'watching fixture-6');
  first.child.kill('SIGKILL');
  await first.done;
  const { code, out, err } = await cli(['--resume', String(id), ...common]).done;
  assert.equal(code, 0, err);
  assert.match(err, new RegExp(`rollout ${id}: resuming in state watching`));
  assert.equal(JSON.parse(out).state, 'promoted');
  for (const h of hubs.values()) assert.equal(h.modelVersion, 'fixture-6');
});
