/**
 * The shipped model on real captures, through the whole hub packet path (capture → wasm flow meter → wasm scaler
 * → ort-web): the SYN flood must give DoS alerts, the port scans Scan alerts; on benign captures the false-alert
 * rate is reported per capture. Runs only when a real bundle is available:
 *   IOT_IDS_HUB_BUNDLE=DIR  (default models/iot-ids-lab-v1, the shipped bundle)   IOT_IDS_HUB_KEY=PEM (default models/dev-key/public.pem)
 *   IOT_IDS_HUB_METER=cicflowmeter-compat|corrected   (default corrected, the mode the shipped model's flows were made with)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hub, PACKET_MITM_NEEDS_ARP_MS } from '../../edge/hub.ts';
import type { MeterMode } from '../../asm/flowmeter-host.ts';
import { runLab } from '../../lab/corpus.ts';
import { PROJECT_ROOT, SHARED_DATA, sharedData } from '../helpers/shared-data.ts';
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
    // As `iot-ids hub --pcap` runs: model MITM verdicts alert only with the ARP watcher's corroboration.
    mitmNeedsArpMs: PACKET_MITM_NEEDS_ARP_MS,
    reconnectMs: 60_000,
    log: () => undefined,
  });
  try {
    const r = await hub.runPackets(capture);
    await hub.finish(1);
    const counts = { ...hub.stats.classCounts };
    const flows = hub.stats.flows;
    const nonNormal = flows - (counts.Normal ?? 0);
    return { r, counts, flows, nonNormal, alerts: hub.stats.alerts, rule: hub.stats.ruleAlerts, unconfirmed: hub.stats.unconfirmed };
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

test('shipped model: the real ARP spoofing capture (ARP only, no flows) yields the watcher\'s MITM alerts', async (t) => {
  if (!available(t)) return;
  const f = sharedData(t, 'pcaps', 'attack', 'pcaphunt_na-arpSpoofing.pcap');
  if (!f) return;
  const { counts, flows, alerts, rule, unconfirmed } = await classify(f);
  t.diagnostic(`arpSpoofing: ${flows} flows, classes ${JSON.stringify(counts)}, ${alerts} alerts (${rule} by rule), ${unconfirmed} withheld`);
  assert.ok(rule > 0 && alerts === rule, 'the ARP watcher raises the spoofing itself');
});

test('shipped model: a generated ARP-spoofing MITM keeps its model MITM alerts, corroborated by the watcher', async (t) => {
  if (!available(t)) return;
  // The lab refuses to run without the benign captures it builds Normal from.
  if (!sharedData(t, 'pcaps', 'benign')) return;
  const out = mkdtempSync(join(tmpdir(), 'iot-ids-mitm-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  // Generated only (no replayed captures): the poisoning ARP comes first, then relayed device sessions.
  await runLab({ seed: 21, flows: 300, out, dataDir: SHARED_DATA, scenarios: ['mitm-arp-spoofing'], real: false, mode: METER });
  const { counts, flows, alerts, rule, unconfirmed } = await classify(join(out, 'pcaps', 'mitm-arp-spoofing.pcap'));
  t.diagnostic(`generated MITM: ${flows} flows, classes ${JSON.stringify(counts)}, ${alerts} alerts (${rule} by rule), ${unconfirmed} withheld`);
  assert.ok(rule > 0, 'the watcher sees the poisoning');
  assert.ok(alerts - rule > 0 && (counts['MITM ARP Spoofing'] ?? 0) > 0, 'the model\'s MITM verdicts are alerted');
  assert.ok(unconfirmed <= (counts['MITM ARP Spoofing'] ?? 0) * 0.05, `${unconfirmed} MITM verdicts withheld: only flows that ended before the first poisoning may be`);
});

/** Bound on alerted flows / flows over the benign captures (see the assertion for the figure it protects). */
const MAX_BENIGN_ALERT_RATE = 0.02;

test('shipped model: false-alert rate per benign capture (reported, at most 2 %)', async (t) => {
  if (!available(t)) return;
  const root = sharedData(t, 'pcaps', 'benign');
  if (!root) return;
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : /\.pcap(ng)?$/.test(n) ? [join(d, n)] : []));
  let flows = 0;
  let verdicts = 0;
  let alerts = 0;
  const pct = (a: number, n: number) => (n ? ((100 * a) / n).toFixed(2) : '0');
  for (const f of walk(root).slice(0, Number(process.env.IOT_IDS_HUB_BENIGN_MAX ?? 40))) {
    const r = await classify(f);
    flows += r.flows;
    verdicts += r.nonNormal;
    alerts += r.alerts;
    // Every alert is false here; the model's non-Normal verdicts include the MITM ones withheld for lack of ARP evidence.
    assert.equal(r.alerts, r.nonNormal - r.unconfirmed + r.rule, f);
    t.diagnostic(`${f.slice(root.length + 1)}: ${r.alerts}/${r.flows} flows alerted (${pct(r.alerts, r.flows)}%; non-Normal verdicts ${r.nonNormal}, ${r.unconfirmed} MITM withheld), ${JSON.stringify(r.counts)}`);
  }
  t.diagnostic(`benign total: ${alerts}/${flows} flows alerted (${pct(alerts, flows)}%); non-Normal verdicts ${verdicts} (${pct(verdicts, flows)}%)`);
  assert.ok(flows > 0);
  // Protects the shipped bundle's headline false-alert figure (README, REPRODUCE.md: 0.63 % of the flows of the
  // 303 real benign captures alert). On the first 40 captures read here the 2026-12-04 bundle alerts 0 of 276
  // flows; a replacement may move that, but past 2 % it is no longer the model those figures describe.
  assert.ok(alerts <= MAX_BENIGN_ALERT_RATE * flows,
    `benign false-alert rate ${pct(alerts, flows)}% over ${flows} flows exceeds ${100 * MAX_BENIGN_ALERT_RATE}%`);
});
