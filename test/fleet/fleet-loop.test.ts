/**
 * The fleet loop end to end (issue #15, "What must hold"): a benign device the shipped model misclassifies
 * (MAXGateway, 19 % of its flows called Scan) sits on every hub beside real attacks. Phase 1 runs the shipped
 * bundle; an operator marks that device's alerts on one hub false positive through the API; `dataset export`
 * turns marks and Normal samples into training rows; `train --init-from` fine-tunes the shipped model on them
 * plus a replay of its original corpus; `bundle build` signs it; `rollout --canary` sends it to that hub, watches
 * it during phase 2 and promotes it. Then a deliberately worse bundle (the same rows with every benign row
 * labelled Scan) is refused by the rollout's pre-flight check before any hub sees it; sent past the check
 * (--skip-preflight), it goes the same way during phase 3 and is rolled back automatically.
 *
 * Everything runs as a user would run it: the embedded broker, the aggregator on SQLite with a named token, four
 * hubs on the demo key with the downlink on, and the CLI for export, train, build and rollout. Inputs are built
 * from ../shared/data at test time (test/fleet/fixture.ts); the test skips without it. The numbers it measured
 * are printed and quoted in README.md ("Fleet operators", "Cloud engineers").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedBroker } from '../../cli/embedded-broker.ts';
import { startAggregator, type Aggregator } from '../../aggregator/aggregator.ts';
import { Hub, type FlowVerdict } from '../../edge/hub.ts';
import { PROJECT_ROOT, SHARED_DATA, sharedData } from '../helpers/shared-data.ts';
import { DEVICE, buildFleetInputs, flowKey, type FleetInputs } from './fixture.ts';

const SHIPPED = join(PROJECT_ROOT, 'models', 'iot-ids-lab-v1');
const DEMO_PUBLIC = join(PROJECT_ROOT, 'models', 'dev-key', 'public.pem');
const HUBS = [['site-a', 'hub-1'], ['site-a', 'hub-2'], ['site-b', 'hub-3'], ['site-b', 'hub-4']] as const;
const CANARY = 0;
const TOKEN = 'fleet-e2e-secret';
const OPERATOR = 'alice';
/** One Normal flow in SAMPLE_N goes to the aggregator with its features. */
const SAMPLE_N = 4;
const WATCH = '20s';

interface Count {
  deviceFlows: number;
  deviceAlerts: number;
  attackFlows: number;
  attackRight: number;
  benignFlows: number;
  benignAlerts: number;
}
const zero = (): Count => ({ deviceFlows: 0, deviceAlerts: 0, attackFlows: 0, attackRight: 0, benignFlows: 0, benignAlerts: 0 });

interface RunningHub {
  site: string;
  hub: string;
  h: Hub;
  phase: number;
  counts: Count[];
}

/** Runs `iot-ids ARGS` (the CLI a user runs) without blocking this process's event loop (the fleet lives here). */
function cli(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), ...args], { cwd: PROJECT_ROOT });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

const must = (r: { code: number | null; stderr: string }, what: string, codes = [0]): void =>
  assert.ok(codes.includes(r.code ?? -1), `${what} exited ${r.code}:\n${r.stderr.slice(-3000)}`);

async function until<T>(f: () => T | undefined | Promise<T | undefined>, ms: number, what: string, every = 100): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

const pct = (a: number, b: number): string => (b ? `${((100 * a) / b).toFixed(1)} %` : 'n/a');

test('fleet loop: marks → export → fine-tune → canary promoted; a worse bundle rolled back', { timeout: 420_000 }, async (t) => {
  const data = sharedData(t, 'pcaps', 'benign', DEVICE.id);
  if (!data) return;
  const T0 = performance.now();
  const ms = (from: number) => Math.round(performance.now() - from);
  const timings: Record<string, number> = {};
  const tmp = mkdtempSync(join(tmpdir(), 'iot-ids-fleet-'));
  const db = join(tmp, 'aggregator.db');
  const dataDir = SHARED_DATA;

  // Cleanup first: a failure while building the inputs must not leave the temporary folder behind.
  let broker: Awaited<ReturnType<typeof startEmbeddedBroker>> | undefined;
  let agg: Aggregator | undefined;
  const hubs: RunningHub[] = [];
  t.after(async () => {
    for (const r of hubs) await r.h.close().catch(() => undefined);
    await agg?.close().catch(() => undefined);
    await broker?.close().catch(() => undefined);
    // IOT_IDS_KEEP=1 keeps the inputs, the database, the export and the bundles for a look.
    if (process.env.IOT_IDS_KEEP) console.log(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  });
  let t1 = performance.now();
  const inputs: FleetInputs = await buildFleetInputs(dataDir, join(tmp, 'inputs'), { hubs: HUBS.length });
  // The shipped model's corpus, small (same generator, seed and device split): the replay that keeps old classes.
  const lab = await cli(['lab', '--seed', '6', '--flows', '3000', '--mode', 'corrected', '--test-devices', '0.3', '--val-devices', '0.15',
    '--replay-share', 'mitm-arp-spoofing=0', '--share', 'normal=4', '--data', dataDir, '--out', join(tmp, 'corpus')]);
  must(lab, 'iot-ids lab');
  const replay = join(tmp, 'corpus', 'flows.csv');
  timings.inputs = ms(t1);

  broker = await startEmbeddedBroker();

  // The aggregator with a named token: marks record "alice" as who marked.
  agg = await startAggregator({
    broker: broker.url, db, http: 0, tokens: [{ name: OPERATOR, token: TOKEN, permission: 'write' }], protocolVersion: 4, clientId: 'fleet-e2e', log: () => {},
  } as Parameters<typeof startAggregator>[0]);
  const api = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${agg!.url}${path}`, {
      ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  const publicKeyPem = readFileSync(DEMO_PUBLIC, 'utf8');
  for (const [site, hub] of HUBS) {
    const r: RunningHub = { site, hub, h: undefined as unknown as Hub, phase: 0, counts: [zero(), zero(), zero()] };
    r.h = await Hub.start({
      bundleDir: SHIPPED, publicKeyPem, downlink: true, broker: broker.url, site, hub, protocolVersion: 4,
      stateDir: join(tmp, 'hubs', `${site}.${hub}`), statsIntervalMs: 1000, log: () => {},
      // The budget is the default's 16 times: each phase replays hours of a home's traffic in about a second, and
      // the default's burst (8 kB) would let only a dozen samples through per hub.
      attachFeatures: true, sampleNormal: SAMPLE_N, sampleBudget: 1 << 20,
      onVerdict: (v: FlowVerdict) => {
        const c = r.counts[r.phase];
        const k = flowKey(v);
        const family = inputs.attackFamily(k);
        if (inputs.isDevice(k)) {
          c.deviceFlows++;
          if (v.alerted) c.deviceAlerts++;
        } else if (family) {
          c.attackFlows++;
          if (v.alerted === family) c.attackRight++;
        } else {
          c.benignFlows++;
          if (v.alerted) c.benignAlerts++;
        }
      },
    } as Parameters<typeof Hub.start>[0]);
    hubs.push(r);
  }
  await until(async () => (await api('/api/hubs')).body?.hubs?.length === HUBS.length || undefined, 10_000, 'every hub known');

  /** Plays phase p on every hub and waits until the aggregator stored every alert. */
  const play = async (p: number): Promise<void> => {
    const storedBefore = agg!.ingest.counters.stored;
    const alertsBefore = hubs.reduce((s, r) => s + r.h.stats.alerts, 0);
    for (const r of hubs) r.phase = p;
    await Promise.all(hubs.map((r) => r.h.runFlows(inputs.hubs[hubs.indexOf(r)].phases[p])));
    for (const r of hubs) assert.ok(await r.h.finish(30_000), `${r.site}/${r.hub}: alerts delivered`);
    const sent = hubs.reduce((s, r) => s + r.h.stats.alerts, 0) - alertsBefore;
    await until(() => agg!.ingest.counters.stored - storedBefore >= sent || undefined, 30_000, `${sent} alerts stored`);
  };
  const total = (p: number, f: (c: Count) => number, which = hubs) => which.reduce((s, r) => s + f(r.counts[p]), 0);
  const canary = hubs[CANARY];
  const others = hubs.filter((r) => r !== canary);
  const recall = (p: number) => total(p, (c) => c.attackRight) / total(p, (c) => c.attackFlows);

  // Phase 1: the shipped bundle everywhere.
  t1 = performance.now();
  await play(0);
  timings.phase1 = ms(t1);
  const before = canary.counts[0];
  assert.ok(before.deviceAlerts >= 10, `the shipped model must misclassify the device (${before.deviceAlerts} alerts)`);
  assert.ok(recall(0) >= 0.9, `phase 1 attack recall ${recall(0)}`);

  // The operator: confirms the SYN flood outbreak (DoS on several hubs: the correlator opens it from phase 1's
  // attacks), then marks the device's alerts on the canary false positive. (A Scan incident would also cover the
  // device's Scan alerts on hubs nobody marked them on: confirming it would teach the model the opposite.)
  t1 = performance.now();
  const incidents = (await api('/api/incidents?state=open')).body?.incidents ?? [];
  let incidentMarked = 0;
  const attackIncident = incidents.find((i: { class?: string; kind: string }) => i.kind === 'outbreak' && i.class === 'DoS');
  if (attackIncident) {
    const r = await api(`/api/incidents/${encodeURIComponent(attackIncident.id)}/mark`, { method: 'POST', body: JSON.stringify({ verdict: 'confirmed' }) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    incidentMarked = r.body.marked;
  }
  const listed = await api(`/api/alerts?site=${canary.site}&hub=${canary.hub}&limit=10000`);
  assert.equal(listed.status, 200);
  const deviceAlerts = (listed.body.alerts as { seq: number; src: string; dst: string }[])
    .filter((a) => a.src === DEVICE.ip || a.dst === DEVICE.ip);
  assert.equal(deviceAlerts.length, before.deviceAlerts, 'every device alert of the canary is stored');
  for (const a of deviceAlerts) {
    const r = await api(`/api/alerts/${canary.site}/${canary.hub}/${a.seq}/mark`, { method: 'POST', body: JSON.stringify({ verdict: 'false-positive' }) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.by, OPERATOR);
  }
  const feedback = (await api('/api/feedback')).body;
  timings.marking = ms(t1);

  // The cloud engineer: export, fine-tune from the running model with a replay of its corpus, build, roll out.
  t1 = performance.now();
  const exp = await cli(['dataset', 'export', '--db', db, '--out', join(tmp, 'fleet')]);
  must(exp, 'dataset export');
  const manifest = JSON.parse(readFileSync(join(tmp, 'fleet', 'manifest.json'), 'utf8'));
  // Every mark became a training row (its alert carried features), and the hubs' samples are the Normal rows.
  assert.equal(manifest.rows.bySource['mark-fp'], deviceAlerts.length, 'one row per false-positive mark');
  assert.equal(manifest.rows.bySource['mark-confirmed'], incidentMarked, 'one row per confirmed alert');
  assert.ok(manifest.rows.bySource.sample >= 100, `Normal samples exported (${manifest.rows.bySource.sample})`);
  timings.export = ms(t1);

  t1 = performance.now();
  // 6 epochs instead of 3 and 10 % of the fleet rows held out instead of 30 %: the marks are 15 rows among ~500
  // (samples are random, so which of them the split holds out changes from run to run), and phase 2 on
  // captures no mark covered is the held-out test that matters here. At the defaults the device's phase-2 false
  // alerts fell to 0 on some runs and not at all on others.
  const train = await cli(['train', '--init-from', SHIPPED, '--data', join(tmp, 'fleet', 'flows.csv'), '--data', replay,
    '--epochs', '6', '--fleet-test-fraction', '0.1', '--label', 'Cat', '--seed', '1', '--export', '--out', join(tmp, 'run-good')], 180_000);
  must(train, 'train --init-from');
  timings.train = ms(t1);
  const report = JSON.parse(readFileSync(join(tmp, 'run-good', 'report.json'), 'utf8'));
  const [onFleet, onOriginal] = report.comparisons as { old: { accuracy: number; normalFalseAlertRate?: number }; new: { accuracy: number; normalFalseAlertRate?: number } }[];
  const good = join(tmp, 'bundle-good');
  must(await cli(['bundle', 'build', '--from', join(tmp, 'run-good'), '--out', good]), 'bundle build');
  const goodManifest = JSON.parse(readFileSync(join(good, 'manifest.json'), 'utf8'));
  const goodVersion = goodManifest.model.version as string;
  // A warm start, not a new model: the manifest names the bundle it started from.
  assert.equal(JSON.stringify(goodManifest).includes('2026-12-04.1-d1841e85'), true, 'the manifest records initFrom (the shipped model)');

  const rolloutArgs = (bundle: string, extra: string[] = []) => ['rollout', '--bundle', bundle, '--broker', broker.url, '--db', db,
    '--canary', `${canary.site}/${canary.hub}`, '--watch', WATCH, '--poll', '500ms', '--insecure-demo-key', '--mqtt-version', '4', ...extra];
  /** Starts a rollout, plays phase p on every hub once the canary is being watched, returns the rollout's result. */
  const rollout = async (bundle: string, p: number, extra: string[] = []) => {
    const t2 = performance.now();
    const proc = cli(rolloutArgs(bundle, extra), 180_000);
    await until(async () => {
      const list = (await api('/api/rollouts')).body?.rollouts ?? [];
      return list[0]?.state === 'watching' && list[0]?.bundle?.version === JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')).model.version
        ? true : undefined;
    }, 60_000, 'the rollout watching its canary', 200);
    await play(p);
    const r = await proc;
    return { ...r, ms: performance.now() - t2 };
  };

  t1 = performance.now();
  const ro1 = await rollout(good, 1, ['--previous', SHIPPED]);
  must(ro1, 'rollout (good bundle)');
  timings.rolloutGood = ms(t1);
  for (const r of hubs) assert.equal(r.h.modelVersion, goodVersion, `${r.site}/${r.hub} runs the promoted bundle`);
  const hubsApi = (await api('/api/hubs')).body.hubs as { site: string; hub: string; bundle: string }[];
  for (const h of hubsApi) assert.equal(h.bundle, goodVersion, `${h.site}/${h.hub} reports the promoted bundle`);

  const after = canary.counts[1];
  const rateBefore = before.deviceAlerts / before.deviceFlows;
  const rateAfter = after.deviceAlerts / after.deviceFlows;
  const othersP2 = total(1, (c) => c.deviceAlerts, others) / total(1, (c) => c.deviceFlows, others);

  // A deliberately worse bundle: the same fleet rows with every Normal row labelled Scan, weighted 5×, nothing
  // replayed. (With the replay, the canary alerted 1.3-1.6 times the rollout's limit of twice the fleet median,
  // depending on the random samples: too close to be sure of.)
  t1 = performance.now();
  const csv = readFileSync(join(tmp, 'fleet', 'flows.csv'), 'utf8').split('\n');
  const poisoned = [csv[0], ...csv.slice(1).filter(Boolean).map((l) => l.replace(/,Normal,Normal,Normal$/, ',Anomaly,Scan,Scan Port OS'))];
  writeFileSync(join(tmp, 'poisoned.csv'), poisoned.join('\n') + '\n');
  const trainBad = await cli(['train', '--init-from', good, '--data', join(tmp, 'poisoned.csv'), '--data', replay,
    '--fleet-weight', '5', '--replay-ratio', '0', '--label', 'Cat', '--seed', '1', '--export', '--out', join(tmp, 'run-bad')], 180_000);
  must(trainBad, 'train (worse bundle)');
  const bad = join(tmp, 'bundle-bad');
  must(await cli(['bundle', 'build', '--from', join(tmp, 'run-bad'), '--out', bad]), 'bundle build (worse)');
  timings.trainBad = ms(t1);

  // The rollout's pre-flight check refuses it before any hub sees it: it alerts on the Normal rows operators
  // marked false positive and on the sampled ones, which the good bundle stopped doing.
  t1 = performance.now();
  const pre = await cli(rolloutArgs(bad), 120_000);
  must(pre, 'rollout (worse bundle, pre-flight)', [3]);
  timings.preflightBad = ms(t1);
  const res0 = JSON.parse(pre.stdout.trim().split('\n').pop()!);
  assert.equal(res0.state, 'refused', pre.stderr.slice(-2000));
  assert.ok(res0.decision.preflight.normal.alertedNew > res0.decision.preflight.normal.alertedOld, 'refused for its alerts on Normal rows');
  for (const r of hubs) assert.equal(r.h.modelVersion, goodVersion, `${r.site}/${r.hub} never saw the refused bundle`);
  // Past the check (--skip-preflight), the canaries' rate rule rolls it back.
  t1 = performance.now();
  const ro2 = await rollout(bad, 2, ['--skip-preflight']);
  must(ro2, 'rollout (worse bundle)', [3]);
  timings.rolloutBad = ms(t1);
  await until(() => canary.h.modelVersion === goodVersion || undefined, 30_000, 'the canary back on the good bundle');
  for (const r of others) assert.equal(r.h.modelVersion, goodVersion, `${r.site}/${r.hub} never left the good bundle`);
  const rollouts = (await api('/api/rollouts')).body.rollouts as { id: number; state: string; decision: any }[];
  assert.deepEqual(rollouts.slice(0, 3).map((r) => r.state), ['rolled-back', 'refused', 'promoted']);
  assert.deepEqual(rollouts[0].decision?.preflight, { skipped: true });
  assert.match(String(rollouts[0].decision?.reasons), /alerts\/h > limit/, 'rolled back by the rate rule, not by a failure');
  timings.total = ms(T0);

  const res1 = JSON.parse(ro1.stdout.trim().split('\n').pop()!);
  const res2 = JSON.parse(ro2.stdout.trim().split('\n').pop()!);
  const pf1 = res1.decision?.preflight;
  assert.equal(pf1?.action, 'pass', 'the good bundle passed the pre-flight check');
  assert.ok(pf1.rows.falsePositive > 0 && pf1.normal.rows > 0, 'the check scored the marked and sampled rows');
  const pfLine = (p: any) => `${p.action}: ${p.rows.confirmed} confirmed, ${p.rows.falsePositive} false positive, ${p.rows.samples} sampled; ` +
    p.classes.map((c: any) => `${c.class} ${c.support} rows recall ${c.recallOld} → ${c.recallNew}`).join(', ') +
    `; Normal ${p.normal.rows} rows alerted ${p.normal.alertedOld} → ${p.normal.alertedNew} (${p.ms} ms)`;
  const c1 = res1.decision?.canaries?.[0];
  const c2 = res2.decision?.canaries?.[0];
  console.log([
    `fleet loop (${HUBS.length} hubs, canary ${canary.site}/${canary.hub}, device ${DEVICE.id} at ${DEVICE.ip}):`,
    `  phase 1 (shipped bundle): canary device alerts ${before.deviceAlerts} of ${before.deviceFlows} flows (${pct(before.deviceAlerts, before.deviceFlows)}); ` +
      `fleet attack flows alerted right ${total(0, (c) => c.attackRight)} of ${total(0, (c) => c.attackFlows)}; ` +
      `other benign alerted ${pct(total(0, (c) => c.benignAlerts), total(0, (c) => c.benignFlows))}`,
    `  marks: ${deviceAlerts.length} false positive by ${OPERATOR}${attackIncident ? `, incident ${attackIncident.id} (${attackIncident.class}) confirmed: ${incidentMarked} alerts` : ', no attack incident open'}`,
    `  feedback (canary): ${JSON.stringify(feedback?.hubs?.find((h: { hub: string }) => h.hub === canary.hub) ?? feedback)}`,
    `  export: ${JSON.stringify(manifest.rows ?? manifest.counts ?? manifest).slice(0, 400)}`,
    `  fine-tune (${report.rows?.trainTotal} rows, ${(timings.train / 1000).toFixed(1)} s with export): original test accuracy ` +
      `${onOriginal.old.accuracy.toFixed(4)} → ${onOriginal.new.accuracy.toFixed(4)}; fleet held-out Normal alerted ` +
      `${pct(onFleet.old.normalFalseAlertRate ?? 0, 1)} → ${pct(onFleet.new.normalFalseAlertRate ?? 0, 1)}`,
    `  phase 2 (canary on ${goodVersion}): canary device alerts ${after.deviceAlerts} of ${after.deviceFlows} flows (${pct(after.deviceAlerts, after.deviceFlows)}); ` +
      `drop ${(100 * (1 - rateAfter / rateBefore)).toFixed(1)} %; other hubs (still shipped bundle in the window) ${(100 * othersP2).toFixed(1)} %; ` +
      `canary attack recall ${pct(after.attackRight, after.attackFlows)} (${after.attackRight} of ${after.attackFlows}), other hubs ` +
      `${total(1, (c) => c.attackRight, others)} of ${total(1, (c) => c.attackFlows, others)}; ` +
      `other hubs' device alerts ${total(1, (c) => c.deviceAlerts, others)} of ${total(1, (c) => c.deviceFlows, others)}`,
    `  pre-flight (good bundle): ${pfLine(pf1)}`,
    `  pre-flight (worse bundle): ${pfLine(res0.decision.preflight)}`,
    ...pre.stderr.split('\n').filter((l) => /^(pre-flight|  \S|rollout \d+: refused)/.test(l)).map((l) => `    ${l}`),
    `  rollout 1: ${res1.state}; canary ${c1?.perHour} alerts/h vs limit ${c1?.limitPerHour} (fleet median ${res1.decision?.fleetMedianPerHour})`,
    `  phase 3 (canary on the worse bundle): canary device alerts ${canary.counts[2].deviceAlerts} of ${canary.counts[2].deviceFlows}, ` +
      `other benign alerted ${pct(canary.counts[2].benignAlerts, canary.counts[2].benignFlows)}`,
    `  rollout 2: ${res2.state}; ${res2.decision?.reasons?.join('; ')}; canary ${c2?.perHour} alerts/h vs limit ${c2?.limitPerHour}`,
    `  timings (ms): ${JSON.stringify(timings)}`,
  ].join('\n'));

  assert.ok(rateAfter <= 0.1 * rateBefore, `the canary's false alerts for the device must drop ≥ 90 % (${pct(after.deviceAlerts, after.deviceFlows)} vs ${pct(before.deviceAlerts, before.deviceFlows)})`);
  assert.ok(after.attackRight / after.attackFlows >= 0.9, `the canary still catches the attacks (${pct(after.attackRight, after.attackFlows)})`);
  assert.ok(recall(1) >= 0.9, `fleet attack recall in phase 2 ${recall(1)}`);
});
