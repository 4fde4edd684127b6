/**
 * `iot-ids demo` as a user runs it (npm start), in its own process group: the dashboard URL is printed, alerts of
 * at least three classes reach GET /api/summary, the benign-only hubs' false alerts are measured (per class, over
 * the flows they classified), and SIGINT stops everything: exit 0, no process left in the group, temp folder gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';

interface Summary {
  alerts: number;
  classes: Record<string, number>;
  hubs: { total: number; online: number };
}
interface HubRow {
  site: string;
  hub: string;
  state: string;
  stats?: { flows?: number; classes?: Record<string, number>; samples?: number } | null;
  alerts: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes whose process group is `pgid` (ps over all processes; empty when the group is gone). */
function groupMembers(pgid: number): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,pgid='], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.trim().split(/\s+/).map(Number)).filter(([, g]) => g === pgid).map(([p]) => p);
}

test('demo: alerts of ≥ 3 classes within 90 s, benign hubs measured, SIGINT leaves no process and no folder', { timeout: 180_000 }, async (t) => {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'demo', '--http', '0', '--sites', '2',
    '--hubs-per-site', '2', '--speed', '4', '--summary-ms', '1000',
    // IOT_IDS_DEMO_TEST_PROCS=1: one `iot-ids hub --pcap -` process per hub instead of in-process hubs.
    ...(process.env.IOT_IDS_DEMO_TEST_PROCS ? ['--hub-processes'] : [])], {
    cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  const pgid = child.pid!;
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const t0 = Date.now();
    let url: string | undefined;
    while (!url && Date.now() - t0 < 60_000) {
      url = /dashboard (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
      if (!url) {
        assert.equal(child.exitCode, null, `demo exited early:\n${out}`);
        await sleep(200);
      }
    }
    assert.ok(url, `no dashboard URL printed:\n${out}`);
    const workDir = /temporary folder (\S+)/.exec(out)?.[1];
    assert.ok(workDir && existsSync(workDir), `temporary folder not printed or missing:\n${out}`);

    let s: Summary | undefined;
    const attackClasses = () => Object.entries(s?.classes ?? {}).filter(([c, n]) => c !== 'Normal' && n > 0).length;
    while (Date.now() - t0 < 90_000) {
      s = (await (await fetch(`${url}/api/summary`)).json()) as Summary;
      if (attackClasses() >= 3) break;
      await sleep(1000);
    }
    const secs = (Date.now() - t0) / 1000;
    t.diagnostic(`after ${secs.toFixed(0)} s: ${JSON.stringify(s)}`);
    assert.ok(attackClasses() >= 3, `fewer than 3 alert classes in 90 s: ${JSON.stringify(s?.classes)}\n${out}`);
    assert.equal(s!.hubs.total, 4);

    // False alerts: what the benign-only hubs (hub-2 of each site) raised, over the flows they classified
    // (cumulative counts in their stats, published every 5 s: wait for them, at least 20 s into the run).
    let hubs: HubRow[] = [];
    const benignFlows = () => hubs.filter((h) => h.hub === 'hub-2').map((h) => h.stats?.flows ?? 0);
    while (Date.now() - t0 < 120_000) {
      hubs = ((await (await fetch(`${url}/api/hubs`)).json()) as { hubs: HubRow[] }).hubs;
      if (Date.now() - t0 > 20_000 && benignFlows().length === 2 && benignFlows().every((n) => n > 0)) break;
      await sleep(1000);
    }
    for (const site of ['site-1', 'site-2']) {
      const { alerts } = (await (await fetch(`${url}/api/alerts?site=${site}&hub=hub-2&limit=10000`)).json()) as { alerts: { class: string; source: string }[] };
      const byClass: Record<string, number> = {};
      for (const a of alerts) byClass[`${a.class}${a.source === 'rule' ? ' (rule)' : ''}`] = (byClass[`${a.class}${a.source === 'rule' ? ' (rule)' : ''}`] ?? 0) + 1;
      const row = hubs.find((h) => h.site === site && h.hub === 'hub-2');
      const flows = row?.stats?.flows ?? 0;
      t.diagnostic(`benign-only ${site}/hub-2: ${alerts.length} alerts over ${flows} flows` +
        ` (${flows ? ((100 * alerts.length) / flows).toFixed(1) : '?'}%): ${JSON.stringify(byClass)}`);
      // A benign hub must not look like an attacked one: no rule (ARP) alerts, and most flows pass as Normal.
      assert.equal(alerts.filter((a) => a.source === 'rule').length, 0, `ARP rule alerts on a benign hub: ${JSON.stringify(byClass)}`);
      if (flows > 50) assert.ok(alerts.length / flows < 0.2, `false-alert rate ${alerts.length}/${flows} on ${site}/hub-2`);
    }

    // The fleet loop is on in the demo: hubs publish sampled Normal flows (counted in their stats).
    const sampled = hubs.reduce((n, h) => n + (h.stats?.samples ?? 0), 0);
    t.diagnostic(`Normal samples published by the hubs: ${sampled}`);
    assert.ok(sampled > 0, `no hub published a Normal sample: ${JSON.stringify(hubs.map((h) => h.stats?.samples))}`);

    process.kill(-pgid, 'SIGINT');
    const code = await Promise.race([exited, sleep(30_000).then(() => 'timeout' as const)]);
    assert.equal(code, 0, `demo did not exit 0 after SIGINT (${code}):\n${out}`);
    await sleep(300);
    assert.deepEqual(groupMembers(pgid), [], `processes left in the demo's group:\n${out}`);
    assert.equal(existsSync(workDir!), false, `temporary folder ${workDir} left behind`);
    assert.match(out, /demo: stopped after/);
  } finally {
    if (child.exitCode === null) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});
