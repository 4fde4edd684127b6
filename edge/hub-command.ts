/**
 * `iot-ids hub`: runs a hub. Parses options, starts edge/hub.ts, feeds it one input, and with --exit-at-end
 * drains, waits until every alert is delivered (PUBACK delivery: the broker has it; end-to-end: the aggregator's
 * watermark passed it) and exits when the input ends: 0 for a clean run, 1 when the input could not be read,
 * the hub was degraded at any time or alerts were not delivered in time. Documented in edge/README.md.
 */
import { defineCommand } from 'citty';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IdsError } from '../shared/errors.ts';
import { DEFAULT_PREFIX } from '../shared/topics.ts';
import { DEMO_KEY_FINGERPRINT, keyFingerprint } from '../shared/bundle-verify.ts';
import { DEFAULT_RULE_BURST_MS, Hub, PACKET_MITM_NEEDS_ARP_MS, type HubOptions } from './hub.ts';
import type { WatcherOptions } from './watchers/index.ts';
import { watcherSettingsFromJson } from '../shared/watcher-settings.ts';
import { DELIVERIES, type Delivery } from './publisher.ts';
import { choiceOption, intOption } from '../shared/options.ts';
import { DEFAULT_SAMPLE_BUDGET, MIN_SAMPLE_BUDGET, SAMPLE_PRIVACY } from './sampler.ts';
import type { MeterMode } from '../asm/flowmeter-host.ts';

const int = (name: string, v: string | undefined, dflt: number, min = 0): number => intOption(name, v, { min }) ?? dflt;

const readText = (name: string, path: string | undefined): string | undefined => {
  if (!path) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new IdsError('BAD_OPTION', `--${name} ${path}: ${(e as Error).message}`);
  }
};

const KEY_REQUIRED =
  '--key PEM (the bundle signer\'s Ed25519 public key) is required; --insecure-demo-key runs on the committed demo key, for demos only';

/**
 * The key bundles must be signed with: --key, or the demo key beside the sources when asked for by name (it is
 * never in the single-file build). Its private half is committed, so it is never a silent default.
 */
function verifyingKey(a: Record<string, string | boolean | undefined>, log: (s: string) => void): string {
  const key = typeof a.key === 'string' ? a.key : undefined;
  if (key !== undefined && a['insecure-demo-key']) throw new IdsError('BAD_OPTION', 'give --key or --insecure-demo-key, not both');
  if (key !== undefined) return readText('key', key)!;
  if (!a['insecure-demo-key']) throw new IdsError('BAD_OPTION', KEY_REQUIRED);
  const p = fileURLToPath(new URL('../models/dev-key/public.pem', import.meta.url));
  if (!existsSync(p)) throw new IdsError('BAD_OPTION', `--insecure-demo-key: no demo key in this build; ${KEY_REQUIRED}`);
  log('warning: --insecure-demo-key: verifying bundles with the DEMO key (models/dev-key/public.pem), whose private half is public');
  return readFileSync(p, 'utf8');
}

export const hubArgs = {
  bundle: { type: 'string', required: true, description: 'bundle folder (manifest.json, manifest.sig, model, preprocess.wasm)' },
  pcap: { type: 'string', description: 'pcap/pcapng file, or - for stdin (e.g. tcpdump -w -)' },
  flows: { type: 'string', description: 'CICFlowMeter/IoTID20 flow CSV file, or - for stdin' },
  broker: { type: 'string', required: true, description: 'mqtt://HOST:PORT or mqtts://HOST:PORT' },
  site: { type: 'string', required: true, description: 'site id' },
  hub: { type: 'string', required: true, description: 'hub id' },
  'exit-at-end': { type: 'boolean', description: 'when the input ends: drain, wait until every alert is delivered (see --delivery), exit 0' },
  delivery: { type: 'string', description: 'when an alert leaves the offline queue: end-to-end (stored by the aggregator: its ack watermark passed it), puback (the broker has it), auto (default: puback until this hub has seen a watermark, then end-to-end)' },
  'resend-ms': { type: 'string', description: 'end-to-end: send unconfirmed alerts again when the watermark stands still this long (default 5000, growing by half to 30000 while it stays stuck)' },
  key: { type: 'string', description: 'Ed25519 public key (PEM) bundles must be signed with (required, or --insecure-demo-key)' },
  'insecure-demo-key': { type: 'boolean', description: 'trust the committed demo key (models/dev-key/public.pem): demos only; status says so and the downlink stays off' },
  'demo-key-downlink': { type: 'boolean', description: 'with the demo key: subscribe to the bundle downlink anyway (anyone can sign with that key)' },
  'downlink-root': { type: 'string', description: 'allow {"path": DIR} downlinks, only for folders strictly under this one (default: path form refused)' },
  'allow-downgrade': { type: 'boolean', description: 'install downlinked bundles that are not newer than the running one (a deliberate rollback)' },
  prefix: { type: 'string', description: `topic prefix (default ${DEFAULT_PREFIX})` },
  threads: { type: 'string', description: 'onnxruntime-web wasm threads (default 1)' },
  'queue-dir': { type: 'string', description: 'state folder: offline alert queue, sequence number, downlinked bundles (default .iot-ids-hub/SITE.HUB)' },
  'queue-max': { type: 'string', description: 'alerts kept while the broker is away; oldest dropped past it (default 100000)' },
  username: { type: 'string', description: 'MQTT username' },
  password: { type: 'string', description: 'MQTT password (or env IOT_IDS_MQTT_PASSWORD)' },
  ca: { type: 'string', description: 'CA certificate (PEM) for mqtts://' },
  cert: { type: 'string', description: 'client certificate (PEM), mutual TLS' },
  'cert-key': { type: 'string', description: 'client key (PEM), mutual TLS' },
  insecure: { type: 'boolean', description: 'TLS without checking the broker certificate (testing only)' },
  'mqtt-version': { type: 'string', description: '4 (MQTT 3.1.1, default) or 5' },
  batch: { type: 'string', description: 'flows per inference batch (default 256)' },
  'batch-ms': { type: 'string', description: 'batch deadline in ms (default 0: run a batch whenever the classifier is idle)' },
  'queue-flows': { type: 'string', description: 'input queue bound in flows (default 8192)' },
  shed: { type: 'string', description: 'when the input queue is full: drop (default for stdin) or block (default for files)' },
  meter: { type: 'string', description: 'flow meter mode for --pcap: corrected (default: keeps one-packet flows and times idle flows out, as a live hub needs; the shipped model is trained on it) or cicflowmeter-compat' },
  'mitm-needs-arp': { type: 'string', description: 'alert a model MITM verdict only if the ARP watcher saw spoofing within the last SECONDS (default 600 with --pcap; 0 = always alert, the default with --flows, which carry no ARP)' },
  'burst-ms': { type: 'string', description: 'summarise repeated alerts (class, src, dst, dport, proto) per window of MS into one with count (default 0 = off)' },
  'stats-ms': { type: 'string', description: 'stats period in ms (default 10000)' },
  watchers: { type: 'string', description: 'watcher settings as JSON or a JSON file (edge/README.md "Watchers"), e.g. {"scan":{"failures":100},"relay":false}' },
  'rule-burst-ms': { type: 'string', description: 'flows of a host flagged by a watcher: one alert per (class, host) per MS with count (default 60000; 0 = one per flow)' },
  'attach-features': { type: 'boolean', description: 'every flow alert carries the flow\'s raw feature vector (`features`, float32 base64 in the bundle\'s feature order) for retraining (default off)' },
  'sample-normal': { type: 'string', description: 'publish about one Normal flow in N, picked at random, with its features on the sample channel (QoS 0, never queued; default 0 = off)' },
  'sample-budget': { type: 'string', description: `bytes per minute the samples may use (payload + topic + MQTT header; default ${DEFAULT_SAMPLE_BUDGET}, at least ${MIN_SAMPLE_BUDGET}); past it samples are dropped and counted` },
  'sample-privacy': { type: 'string', description: 'the sampled flow\'s addresses: hash (default: h: + 16 hex of HMAC-SHA256 with this hub\'s secret salt in the state folder), drop (no flow), keep' },
  'timeout-ms': { type: 'string', description: 'with --exit-at-end: longest wait for delivery (default 60000); what is not delivered stays queued for the next start, exit 1' },
} as const;

export default defineCommand({
  meta: { name: 'hub', description: 'Run a hub: flows or packets in, verdicts and alerts out over MQTT' },
  args: hubArgs,
  async run({ args }) {
    const log = (s: string) => process.stderr.write(s + '\n');
    try {
      await runHub(args as Record<string, string | boolean | undefined>, log);
    } catch (e) {
      log(`iot-ids hub: ${(e as Error).message}`);
      process.exit(e instanceof IdsError && e.code === 'BAD_OPTION' ? 2 : 1);
    }
    if (args['exit-at-end']) process.exit(0);
  },
});

/** --watchers: inline JSON or a JSON file; each key a watcher's settings object, or false to turn it off. */
export function watcherSettings(v: string | undefined): WatcherOptions | undefined {
  if (v === undefined) return undefined;
  let text: string;
  try {
    text = v.trim().startsWith('{') ? v : readFileSync(v, 'utf8');
  } catch (e) {
    throw new IdsError('BAD_OPTION', `--watchers: not JSON or a readable JSON file (${(e as Error).message})`);
  }
  return watcherSettingsFromJson(text, '--watchers') as WatcherOptions;
}

function meterMode(v: string | undefined): MeterMode {
  // Corrected by default: compat drops one-packet flows (spoofed SYN floods, scans) and ends flows only on
  // packets of the same flow, which a live hub cannot afford. Use compat only with a model trained on compat flows.
  if (v === undefined) return 'corrected';
  if (v === 'cicflowmeter-compat' || v === 'compat') return 'cicflowmeter-compat';
  if (v === 'corrected') return 'corrected';
  throw new IdsError('BAD_OPTION', `--meter must be cicflowmeter-compat or corrected, got "${v}"`);
}

function delivery(v: string | undefined): Delivery {
  if (v === undefined) return 'auto';
  if ((DELIVERIES as readonly string[]).includes(v)) return v as Delivery;
  throw new IdsError('BAD_OPTION', `--delivery must be ${DELIVERIES.join(', ')}, got "${v}"`);
}

export async function runHub(a: Record<string, string | boolean | undefined>, log: (s: string) => void): Promise<void> {
  const s = (k: string) => (typeof a[k] === 'string' ? (a[k] as string) : undefined);
  // The CLI parser reads a lone "-" as an empty value: both mean stdin.
  const stdinable = (k: string) => (s(k) === '' ? '-' : s(k));
  const pcap = stdinable('pcap');
  const flows = stdinable('flows');
  if ((pcap === undefined) === (flows === undefined)) throw new IdsError('BAD_OPTION', 'give exactly one of --pcap or --flows');
  const source = (pcap ?? flows)!;
  const shed = s('shed') ?? (source === '-' ? 'drop' : 'block');
  if (shed !== 'drop' && shed !== 'block') throw new IdsError('BAD_OPTION', `--shed must be drop or block, got "${shed}"`);
  const mqttVersion = int('mqtt-version', s('mqtt-version'), 4, 3);
  if (mqttVersion !== 4 && mqttVersion !== 5) throw new IdsError('BAD_OPTION', `--mqtt-version must be 4 or 5`);
  const site = s('site')!;
  const hubId = s('hub')!;
  const publicKeyPem = verifyingKey(a, log);
  const demoKey = keyFingerprint(publicKeyPem) === DEMO_KEY_FINGERPRINT;
  // Whoever can publish on the bundle topic installs any model signed with the (public) demo key.
  const downlink = !demoKey || !!a['demo-key-downlink'];
  if (demoKey && !downlink) log('the bundle downlink is off on the demo key (--demo-key-downlink turns it on)');
  if (demoKey && a.key !== undefined) log('warning: --key is the committed DEMO key: treated as --insecure-demo-key');
  const opts: HubOptions = {
    bundleDir: s('bundle')!,
    publicKeyPem,
    downlink,
    downlinkRoot: s('downlink-root'),
    allowDowngrade: !!a['allow-downgrade'],
    broker: s('broker')!,
    site,
    hub: hubId,
    prefix: s('prefix'),
    threads: int('threads', s('threads'), 1, 1),
    stateDir: s('queue-dir') ?? `.iot-ids-hub/${site}.${hubId}`,
    offlineMax: int('queue-max', s('queue-max'), 100_000, 1),
    username: s('username'),
    password: s('password') ?? process.env.IOT_IDS_MQTT_PASSWORD,
    ca: readText('ca', s('ca')),
    cert: readText('cert', s('cert')),
    key: readText('cert-key', s('cert-key')),
    rejectUnauthorized: !a.insecure,
    protocolVersion: mqttVersion,
    maxBatch: int('batch', s('batch'), 256, 1),
    maxDelayMs: int('batch-ms', s('batch-ms'), 0),
    capacity: int('queue-flows', s('queue-flows'), 8192, 1),
    overflow: shed,
    statsIntervalMs: int('stats-ms', s('stats-ms'), 10_000),
    burstMs: int('burst-ms', s('burst-ms'), 0),
    ruleBurstMs: int('rule-burst-ms', s('rule-burst-ms'), DEFAULT_RULE_BURST_MS),
    watchers: watcherSettings(s('watchers')),
    mitmNeedsArpMs: int('mitm-needs-arp', s('mitm-needs-arp'), pcap ? PACKET_MITM_NEEDS_ARP_MS / 1000 : 0) * 1000,
    meterMode: meterMode(s('meter')),
    delivery: delivery(s('delivery')),
    resendMs: int('resend-ms', s('resend-ms'), 5000, 10),
    attachFeatures: !!a['attach-features'],
    sampleNormal: int('sample-normal', s('sample-normal'), 0),
    sampleBudget: int('sample-budget', s('sample-budget'), DEFAULT_SAMPLE_BUDGET, MIN_SAMPLE_BUDGET),
    samplePrivacy: choiceOption('sample-privacy', s('sample-privacy'), SAMPLE_PRIVACY) ?? 'hash',
    log,
  };
  if (flows !== undefined && opts.mitmNeedsArpMs) {
    log('warning: --mitm-needs-arp with --flows: flow records carry no ARP, so every model MITM verdict will be withheld');
  }
  const hub = await Hub.start(opts);
  log(`hub ${site}/${hubId}: model ${hub.modelVersion}, broker ${opts.broker}, input ${pcap ? 'pcap' : 'flows'} ${source}` +
    (opts.attachFeatures ? ', features on alerts' : '') +
    (opts.sampleNormal ? `, sampling ~1 in ${opts.sampleNormal} Normal flows (≤ ${opts.sampleBudget} B/min, addresses ${opts.samplePrivacy})` : ''));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await hub.close();
    } catch (e) {
      log(`iot-ids hub: closing: ${(e as Error).message}`);
      process.exit(1);
    }
    process.exit(hub.health.everDegraded ? 1 : 0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());

  if (pcap !== undefined) {
    const r = await hub.runPackets(pcap);
    log(`input ended: ${r.packets} packets, ${r.flows} flows, ${r.shed} shed, ${r.evidence} watcher findings` +
      (r.error ? `, capture error: ${r.error.message}` : ''));
  } else {
    const r = await hub.runFlows(flows!);
    if (r) log(`input ended: ${r.rows} rows, ${r.accepted} classified, ${r.shed} shed, ${r.malformed} malformed`);
  }
  if (!a['exit-at-end']) {
    // Live input ended (e.g. tcpdump stopped): keep serving the downlink and forwarding queued alerts, but a hub
    // that no longer sees traffic says so.
    if (hub.health.state === 'online') hub.degrade('input ended: no traffic is being analysed');
    await hub.finish(2 ** 31 - 1);
    return new Promise<void>(() => undefined);
  }
  const ok = await hub.finish(int('timeout-ms', s('timeout-ms'), 60_000));
  const st = hub.stats;
  const p = hub.publisher;
  log(`done: ${st.flows} flows, ${st.alerts} alerts (${p.published} acknowledged by the broker, ${p.confirmed} confirmed ` +
    `stored by the aggregator, delivery ${p.delivery}), ${hub.dropped} shed, ${st.malformed} malformed, ${hub.store.size()} still queued` +
    (hub.sampler ? `; ${hub.sampler.samples} Normal samples sent, ${hub.sampler.dropped} dropped (budget or offline)` : ''));
  const left = hub.store.size();
  const problem = hub.health.firstProblem;
  await hub.close();
  if (!ok) {
    const who = p.delivery === 'end-to-end' ? 'the aggregator did not confirm' : 'the broker did not acknowledge';
    throw new IdsError('STORE_FAILED', `${who} ${left} alerts in time; they stay queued in ${opts.stateDir} and go again on the next start`);
  }
  // An unreadable input or a broken queue is a failed run even if every alert that was made got through.
  if (problem) throw new Error(`the hub was degraded: ${problem}`);
}
