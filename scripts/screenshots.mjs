#!/usr/bin/env node
// Screenshots of the dashboard's feedback view for the documentation (docs/screenshots/), taken in a real headless
// Chromium against a small demo fleet (cli/demo/fleet.ts: embedded broker, aggregator, hubs replaying lab traffic
// with the shipped model). Operators with named tokens mark alerts through the API first, as they would from the
// dashboard: every alert of a benign hub is a false positive by construction of the demo (only the first hub of a
// site is attacked), some of the attacked hub's are confirmed, one class is corrected, one mark undone, one
// incident confirmed as a whole.
//   node scripts/screenshots.mjs [OUT_DIR]      (default docs/screenshots; IOT_IDS_CHROMIUM=/path/to/chromium)
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = resolve(process.argv[2] ?? join(ROOT, 'docs', 'screenshots'));
const CHROMIUM = process.env.IOT_IDS_CHROMIUM ?? '/usr/bin/chromium';
const DATA = resolve(ROOT, '..', 'shared', 'data');
const TOKENS = [
  { name: 'alice', token: 'alice-demo-token', permission: 'write' },
  { name: 'bob', token: 'bob-demo-token', permission: 'write' },
];
const say = (s) => process.stderr.write(`screenshots: ${s}\n`);

if (!existsSync(CHROMIUM)) {
  say(`no chromium at ${CHROMIUM} (apt-get install -y chromium, or IOT_IDS_CHROMIUM)`);
  process.exit(2);
}
const { startDemo } = await import('../cli/demo/fleet.ts');
const { chromium } = await import('playwright-core');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, timeoutMs, cond) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(500);
  }
}

const demo = await startDemo({
  bundleDir: join(ROOT, 'models', 'iot-ids-lab-v1'), publicKeyFile: join(ROOT, 'models', 'dev-key', 'public.pem'),
  http: 0, sites: 2, hubsPerSite: 3, speed: 6, seed: 1, meter: 'corrected', hubProcesses: false, statsMs: 2000,
  dataDir: existsSync(DATA) ? DATA : undefined, tokens: TOKENS, log: () => {},
});
let browser;
try {
  const api = async (who, method, path, body) => {
    const r = await fetch(`${demo.url}${path}`, {
      method, headers: { authorization: `Bearer ${TOKENS.find((t) => t.name === who).token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await r.json();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${data.message}`);
    return data;
  };
  say(`demo fleet at ${demo.url}: ${demo.plans.map((p) => `${p.site}/${p.hub}${p.episodes.length ? ' (attacked)' : ''}`).join(', ')}`);
  const attacked = new Set(demo.plans.filter((p) => p.episodes.length).map((p) => `${p.site}/${p.hub}`));
  const alerts = async () => (await api('alice', 'GET', '/api/alerts?limit=500')).alerts;
  await until('alerts from attacked and benign hubs, and a burst or outbreak', 240_000, async () => {
    const a = await alerts();
    const { incidents } = await api('alice', 'GET', '/api/incidents');
    const benign = a.filter((x) => !attacked.has(`${x.site}/${x.hub}`)).length;
    say(`${a.length} alerts stored (${benign} on benign hubs), ${incidents.length} incidents`);
    return a.length >= 60 && benign >= 3 && incidents.some((i) => i.kind === 'burst' || i.kind === 'outbreak');
  });

  // Traffic stops, so the newest alerts (the top of the list) stay the ones marked below.
  for (const r of demo.replayers) r.stop();
  await sleep(3000);

  // Operators' feedback, through the API.
  const path = (a) => `/api/alerts/${a.site}/${a.hub}/${a.seq}/mark`;
  const { incidents } = await api('alice', 'GET', '/api/incidents');
  const inc = incidents.find((i) => (i.kind === 'burst' || i.kind === 'outbreak') && attacked.has(i.hubs[0]));
  if (inc) say(`incident ${inc.id}: ${(await api('bob', 'POST', `/api/incidents/${encodeURIComponent(inc.id)}/mark`, { verdict: 'confirmed' })).marked} alerts confirmed by bob`);
  let fp = 0;
  for (const p of demo.plans.filter((x) => !x.episodes.length)) {
    const q = new URLSearchParams({ site: p.site, hub: p.hub, limit: '200' });
    for (const a of (await api('alice', 'GET', `/api/alerts?${q}`)).alerts) (await api('alice', 'POST', path(a), { verdict: 'false-positive' }), fp++);
  }
  // The top of the fleet's list: confirmed, a corrected class, a mark undone, some left unmarked.
  const top = (await alerts()).filter((a) => attacked.has(`${a.site}/${a.hub}`)).slice(0, 12);
  for (const [i, a] of top.entries()) {
    if (i % 4 === 0) await api('bob', 'POST', path(a), { verdict: 'confirmed' });
    else if (i === 1 || i === 6) {
      const sub = { Mirai: 'Mirai-UDP Flooding', Scan: 'Scan Hostport', DoS: 'DoS-Synflooding' }[a.class] ?? 'DoS';
      await api('alice', 'POST', path(a), { verdict: 'confirmed', class: sub === a.class ? 'DoS' : sub });
    } else if (i === 2) {
      const m = await api('alice', 'POST', path(a), { verdict: 'false-positive' });
      await api('bob', 'DELETE', `/api/marks/${m.id}`);
    }
  }
  say(`marked: ${fp} alerts of benign hubs false positive by alice; the newest alerts of attacked hubs confirmed or corrected, one mark undone`);

  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1360, height: 1000 }, deviceScaleFactor: 1 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${demo.url}/?token=alice-demo-token#feedback`);
  await page.waitForSelector('#fb-hubs tbody tr', { timeout: 15_000 });
  await page.waitForSelector('#fb-alerts .mark', { timeout: 15_000 });
  await sleep(800);
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  mkdirSync(OUT, { recursive: true });
  const shots = [
    ['feedback-view.png', () => page.screenshot({ path: join(OUT, 'feedback-view.png') })],
    ['feedback-hubs.png', () => page.locator('#fb-hubs').locator('xpath=..').screenshot({ path: join(OUT, 'feedback-hubs.png') })],
    // The alert card's top: the newest alerts with their marks (the whole list is long).
    ['feedback-alerts.png', async () => {
      const b = await page.locator('#fb-alerts').locator('xpath=..').boundingBox();
      await page.screenshot({ path: join(OUT, 'feedback-alerts.png'), fullPage: true, clip: { x: b.x, y: b.y, width: b.width, height: Math.min(b.height, 470) } });
    }],
  ];
  for (const [name, take] of shots) {
    await take();
    say(`${join(OUT, name)}: ${Math.round(statSync(join(OUT, name)).size / 1024)} KB`);
  }
} finally {
  await browser?.close();
  await demo.close();
}
process.exit(0);
