/**
 * The hub runtime: wires bundle → classifier → batcher → alerts → store-and-forward → MQTT, plus stats,
 * status and the bundle downlink. Inputs (CSV flows, packets) feed `hub.sink`; the CLI (edge/hub-command.ts)
 * only parses options and calls start / runFlows / runPackets / finish / close.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdsError } from '../shared/errors.ts';
import { isValidId } from '../shared/topics.ts';
import { MITM_LABEL, NORMAL_LABEL } from '../shared/labels.ts';
import { encodeAlert, encodeStats, type AlertInput, type Evidence } from '../shared/payloads.ts';
import { BurstSummariser } from './burst.ts';
import { checkAlertStatics, encodeModelAlert } from './alert-codec.ts';
import { Batcher, type Batch, type BatcherOptions } from './batcher.ts';
import { verifyBundle } from '../shared/bundle-verify.ts';
import { loadBundle, releaseBundle, type LoadedBundle, type RuntimeOptions } from './bundle-loader.ts';
import { Classifier, type BatchClassifier } from './classifier.ts';
import { stageDownlink } from './downlink.ts';
import { readFlowCsv, type CsvInputResult } from './inputs/flow-csv.ts';
import { readPackets, type PacketInputResult } from './inputs/packets.ts';
import type { MeterMode } from '../asm/flowmeter-host.ts';
import type { FlowSink } from './inputs/sink.ts';
import { FileStore, MemoryStore, type Store } from './offline-queue.ts';
import { Publisher, type PublisherOptions } from './publisher.ts';
import { SeqCounter } from './seq.ts';
import { HubStats } from './stats.ts';

export interface HubOptions extends Omit<PublisherOptions, 'log'>, RuntimeOptions, BatcherOptions {
  bundleDir: string;
  publicKeyPem: string;
  /** Offline queue, sequence file and downlinked bundles live here; undefined = memory only (tests). */
  stateDir?: string;
  /** Most alerts kept while the broker is away (oldest dropped past it). Default 100,000. */
  offlineMax?: number;
  /** Stats period (ms); 0 = no periodic stats. Default 10,000. */
  statsIntervalMs?: number;
  /** Include every class's probability in alerts. Default true. */
  probabilities?: boolean;
  /** Flow meter semantics for packet input (asm/FLOWMETER.md): match the mode the model's training flows used. */
  meterMode?: MeterMode;
  /**
   * Alert a model verdict of MITM ARP spoofing only when the ARP watcher reported spoofing on this hub within
   * this many ms; 0 = always alert (default here; see PACKET_MITM_NEEDS_ARP_MS). A relayed session looks like a
   * direct one at the flow level. Withheld verdicts are counted (stats.unconfirmed), not alerted.
   */
  mitmNeedsArpMs?: number;
  /** Burst summarising window (ms); 0 = one alert per verdict (default). See edge/burst.ts. */
  burstMs?: number;
  log?: (line: string) => void;
  /** Swap in another classifier (tests of backpressure). */
  classifierFactory?: (b: LoadedBundle, maxRows: number) => BatchClassifier;
}

/** In the state dir: the folder of the last bundle taken from the downlink (survives a restart). */
const ACTIVE_BUNDLE_FILE = 'active-bundle';

/**
 * The bundle to start with: --bundle, unless a bundle taken from the downlink earlier is newer (by
 * model.createdAt) and still verifies — so a model pushed over the air survives a power cycle, while an operator
 * who installs a newer bundle by hand still gets it.
 */
async function chooseStartBundle(opts: HubOptions): Promise<string> {
  if (!opts.stateDir) return opts.bundleDir;
  let dir: string;
  try {
    dir = readFileSync(join(opts.stateDir, ACTIVE_BUNDLE_FILE), 'utf8').trim();
  } catch {
    return opts.bundleDir;
  }
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  try {
    const given = await verifyBundle(opts.bundleDir, { publicKeyPem: opts.publicKeyPem });
    const pushed = await verifyBundle(dir, { publicKeyPem: opts.publicKeyPem });
    if (Date.parse(pushed.manifest.model.createdAt) > Date.parse(given.manifest.model.createdAt)) {
      log(`starting with bundle ${pushed.manifest.model.version} from the downlink (${dir}), newer than --bundle`);
      return dir;
    }
  } catch (e) {
    // --bundle itself is checked again (and refused loudly) by loadBundle; a bad pushed bundle is just skipped.
    log(`downlinked bundle ${dir} not used: ${(e as Error).message}`);
  }
  return opts.bundleDir;
}

/**
 * The corroboration window packet input uses by default (`iot-ids hub --pcap`, the demo): on the real benign
 * captures nearly all of the shipped model's false alerts were MITM verdicts, while the ARP watcher, which sees the
 * spoofing itself, raised nothing; ten minutes covers a spoofing session's flows. Flow records carry no ARP, so
 * CSV input defaults to 0.
 */
export const PACKET_MITM_NEEDS_ARP_MS = 600_000;

const round4 = (x: number): number => Math.min(1, Math.max(0, Math.round(x * 1e4) / 1e4));

export class Hub {
  readonly stats = new HubStats();
  readonly publisher: Publisher;
  readonly store: Store;
  private readonly batcher: Batcher;
  private readonly seq: SeqCounter;
  private bundle: LoadedBundle;
  private statsTimer: NodeJS.Timeout | undefined;
  private downlinkChain: Promise<void> = Promise.resolve();
  private readonly log: (line: string) => void;
  private readonly alertBuf: string[] = [];
  private malformedLogged = 0;
  private readonly burst: BurstSummariser | undefined;
  /** performance.now() of the ARP watcher's latest evidence. */
  private lastArpEvidence = -Infinity;

  private constructor(private readonly opts: HubOptions, bundle: LoadedBundle, clf: BatchClassifier) {
    this.log = opts.log ?? ((l) => process.stderr.write(l + '\n'));
    this.bundle = bundle;
    this.store = opts.stateDir
      ? new FileStore(join(opts.stateDir, 'offline-queue'), { maxRecords: opts.offlineMax })
      : new MemoryStore(opts.offlineMax);
    this.seq = new SeqCounter(opts.stateDir ? join(opts.stateDir, 'seq') : undefined);
    this.batcher = new Batcher(clf, (b) => this.onBatch(b), opts);
    this.batcher.onError((e) => this.fail('inference', e));
    this.publisher = new Publisher({ ...opts, log: this.log }, this.store);
    this.publisher.setBundle(bundle.manifest.model.version);
    this.publisher.onDownlink((p) => {
      this.downlinkChain = this.downlinkChain.then(async () => void (await this.applyDownlink(p)));
    });
    if (opts.burstMs && opts.burstMs > 0) {
      this.burst = new BurstSummariser(opts.burstMs, (a) => {
        this.stats.alerts++;
        this.publisher.enqueue([encodeAlert({ ...a, seq: this.seq.next(), ts: Date.now() })]);
      });
    }
    const every = opts.statsIntervalMs ?? 10_000;
    if (every > 0) this.statsTimer = setInterval(() => this.publishStats(), every).unref();
  }

  /** Verifies and loads the bundle, then connects. A bad bundle at start is fatal (there is nothing to run). */
  static async start(opts: HubOptions): Promise<Hub> {
    for (const [k, v] of [['site', opts.site], ['hub', opts.hub]] as const) {
      if (!isValidId(v)) throw new IdsError('BAD_OPTION', `--${k} "${v}" must be 1-64 letters, digits, '.', '_' or '-'`);
    }
    const bundle = await loadBundle(await chooseStartBundle(opts), opts);
    checkAlertStatics(opts.hub, opts.site, bundle.manifest.labels, bundle.manifest.model.version);
    const maxRows = opts.maxBatch ?? 256;
    const clf = opts.classifierFactory ? opts.classifierFactory(bundle, maxRows) : new Classifier(bundle, maxRows);
    return new Hub(opts, bundle, clf);
  }

  get sink(): FlowSink {
    return this.batcher;
  }
  get modelVersion(): string {
    return this.batcher.model;
  }
  get queueDepth(): number {
    return this.batcher.depth;
  }
  get dropped(): number {
    return this.batcher.dropped;
  }

  async runFlows(source: Parameters<typeof readFlowCsv>[0]): Promise<CsvInputResult | undefined> {
    try {
      return await readFlowCsv(source, this.batcher, {
        required: this.bundle.manifest.preprocessing.features,
        onMalformed: (_line, reason) => {
          this.stats.malformed++;
          if (this.malformedLogged++ < 5) this.log(`malformed row skipped: ${reason}`);
        },
      });
    } catch (e) {
      this.fail('input', e);
      return undefined;
    }
  }

  async runPackets(source: string | NodeJS.ReadableStream): Promise<PacketInputResult> {
    const res = await readPackets(source, this.batcher, {
      wasm: this.bundle.preprocessBytes,
      meterMode: this.opts.meterMode,
      live: source === '-',
      onEvidence: (e) => this.ruleAlert(e),
    });
    if (res.error) this.fail('input', res.error);
    return res;
  }

  private fail(where: 'input' | 'inference' | 'bundle', e: unknown): void {
    const msg = `${where}: ${(e as Error).message ?? String(e)}`;
    if (where === 'input') this.stats.inputErrors++;
    if (where === 'bundle') this.stats.bundlesRejected++;
    this.stats.lastError = msg;
    this.log(msg);
  }

  private onBatch(b: Batch): void {
    const { verdicts: v, labels, rows } = b;
    const normal = labels.indexOf(NORMAL_LABEL);
    const window = this.opts.mitmNeedsArpMs ?? 0;
    const mitm = window > 0 && performance.now() - this.lastArpEvidence > window ? labels.indexOf(MITM_LABEL) : -1;
    const c = labels.length;
    const withProbs = this.opts.probabilities ?? true;
    const out = this.alertBuf;
    out.length = 0;
    this.stats.countFlows(rows);
    for (let i = 0; i < rows; i++) {
      const k = v.classIdx[i];
      this.stats.countClass(k >= 0 ? labels[k] : 'unsure');
      if (k === normal || k < 0) continue;
      if (k === mitm) {
        this.stats.unconfirmed++;
        continue;
      }
      let probabilities: Record<string, number> | undefined;
      if (withProbs) {
        probabilities = {};
        for (let j = 0; j < c; j++) probabilities[labels[j]] = round4(v.probs[i * c + j]);
      }
      const a: AlertInput = {
        v: 1,
        hub: this.opts.hub,
        site: this.opts.site,
        seq: 0,
        ts: Date.now(),
        class: labels[k],
        confidence: round4(v.confidence[i]),
        probabilities,
        flow: { src: b.src[i], dst: b.dst[i], sport: b.sport[i], dport: b.dport[i], proto: b.proto[i] },
        model: b.model,
        count: 1,
        source: 'model',
      };
      if (this.burst && !this.burst.offer(a)) continue;
      // Numbered when published, so seq follows publish order and folded verdicts use no numbers.
      a.seq = this.seq.next();
      out.push(encodeModelAlert(a));
    }
    this.stats.alerts += out.length;
    this.publisher.enqueue(out);
    // Latency: arrival → alert handed to the MQTT client (or to the offline queue); Normal flows → verdict.
    const now = performance.now();
    for (let i = 0; i < rows; i++) this.stats.latency(now - b.arrival[i]);
  }

  /** ARP-watcher evidence → an alert with source 'rule' (MITM ARP spoofing lives below the flow layer). */
  ruleAlert(e: Evidence): void {
    this.lastArpEvidence = performance.now();
    this.stats.ruleAlerts++;
    this.stats.alerts++;
    this.publisher.enqueue([
      encodeAlert({
        v: 1,
        hub: this.opts.hub,
        site: this.opts.site,
        seq: this.seq.next(),
        ts: Date.now(),
        class: MITM_LABEL,
        confidence: 1,
        flow: { src: e.ip, dst: '', sport: 0, dport: 0, proto: 0 },
        model: 'arp-watcher',
        count: 1,
        source: 'rule',
        evidence: e,
      }),
    ]);
  }

  /** Verifies a downlinked bundle and swaps it in between batches; a bad one is counted and the old one stays. */
  async applyDownlink(payload: Uint8Array): Promise<boolean> {
    let dir: string | undefined;
    try {
      dir = await stageDownlink(payload, this.opts.stateDir ?? '');
      const next = await loadBundle(dir, this.opts);
      if (next.manifest.model.version === this.modelVersion) {
        // A retained downlink comes again on every reconnect: nothing to do for the bundle already running.
        await releaseBundle(next);
        if (this.opts.stateDir && dir.startsWith(this.opts.stateDir)) rmSync(dir, { recursive: true, force: true });
        this.log(`downlink: bundle ${this.modelVersion} is already running`);
        return true;
      }
      checkAlertStatics(this.opts.hub, this.opts.site, next.manifest.labels, next.manifest.model.version);
      const maxRows = this.opts.maxBatch ?? 256;
      const clf = this.opts.classifierFactory ? this.opts.classifierFactory(next, maxRows) : new Classifier(next, maxRows);
      this.batcher.swap(clf);
      this.bundle = next;
      this.stats.bundlesLoaded++;
      this.publisher.setBundle(next.manifest.model.version);
      this.log(`bundle ${next.manifest.model.version} loaded from the downlink (${dir})`);
      this.pruneStaged(dir);
      if (this.opts.stateDir) writeFileSync(join(this.opts.stateDir, ACTIVE_BUNDLE_FILE), dir);
      return true;
    } catch (e) {
      this.fail('bundle', e);
      if (dir && this.opts.stateDir && dir.startsWith(this.opts.stateDir)) rmSync(dir, { recursive: true, force: true });
      this.publishStats();
      return false;
    }
  }

  /** Keeps only the active downlinked bundle folder. */
  private pruneStaged(keep: string): void {
    if (!this.opts.stateDir) return;
    const root = join(this.opts.stateDir, 'bundles');
    try {
      for (const d of readdirSync(root)) if (join(root, d) !== keep) rmSync(join(root, d), { recursive: true, force: true });
    } catch {
      // nothing staged
    }
  }

  /** Waits for downlinks being applied (tests). */
  idleDownlink(): Promise<void> {
    return this.downlinkChain;
  }

  publishStats(): void {
    const s = this.stats.snapshot(
      { hub: this.opts.hub, site: this.opts.site },
      { queueDepth: this.batcher.depth, dropped: this.batcher.dropped + this.store.dropped(), offlineQueued: this.store.size() },
    );
    this.publisher.publishStats(encodeStats(s));
  }

  /** Classifies everything queued and waits until the broker has acknowledged every alert (or the timeout). */
  async finish(timeoutMs = 60_000): Promise<boolean> {
    await this.batcher.drain();
    this.burst?.sweep(true);
    const ok = await this.publisher.flush(timeoutMs);
    this.publishStats();
    return ok;
  }

  async close(): Promise<void> {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.batcher.close();
    this.burst?.sweep(true);
    await this.downlinkChain.catch(() => undefined);
    await this.publisher.close();
    await this.store.close();
  }
}
