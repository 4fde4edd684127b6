/**
 * The dashboard's feedback view in a real headless Chromium: a mark made through the API shows with its author,
 * the buttons mark (false positive, correct the class), undo and mark a whole incident as the token's identity,
 * and the per hub table shows the false-positive share. Screenshot in .tmp/feedback-view.png.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromiumMissing, launchChromium } from '../helpers/chromium.ts';
import { startAggregator } from '../../aggregator/aggregator.ts';
import { encodeStatus } from '../../shared/payloads.ts';
import { hubTopic } from '../../shared/topics.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';
import { startAedes } from './broker.ts';
import { publisher } from './publisher.ts';
import { tempDir, waitFor } from './fixtures.ts';

const TOKENS = [
  { name: 'alice', token: 'alice-secret-1', permission: 'write' as const },
  { name: 'noc', token: 'noc-secret-22', permission: 'read' as const },
];

describe('dashboard feedback view', () => {
  it('shows who marked, marks with the buttons as the token identity, undoes, marks an incident, shows the FP share', async (t) => {
    const missing = chromiumMissing();
    if (missing) return t.skip(missing);
    const broker = await startAedes();
    const tmp = tempDir();
    const agg = await startAggregator({
      broker: broker.url, db: join(tmp.dir, 'a.db'), http: 0, token: 'op-token-123', tokens: TOKENS, protocolVersion: 4,
      clientId: 'fb-agg', log: () => {}, correlation: { burstAlerts: 20 },
    });
    const pub = await publisher(broker.url);
    const browser = await launchChromium(join(tmp.dir, 'profile'));
    const api = (method: string, path: string, body?: unknown, token = 'op-token-123') => fetch(`${agg.url}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    try {
      for (const [site, hub, bundle] of [['s1', 'gw-01', '2026-12-04.1-aaaa'], ['s1', 'cam-02', '2026-12-04.1-aaaa'], ['s2', 'gw-11', '2026-11-30.2-bbbb']]) {
        await pub.raw(hubTopic(site, hub, 'status'), encodeStatus({ v: 1, site, hub, ts: Date.now(), state: 'online', bundle }));
      }
      const n = (await pub.alerts([['s1', 'gw-01']], 0, 30, 'Mirai')) + (await pub.alerts([['s1', 'cam-02']], 0, 5, 'Scan')) +
        (await pub.alerts([['s2', 'gw-11']], 0, 3, 'DoS'));
      await waitFor(async () => (await agg.store.summary()).alerts === n, 10_000, `${n} alerts stored`);
      await waitFor(async () => (await agg.store.incidents()).some((i) => i.kind === 'burst'), 5000, 'a burst incident');
      assert.equal((await api('POST', '/api/alerts/s1/cam-02/0/mark', { verdict: 'false-positive' })).status, 201);

      const page = browser.pages()[0] ?? (await browser.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.stack ?? e.message));
      await page.goto(`${agg.url}/?token=alice-secret-1#feedback`);
      await waitFor(async () => (await page.locator('#fb-hubs tbody tr').count()) === 3, 10_000, 'three hubs in the feedback table');
      assert.ok(!page.url().includes('token='), 'the token leaves the address bar');
      assert.match(page.url(), /#feedback$/, 'the view stays selected');
      assert.match((await page.textContent('#whoami'))!, /alice/);
      assert.equal(await page.isHidden('#view-overview'), true);

      // The mark made through the API, with its author.
      const row = (k: string) => page.locator(`#fb-alerts tr[data-alert="${k}"]`);
      await waitFor(async () => /false positive[\s\S]*by operator/.test((await row('s1/cam-02/0').locator('.markcell').textContent()) ?? ''), 5000, 'the API mark shown');
      assert.match((await page.locator('#fb-hubs tr[data-key="s1/cam-02"]').textContent())!, /20 %/, 'FP share 1 of 5');

      // Buttons: false positive, then undo; correct the class.
      await row('s2/gw-11/1').locator('button[data-action="fp"]').click();
      await waitFor(async () => /false positive[\s\S]*by alice/.test((await row('s2/gw-11/1').locator('.markcell').textContent()) ?? ''), 5000, 'alice\'s mark shown');
      const marks = (await (await api('GET', '/api/marks?site=s2&hub=gw-11')).json()) as { marks: { seq: number; by: string; verdict: string }[] };
      assert.deepEqual(marks.marks.map((m) => [m.seq, m.by, m.verdict]), [[1, 'alice', 'false-positive']]);
      await row('s2/gw-11/2').locator('select[data-action="correct"]').selectOption('DoS-Synflooding');
      await waitFor(async () => /confirmed · DoS-Synflooding[\s\S]*by alice/.test((await row('s2/gw-11/2').locator('.markcell').textContent()) ?? ''), 5000, 'the correction shown');
      await row('s2/gw-11/1').locator('button[data-action="undo"]').click();
      await waitFor(async () => /unmarked/.test((await row('s2/gw-11/1').locator('.markcell').textContent()) ?? ''), 5000, 'undone');
      await waitFor(async () => (await page.locator('#fb-marks tr.undone').count()) === 1, 5000, 'the undone mark kept in the history');
      assert.match((await page.locator('#fb-marks tr.undone').textContent())!, /undone by alice/);

      // Unmarked only: the corrected alert leaves the list, the undone one is back in it.
      await page.check('#fb-unmarked-only');
      await waitFor(async () => (await row('s2/gw-11/2').count()) === 0, 5000, 'marked alerts hidden');
      assert.equal(await row('s2/gw-11/1').count(), 1);
      await page.uncheck('#fb-unmarked-only');
      await waitFor(async () => (await row('s2/gw-11/2').count()) === 1, 5000, 'all alerts again');

      // A whole incident.
      await page.locator('#fb-incidents li.burst button[data-action="fp"]').first().click();
      await waitFor(async () => /alerts of the incident marked false-positive by alice/.test((await page.textContent('#fb-msg')) ?? ''), 5000, 'incident marked');
      const marked = Number(/(\d+) alerts of the incident/.exec((await page.textContent('#fb-msg'))!)![1]);
      assert.ok(marked >= 20, `the burst's alerts marked: ${marked}`);
      await waitFor(async () => /\d+ %/.test((await page.locator('#fb-hubs tr[data-key="s1/gw-01"] td').last().textContent()) ?? ''), 5000, 'gw-01 FP share');
      const share = (await page.locator('#fb-hubs tr[data-key="s1/gw-01"] td').last().textContent())!;
      assert.equal(share, `${Math.round((marked / 30) * 100)} %`);
      assert.match((await page.textContent('#rollouts-card'))!, /No rollout yet/, 'the rollouts card shows on this view too');
      assert.deepEqual(errors, []);

      mkdirSync(join(PROJECT_ROOT, '.tmp'), { recursive: true });
      const shot = join(PROJECT_ROOT, '.tmp', 'feedback-view.png');
      await page.screenshot({ path: shot, fullPage: true });

      // A read-only token: the page says so and offers no working button.
      await page.goto(`${agg.url}/?token=noc-secret-22#feedback`);
      await waitFor(async () => /noc · read-only/.test((await page.textContent('#whoami')) ?? ''), 5000, 'the read-only identity');
      await page.waitForSelector('#fb-alerts tbody tr', { timeout: 5000 });
      const enabled = await page.locator('#fb-alerts button:enabled, #fb-incidents button:enabled, #fb-marks button:enabled').count();
      assert.equal(enabled, 0, 'every mark button disabled for a read-only token');
      assert.equal(await page.locator('#fb-alerts select').count(), 0, 'no class correction offered');
      assert.deepEqual(errors, []);
      t.diagnostic(`screenshot: ${shot}; incident marks: ${marked}`);
    } finally {
      await browser.close();
      await pub.close();
      await agg.close();
      await broker.stop();
      tmp.cleanup();
    }
  });
});
