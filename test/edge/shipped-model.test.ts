/**
 * The shipped model on real captures, through the whole hub packet path (capture → wasm flow meter → wasm scaler
 * → ort-web): the SYN flood must give DoS alerts, the port scans Scan alerts; on benign captures the false-alert
 * rate is reported per capture. Runs only when a real bundle is available:
 *   IOT_IDS_HUB_BUNDLE=DIR  (default models/iot-ids-lab-v1, the shipped bundle)   IOT_IDS_HUB_KEY=PEM (default models/dev-key/public.pem)
 *   IOT_IDS_HUB_METER=cicflowmeter-compat|corrected   (default corrected, the mode the shipped model's flows were made with)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Hub } from '../../edge/hub.ts';
import type { MeterMode } from '../../asm/flowmeter-host.ts';
import { PROJECT_ROOT, sharedData } from '../helpers/shared-data.ts';
import { freePort } from './fixtures/brokers.ts';

const BUNDLE = process.env.IOT_IDS_HUB_BUNDLE ?? join(PROJECT_ROOT, 'models', 'iot-ids-lab-v1');
const KEY = process.env.IOT_IDS_HUB_KEY ?? join(PROJECT_ROOT, 'models', 'dev-key', 'public.pem');
const METER = (process.env.IOT_IDS_HUB_METER ?? 'corrected') as MeterMode;

async function classify(capture: string) {
  // No broker: alerts stay in the in-memory queue; only the verdict counts matter here.
  const hub = await Hub.start({
    bundleDir: BUNDLE,
    publicKeyPem: readFileSync(KEY, 'utf8'),
    broker: `mqtt://127.0.0.1:${await freePort()}`,
    site: 'eval',
    hub: 'eval',
    statsIntervalMs: 0,
    overflow: 'block',
    meterMode: METER,
    reconnectMs: 60_000,
    log: () => undefined,
  });
  try {
    const r = await hub.runPackets(capture);
    await hub.finish(1);
    const counts = { ...hub.stats.classCounts };
    const flows = hub.stats.flows;
    const nonNormal = flows - (counts.Normal ?? 0);
    return { r, counts, flows, nonNormal, rule: hub.stats.ruleAlerts };
  } finally {
    await hub.close();
  }
}

const available = (t: { skip(m: string): void }): boolean => {
  if (existsSync(join(BUNDLE, 'manifest.json'))) return true;
  t.skip(`no shipped bundle at ${BUNDLE} (set IOT_IDS_HUB_BUNDLE): skipped`);
  return false;
};

for (const [file, cls] of [
  ['stopddos_pkt.TCP.synflood.spoofed.pcap', 'DoS'],
  ['pcaphunt_ps-tcp_syn.pcap', 'Scan'],
  ['ndpi_synscan.pcap', 'Scan'],
] as const) {
  test(`shipped model: ${file} yields ${cls} alerts`, async (t) => {
    if (!available(t)) return;
    const f = sharedData(t, 'pcaps', 'attack', file);
    if (!f) return;
    const { counts, flows } = await classify(f);
    t.diagnostic(`${file}: ${flows} flows, classes ${JSON.stringify(counts)}`);
    assert.ok((counts[cls] ?? 0) > 0, `${file}: no ${cls} verdicts among ${flows} flows (${JSON.stringify(counts)}); meter mode ${METER ?? 'default'}`);
  });
}

test('shipped model: false-alert rate per benign capture (reported)', async (t) => {
  if (!available(t)) return;
  const root = sharedData(t, 'pcaps', 'benign');
  if (!root) return;
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : /\.pcap(ng)?$/.test(n) ? [join(d, n)] : []));
  let flows = 0;
  let alerts = 0;
  for (const f of walk(root).slice(0, Number(process.env.IOT_IDS_HUB_BENIGN_MAX ?? 40))) {
    const r = await classify(f);
    flows += r.flows;
    alerts += r.nonNormal;
    t.diagnostic(`${f.slice(root.length + 1)}: ${r.nonNormal}/${r.flows} flows alerted (${r.flows ? ((100 * r.nonNormal) / r.flows).toFixed(1) : 0}%), ${JSON.stringify(r.counts)}`);
  }
  t.diagnostic(`benign total: ${alerts}/${flows} flows alerted (${flows ? ((100 * alerts) / flows).toFixed(2) : 0}%)`);
  assert.ok(flows > 0);
});
