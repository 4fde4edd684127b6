/**
 * `npm run bench -- hub-features`: what --attach-features and --sample-normal cost the hub, and what they put on
 * the wire. The model is the tiny hand-made classifier at the shipped bundle's width (57 features), so inference
 * is nearly free and the figure is the plumbing that the options change (a real model's 40+ µs per flow would
 * hide it). 30,000 CSV flows, 10 % of them attacks, through the hub to our own mosquitto (aedes in process where
 * mosquitto is missing). Three variants alternate run by run, so each shares the machine's speed of the moment:
 *   off            — the reference: what a hub did before;
 *   attach         — --attach-features;
 *   attach+sample  — --attach-features --sample-normal 100 with a budget that never binds (every picked sample sent).
 * The figure is flows per CPU-second of the hub process (the broker is another process), median of RUNS runs, and
 * its ratio to `off`; then one untimed run per variant with a subscriber measures bytes per alert and per sample.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import mqtt from 'mqtt';
import { FLOW_COLUMNS } from '../shared/features.ts';
import { FP32_MODEL_FILE, PREPROCESS_WASM_FILE } from '../shared/manifest.ts';
import { Rng } from '../shared/random.ts';
import { Hub, type HubOptions } from '../edge/hub.ts';
import { buildBundle } from '../trainer/bundle/build.ts';
import { tinyOnnxModel } from '../test/edge/fixtures/tiny-onnx.ts';
import { devKeyPair, fixtureManifest, PREPROCESS_WASM } from '../test/edge/fixtures/bundle.ts';
import { hasMosquitto, Mosquitto, startAedes, type Broker } from '../test/edge/fixtures/brokers.ts';
import { readFileSync } from 'node:fs';
import { BENCH_FEATURES } from './hub-fixtures.ts';
import { emit, median } from './report.ts';

const RUNS = Number(process.env.IOT_IDS_BENCH_RUNS ?? 5);
const FLOWS = 30_000;
const ATTACK_SHARE = 0.1;
const log = (s: string) => process.stderr.write(s + '\n');

type Variant = 'off' | 'attach' | 'attach+sample';
const VARIANTS: Variant[] = ['off', 'attach', 'attach+sample'];
const variantOpts = (v: Variant): Partial<HubOptions> =>
  v === 'off' ? {} : v === 'attach' ? { attachFeatures: true } : { attachFeatures: true, sampleNormal: 100, sampleBudget: 1e12 };

/** Tiny model over BENCH_FEATURES: class k (k < 5) wins when model feature k is high. */
async function wideTinyBundle(dir: string, keys: ReturnType<typeof devKeyPair>): Promise<string> {
  const n = BENCH_FEATURES.length;
  const m = fixtureManifest('bench-wide-tiny');
  return buildBundle({
    outDir: dir,
    files: {
      [FP32_MODEL_FILE]: tinyOnnxModel({ features: n, classes: 5 }),
      [PREPROCESS_WASM_FILE]: new Uint8Array(readFileSync(PREPROCESS_WASM)),
    },
    manifest: {
      ...m,
      model: { ...m.model, inputShape: [-1, n, 1] },
      preprocessing: {
        features: [...BENCH_FEATURES], transforms: BENCH_FEATURES.map(() => 'none' as const),
        min: BENCH_FEATURES.map(() => 0), max: BENCH_FEATURES.map(() => 1000), portPolicy: 'dst',
      },
      thresholds: { Normal: 0, DoS: 0.5, Mirai: 0.5, Scan: 0.5, 'MITM ARP Spoofing': 0.5 },
    },
    privateKeyPem: keys.privateKeyPem,
  });
}

/** All flow columns; the first five model features pick the class (Normal for 90 % of flows), the rest random. */
function csv(seed: number): string[] {
  const rng = new Rng(seed);
  const drive = BENCH_FEATURES.slice(0, 5);
  const chunks = [FLOW_COLUMNS.join(',') + '\n'];
  let lines: string[] = [];
  for (let i = 0; i < FLOWS; i++) {
    const k = rng.next() < ATTACK_SHARE ? 1 + (i % 4) : 0;
    lines.push(FLOW_COLUMNS.map((c) => {
      if (c === 'Flow_ID' || c === 'Timestamp') return 'x';
      if (c === 'Src_IP') return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      if (c === 'Dst_IP') return '192.168.1.1';
      if (c === 'Src_Port') return String(1024 + (i % 60000));
      const d = drive.indexOf(c);
      if (d >= 0) return d === k ? '1000' : '0';
      if (c === 'Protocol') return '6';
      return String(Math.round(rng.next() * 1e5) / 100);
    }).join(','));
    if (lines.length === 1000) {
      chunks.push(lines.join('\n') + '\n');
      lines = [];
    }
  }
  if (lines.length) chunks.push(lines.join('\n') + '\n');
  return chunks;
}

async function once(v: Variant, bundleDir: string, pem: string, url: string, chunks: string[], run: number,
  measureBytes = false) {
  const state = mkdtempSync(join(tmpdir(), 'iot-ids-bench-feat-'));
  const hubId = `feat${run}-${v.replace('+', '-')}`;
  const bytes = { alert: 0, alerts: 0, sample: 0, samples: 0 };
  let sub: mqtt.MqttClient | undefined;
  if (measureBytes) {
    sub = mqtt.connect(url, { clientId: `bench-feat-sub-${run}`, protocolVersion: 4 });
    await new Promise<void>((r) => sub!.once('connect', () => sub!.subscribe(`ids/v1/bench/${hubId}/+`, { qos: 1 }, () => r())));
    sub.on('message', (t, p) => {
      if (t.endsWith('/alert')) (bytes.alert += p.length), bytes.alerts++;
      else if (t.endsWith('/sample')) (bytes.sample += p.length), bytes.samples++;
    });
  }
  const hub = await Hub.start({ bundleDir, publicKeyPem: pem, broker: url, site: 'bench', hub: hubId, stateDir: state,
    statsIntervalMs: 0, overflow: 'block', delivery: 'puback', log: () => undefined, ...variantOpts(v) });
  for (let i = 0; i < 500 && !hub.publisher.connected; i++) await new Promise((r) => setTimeout(r, 10));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await hub.runFlows(Readable.from(chunks));
  await hub.finish(120_000);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const out = {
    cpuUsPerFlow: (cpu.user + cpu.system) / FLOWS, wallMs, alerts: hub.stats.alerts,
    samples: hub.sampler?.samples ?? 0, sampleDropped: hub.sampler?.dropped ?? 0, bytes,
  };
  if (sub) {
    for (let i = 0; i < 300 && (bytes.alerts < out.alerts || bytes.samples < out.samples); i++) await new Promise((r) => setTimeout(r, 10));
    sub.end(true);
  }
  await hub.close();
  rmSync(state, { recursive: true, force: true });
  return out;
}

export async function run(): Promise<void> {
  const keys = devKeyPair();
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-bench-feat-bundle-'));
  let broker: Broker | Mosquitto | undefined;
  try {
    broker = hasMosquitto() ? await Mosquitto.create() : await startAedes();
    const kind = broker instanceof Mosquitto ? 'mosquitto' : 'aedes (in process)';
    const bundleDir = await wideTinyBundle(join(dir, 'bundle'), keys);
    const chunks = csv(7);
    log(`hub-features bench: ${BENCH_FEATURES.length} features, ${FLOWS} flows (${ATTACK_SHARE * 100} % attacks), broker ${kind}, ${RUNS} runs per variant`);
    await once('off', bundleDir, keys.publicKeyPem, broker.url, chunks, -1); // warm-up: JIT, wasm compile caches
    const cpu: Record<Variant, number[]> = { off: [], attach: [], 'attach+sample': [] };
    let alerts = 0;
    let samples = 0;
    for (let r = 0; r < RUNS; r++) {
      // Rotate the order too, so no variant always runs first after a pause.
      for (let j = 0; j < VARIANTS.length; j++) {
        const v = VARIANTS[(r + j) % VARIANTS.length];
        const o = await once(v, bundleDir, keys.publicKeyPem, broker.url, chunks, r);
        cpu[v].push(o.cpuUsPerFlow);
        alerts = o.alerts;
        if (v === 'attach+sample') samples = o.samples;
        log(`  run ${r} ${v}: ${o.cpuUsPerFlow.toFixed(2)} µs CPU per flow, ${o.alerts} alerts, ${o.samples} samples`);
      }
    }
    const ref = median(cpu.off);
    const attachMedian = median(cpu.attach);
    for (const v of VARIANTS) {
      const m = median(cpu[v]);
      // Per-run ratios against the `off` run of the same round: the machine's speed of the moment cancels out.
      const ratios = cpu[v].map((x, i) => x / cpu.off[i]);
      emit({
        bench: 'hub-features', metric: `hub_cpu_us_per_flow_${v}`, value: +m.toFixed(3), unit: 'µs CPU/flow',
        flowsPerCpuSecond: Math.round(1e6 / m), runs: cpu[v].map((x) => +x.toFixed(3)),
        reference: { offUsPerFlow: +ref.toFixed(3), ratioToOff: +median(ratios).toFixed(3), extraUsPerFlow: +(m - ref).toFixed(3),
          ...(v === 'attach' ? { extraUsPerAlert: +(((m - ref) * FLOWS) / alerts).toFixed(2) } : {}),
          ...(v === 'attach+sample' ? { extraUsPerSampleOverAttach: +(((m - attachMedian) * FLOWS) / samples).toFixed(1) } : {}),
          flows: FLOWS, alerts, samples,
          features: BENCH_FEATURES.length, broker: kind },
      });
    }
    for (const v of VARIANTS) {
      const o = await once(v, bundleDir, keys.publicKeyPem, broker.url, chunks, 100, true);
      emit({
        bench: 'hub-features', metric: `bytes_per_alert_${v}`, value: Math.round(o.bytes.alert / Math.max(1, o.bytes.alerts)), unit: 'bytes',
        reference: { alerts: o.bytes.alerts, samples: o.bytes.samples, bytesPerSample: o.bytes.samples ? Math.round(o.bytes.sample / o.bytes.samples) : null,
          features: BENCH_FEATURES.length },
      });
    }
  } finally {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
