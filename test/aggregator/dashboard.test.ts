/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core): it loads with the token,
 * shows the live alert count rising while hubs publish, lists hubs and incidents, opens a hub's detail, and
 * the test writes a screenshot to .tmp/aggregator-dashboard.png.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromiumMissing, launchChromium } from '../helpers/chromium.ts';
import { startAggregator } from '../../aggregator/aggregator.ts';
import { encodeStats, encodeStatus } from '../../shared/payloads.ts';
import { hubTopic } from '../../shared/topics.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';
import { startAedes } from './broker.ts';
import { publisher } from './publisher.ts';
import { tempDir, waitFor } from './fixtures.ts';

const HUBS: [string, string][] = [
  ['berlin', 'gw-01'], ['berlin', 'gw-02'], ['berlin', 'cam-03'], ['hamburg', 'gw-11'], ['hamburg', 'plc-12'], ['munich', 'gw-21'],
];

describe('dashboard', () => {
  it('loads in headless Chromium and shows the live alert count rising', async (t) => {
    const missing = chromiumMissing();
    if (missing) return t.skip(missing);
    const broker = await startAedes();
    const tmp = tempDir();
    const agg = await startAggregator({
      broker: broker.url, db: join(tmp.dir, 'a.db'), http: 0, token: 'dash-token', protocolVersion: 4, clientId: 'dash-agg',
      log: () => {}, correlation: { burstAlerts: 150 },
    });
    const pub = await publisher(broker.url);
    const browser = await launchChromium(join(tmp.dir, 'profile'));
    try {
      // Without the token: refused.
      const denied = await fetch(`${agg.url}/`);
      assert.equal(denied.status, 401);

      for (const [i, [site, hub]] of HUBS.entries()) {
        const state = hub === 'plc-12' ? 'offline' : 'online';
        await pub.raw(hubTopic(site, hub, 'status'), encodeStatus({ v: 1, site, hub, ts: Date.now(), state, bundle: `2026-11-30.${1 + (i % 2)}-a1b2c3d4` }));
        await pub.raw(hubTopic(site, hub, 'stats'), encodeStats({
          v: 1, site, hub, ts: Date.now(), intervalMs: 10_000, flowsPerSec: 40 + i * 7, flows: 400 + i * 70, classCounts: { Normal: 380 },
          latencyMs: { p50: 2.1, p95: 4.8 + i, p99: 9.5 }, queueDepth: i, dropped: 0, malformed: 0,
        }), 0);
      }
      const page = browser.pages()[0] ?? (await browser.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${agg.url}/?token=dash-token`);
      await page.waitForSelector('#conn.on', { timeout: 10_000 });
      assert.ok(!page.url().includes('token='), 'the token leaves the address bar');

      // Publish in waves and watch the count on the page rise.
      const seen: number[] = [];
      const read = async () => Number((await page.textContent('#alert-count'))!.replace(/[^\d]/g, '') || '0');
      let seq = 0;
      let shown = await read();
      for (let wave = 0; wave < 5; wave++) {
        const n = 30 + wave * 25;
        const infected = HUBS.slice(0, 2 + wave);
        await pub.alerts(infected.filter(([, h]) => h !== 'plc-12'), seq, seq + Math.ceil(n / infected.length), 'Mirai');
        await pub.alerts([HUBS[wave % 3]], seq + 100, seq + 108 + wave * 4, wave % 2 ? 'Scan' : 'DoS');
        seq += 200;
        // The page must show more than before, pushed by the live stream (no reload).
        const prev = shown;
        await waitFor(async () => (shown = await read()) > prev, 10_000, `count above ${prev} after wave ${wave}`);
        seen.push(shown);
        await new Promise((r) => setTimeout(r, 400));
      }
      const stored = (await agg.store.summary()).alerts;
      await waitFor(async () => (await read()) === stored, 5000, `page to show ${stored}`);
      seen.push(await read());
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `count never goes down: ${seen}`);
      assert.ok(new Set(seen).size >= 5, `count rose live: ${seen}`);

      // Fleet table, incidents, chart, hub detail.
      await waitFor(async () => (await page.locator('#fleet tbody tr').count()) === HUBS.length, 5000, 'fleet rows');
      assert.match((await page.textContent('#fleet'))!, /plc-12[\s\S]*offline/);
      await page.waitForSelector('#incidents li.outbreak', { timeout: 5000 });
      assert.ok((await page.locator('#incidents li').count()) >= 2, 'outbreak and hub-offline listed');
      assert.ok((await page.locator('#chart canvas').count()) > 0, 'chart drawn');
      await page.click('#fleet tbody tr[data-key="berlin/gw-01"]');
      await page.waitForSelector('#detail-alerts tbody tr', { timeout: 5000 });
      assert.match((await page.textContent('#detail-name'))!, /berlin\/gw-01/);
      await new Promise((r) => setTimeout(r, 1200)); // one more chart tick
      assert.deepEqual(errors, []);

      mkdirSync(join(PROJECT_ROOT, '.tmp'), { recursive: true });
      const shot = join(PROJECT_ROOT, '.tmp', 'aggregator-dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      assert.ok(existsSync(shot));
      t.diagnostic(`screenshot: ${shot}; counts seen: ${seen.join(' → ')}`);
    } finally {
      await browser.close();
      await pub.close();
      await agg.close();
      await broker.stop();
      tmp.cleanup();
    }
  });
});
