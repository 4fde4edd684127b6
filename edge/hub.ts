/**
 * The hub runtime: wires bundle → classifier → batcher → alerts → store-and-forward → MQTT, plus stats,
 * status and the bundle downlink. Inputs (CSV flows, packets) feed `hub.sink`; the CLI (edge/hub-command.ts)
 * only parses options and calls start / runFlows / runPackets / finish / close.
 */
import { existsSync, mkdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdsError } from '../shared/errors.ts';
import { isValidId } from '../shared/topics.ts';
import { MITM_LABEL, NORMAL_LABEL } from '../shared/labels.ts';
import { AlertSchema, encodeAlert, encodeStats, type AlertInput, type Evidence } from '../shared/payloads.ts';
import { BurstSummariser } from './burst.ts';
import { checkAlertStatics, encodeModelAlert } from './alert-codec.ts';
import { Batcher, type Batch, type BatcherOptions } from './batcher.ts';
import { DEMO_KEY_FINGERPRINT, keyFingerprint } from '../shared/bundle-verify.ts';
import { bundleRelease, isNewerBundle, type BundleManifest } from '../shared/manifest.ts';
import { chooseStartBundle, writeActiveBundle } from './active-bundle.ts';
import { loadBundle, releaseBundle, type LoadedBundle, type RuntimeOptions } from './bundle-loader.ts';
import { Classifier, type BatchClassifier } from './classifier.ts';
import { isStrictlyInside, stageDownlink } from './downlink.ts';
import { readFlowCsv, type CsvInputResult } from './inputs/flow-csv.ts';
import { readPackets, type PacketInputResult } from './inputs/packets.ts';
import type { MeterMode } from '../asm/flowmeter-host.ts';
import type { FlowSink } from './inputs/sink.ts';
import { Watchers, bundleWatcherSettings, hubWatcherOptions, type Finding, type WatcherOptions } from './watchers/index.ts';
import { HostFlags, ModelGate, flaggedClass, type VerdictOptions } from './verdicts.ts';
import { FileStore, MemoryStore, type Store } from './offline-queue.ts';
import { Publisher, seqOf, type PublisherOptions, type StatusFields } from './publisher.ts';
import { FeatureTap } from './feature-tap.ts';
import { NormalSampler, loadSalt, type SamplePrivacy } from './sampler.ts';
import { SeqCounter } from './seq.ts';
import { Health } from './state.ts';
import { HubStats } from './stats.ts';

export interface HubOptions extends Omit<PublisherOptions, 'log'>, RuntimeOptions, BatcherOptions {
  bundleDir: string;
  publicKeyPem: string;
  /** Offline queue, sequence file and downlinked bundles live here; undefined = memory only (tests). */
  stateDir?: string;
  /** Subscribe to the bundle downlink. Default: yes, except on the demo key (whose private half is public). */
  downlink?: boolean;
  /** The only folder `{"path": ...}` downlinks may name bundles under (strictly); undefined = the path form is refused. */
  downlinkRoot?: string;
  /** Install downlinked bundles that are not newer than the running one (an operator's deliberate rollback). */
  allowDowngrade?: boolean;
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
  /** Watcher settings (edge/watchers/index.ts); packet input only. */
  watchers?: WatcherOptions;
  /** How findings flag hosts (edge/verdicts.ts). */
  verdicts?: VerdictOptions;
  /**
   * Flows of a flagged host are summarised into one alert per (class, host) per this window (ms) with `count`;
   * 0 = one alert per flow. Default 60,000: a flood or a scan gives a handful of alerts.
   */
  ruleBurstMs?: number;
  /**
   * Attach each flow alert's raw feature vector (`features`: float32 base64 in the running bundle's
   * preprocessing.features order) so an operator's mark can become a training row. Default off: +424 bytes per
   * alert at 79 features. Host-level watcher findings carry none (they are about a host, not one flow).
   */
  attachFeatures?: boolean;
  /** Publish about one Normal verdict in N, with its features, on the sample channel (edge/sampler.ts); 0 = off. */
  sampleNormal?: number;
  /** Sample byte budget per minute (payload + topic + MQTT header). Default 65,536. */
  sampleBudget?: number;
  /** The sampled flow's addresses: hashed with the hub's salt (default), dropped, or kept. */
  samplePrivacy?: SamplePrivacy;
  /** Every flow's final verdict (class, or undefined for no alert) and the model's: scoring and tests. */
  onVerdict?: (v: FlowVerdict) => void;
  /** Every watcher finding: scoring and tests. */
  onFinding?: (f: Finding) => void;
  log?: (line: string) => void;
  /** Swap in another classifier (tests of backpressure). */
  classifierFactory?: (b: LoadedBundle, maxRows: number) => BatchClassifier;
}

/** Present once an aggregator's ack watermark was seen: `auto` delivery then starts end-to-end (publisher.ts). */
const ACKS_SEEN_FILE = 'acks-seen';

/** One flow's outcome (HubOptions.onVerdict). Reused between calls: copy what you keep. */
export interface FlowVerdict {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  proto: number;
  /** The model's class ('unsure' below every threshold). */
  model: string;
  /** The class alerted (after flags and the MITM gate), or undefined when nothing is alerted. */
  alerted: string | undefined;
  /** Who decided the alerted class: the model, or a watcher flag that upgraded it. */
  source: 'model' | 'rule';
}

export const DEFAULT_RULE_BURST_MS = 60_000;

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
  /** online, or degraded with a reason (status, stats, and the exit code of `hub --exit-at-end`). */
  readonly health = new Health();
  /** sha256 of the raw public key bundles are verified with (in status). */
  readonly keyFingerprint: string;
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
  /** performance.now() of the latest ARP-level (MITM) finding. */
  private lastArpEvidence = -Infinity;
  /** Alerts that could not be stored (the offline queue failed): counted in stats.dropped, never silent. */
  private unstored = 0;
  /** Bundle folders this hub unpacked itself: the only folders it ever removes. */
  private readonly staged = new Set<string>();
  private readonly pathRoot: string | undefined;
  private readonly stateReal: string | undefined;
  readonly watchers: Watchers;
  readonly flags: HostFlags;
  readonly gate: ModelGate;
  private readonly ruleBurst: BurstSummariser | undefined;
  /** Set when features leave the hub (attached to alerts, or in samples). */
  private readonly tap: FeatureTap | undefined;
  private readonly attach: boolean;
  readonly sampler: NormalSampler | undefined;
  private readonly verdict: FlowVerdict = { src: '', dst: '', sport: 0, dport: 0, proto: 0, model: '', alerted: undefined, source: 'model' };

  private constructor(
    private readonly opts: HubOptions,
    bundle: LoadedBundle,
    clf: BatchClassifier,
    start: { staged?: string; pathRoot?: string; stateReal?: string },
  ) {
    this.log = opts.log ?? ((l) => process.stderr.write(l + '\n'));
    this.bundle = bundle;
    if (start.staged) this.staged.add(start.staged);
    this.pathRoot = start.pathRoot;
    this.stateReal = start.stateReal;
    this.keyFingerprint = keyFingerprint(opts.publicKeyPem);
    this.store = opts.stateDir
      ? new FileStore(join(opts.stateDir, 'offline-queue'), {
          maxRecords: opts.offlineMax,
          onRepair: (lost, msg) => this.storeRepaired(lost, msg),
        })
      : new MemoryStore(opts.offlineMax);
    this.seq = new SeqCounter(opts.stateDir ? join(opts.stateDir, 'seq') : undefined);
    const last = this.store.lastPut();
    const lastSeq = last === undefined ? undefined : seqOf(last);
    if (lastSeq !== undefined) this.seq.resumeAfter(lastSeq);
    this.batcher = new Batcher(clf, (b) => this.onBatch(b), opts);
    this.batcher.onError((e) => this.fail('inference', e));
    const acksFile = opts.stateDir ? join(opts.stateDir, ACKS_SEEN_FILE) : undefined;
    this.publisher = new Publisher({
      ...opts, log: this.log,
      acksSeen: acksFile !== undefined && existsSync(acksFile),
      onAcksSeen: () => {
        if (acksFile) writeFileSync(acksFile, `${new Date().toISOString()}\n`);
      },
    }, this.store);
    const demoKey = this.keyFingerprint === DEMO_KEY_FINGERPRINT;
    this.publisher.setStatus({ ...bundleStatus(bundle.manifest), keyFingerprint: this.keyFingerprint, ...(demoKey ? { demoKey } : {}) });
    this.attach = opts.attachFeatures ?? false;
    if (opts.sampleNormal) {
      const { salt, persistent } = loadSalt(opts.stateDir, this.log);
      if (!persistent && (opts.samplePrivacy ?? 'hash') === 'hash') this.log('samples: no state folder: hashed addresses change when the hub restarts');
      this.sampler = new NormalSampler({
        every: opts.sampleNormal, budgetBytesPerMin: opts.sampleBudget, privacy: opts.samplePrivacy, salt,
        hub: opts.hub, site: opts.site, topic: this.publisher.topics.sample,
      });
      this.stats.samples = this.sampler;
    }
    if (this.attach || this.sampler) this.tap = new FeatureTap();
    this.health.onChange(() => this.publisher.setStatus({ health: this.health.state, reason: this.health.reason }));
    if (opts.downlink ?? !demoKey) {
      this.publisher.onDownlink((p) => {
        this.downlinkChain = this.downlinkChain.then(async () => void (await this.applyDownlink(p)));
      });
    }
    // A summary leaves when its window closes: numbered then, like every alert, so seq follows publish order.
    const emitSummary = (a: AlertInput, features: Float32Array | undefined): void => {
      if (features && this.tap) a.features = this.tap.encode(features);
      this.stats.alerts++;
      this.deliver([encodeAlert({ ...a, seq: this.seq.next(), ts: Date.now() })]);
    };
    if (opts.burstMs && opts.burstMs > 0) this.burst = new BurstSummariser(opts.burstMs, emitSummary);
    this.watchers = new Watchers(hubWatcherOptions(bundle.manifest, opts.watchers));
    this.flags = new HostFlags(opts.verdicts);
    this.gate = new ModelGate(this.watchers, opts.verdicts);
    const ruleBurstMs = opts.ruleBurstMs ?? DEFAULT_RULE_BURST_MS;
    if (ruleBurstMs > 0) this.ruleBurst = new BurstSummariser(ruleBurstMs, emitSummary);
    const every = opts.statsIntervalMs ?? 10_000;
    if (every > 0) this.statsTimer = setInterval(() => this.publishStats(), every).unref();
  }

  /** Verifies and loads the bundle, then connects. A bad bundle at start is fatal (there is nothing to run). */
  static async start(opts: HubOptions): Promise<Hub> {
    for (const [k, v] of [['site', opts.site], ['hub', opts.hub]] as const) {
      if (!isValidId(v)) throw new IdsError('BAD_OPTION', `--${k} "${v}" must be 1-64 letters, digits, '.', '_' or '-'`);
    }
    const { stateReal, pathRoot } = checkStateAndRoot(opts);
    const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
    const choice = await chooseStartBundle(opts.bundleDir, opts.stateDir, opts.publicKeyPem, log);
    const bundle = await loadBundle(choice.dir, opts);
    bundleWatcherSettings(bundle.manifest);
    checkAlertStatics(opts.hub, opts.site, bundle.manifest.labels, bundle.manifest.model.version);
    const maxRows = opts.maxBatch ?? 256;
    const clf = opts.classifierFactory ? opts.classifierFactory(bundle, maxRows) : new Classifier(bundle, maxRows);
    // A folder the hub unpacked earlier stays in its care: removed once another bundle replaces it.
    const staged = choice.record?.owned ? choice.record.dir : undefined;
    return new Hub(opts, bundle, clf, { staged, pathRoot, stateReal });
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

  /**
   * Marks a part of the hub (an input, the offline queue) as not doing its job: status and stats say `degraded`
   * with the reason until `recover(part)`. Inputs call these when they lose and regain their stream.
   */
  degrade(reason: string, part = 'input'): void {
    if (this.health.reason !== `${part}: ${reason}`) this.log(`degraded: ${part}: ${reason}`);
    this.health.degrade(part, reason);
    this.publishStats();
  }

  recover(part = 'input'): void {
    const was = this.health.state;
    this.health.recover(part);
    if (was !== this.health.state) {
      this.log(`${part} recovered: hub ${this.health.state}`);
      this.publishStats();
    }
  }

  /**
   * `live` (default: stdin) resynchronises past a corrupt record instead of ending the input; while the reader
   * searches for the next good record nothing is analysed, so the hub reports itself degraded until it resumes.
   */
  async runPackets(source: string | NodeJS.ReadableStream, live = source === '-'): Promise<PacketInputResult> {
    const res = await readPackets(source, this.batcher, {
      wasm: this.bundle.preprocessBytes,
      meterMode: this.opts.meterMode,
      live,
      watchers: this.watchers,
      onFinding: (f) => this.finding(f),
      onDegraded: (reason, offset) => this.degrade(`capture corrupt at byte ${offset}: ${reason}`, 'capture'),
      onResynced: () => this.recover('capture'),
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
    // An input that cannot be read is a hub that sees nothing: say so in status, not only in a counter.
    if (where === 'input') this.degrade((e as Error).message ?? String(e));
  }

  /** Hands alerts to the store-and-forward queue; if the queue cannot take them they are counted, never silent. */
  private deliver(payloads: string[]): void {
    try {
      this.publisher.enqueue(payloads);
    } catch (e) {
      this.unstored += payloads.length;
      this.degrade(`cannot store alerts (${this.unstored} lost so far): ${(e as Error).message}`, 'offline queue');
    }
  }

  private storeRepaired(lost: number, msg: string): void {
    this.log(msg);
    this.stats.lastError = msg;
    // Rewrite the sequence file too (the whole state folder may be gone), so a restart never reuses a number.
    this.seq.persist();
    if (lost > 0) this.degrade(msg, 'offline queue');
  }

  private onBatch(b: Batch): void {
    const { verdicts: v, labels, rows } = b;
    const normal = labels.indexOf(NORMAL_LABEL);
    const window = this.opts.mitmNeedsArpMs ?? 0;
    const mitm = window > 0 && performance.now() - this.lastArpEvidence > window ? labels.indexOf(MITM_LABEL) : -1;
    const out = this.alertBuf;
    out.length = 0;
    const tap = this.opts.onVerdict;
    this.stats.countFlows(rows);
    for (let i = 0; i < rows; i++) {
      const k = v.classIdx[i];
      const model = k >= 0 ? labels[k] : 'unsure';
      this.stats.countClass(model);
      const flag = this.flags.forFlow(b.src[i], b.dst[i], b.arrival[i]);
      let alerted: string | undefined;
      if (flag) {
        alerted = flaggedClass(flag.class, model);
        this.flaggedAlert(b, i, alerted, flag.host, model === alerted ? 'model' : 'rule', out);
      } else if (k === mitm || (k !== normal && k >= 0 && !this.gate.passes(model, b.src[i], b.dst[i]))) {
        this.stats.unconfirmed++;
      } else if (k !== normal && k >= 0) {
        alerted = model;
        this.modelAlert(b, i, k, out);
      } else if (this.sampler && k === normal && normal >= 0 && this.sampler.pick()) {
        this.sample(b, i, k);
      }
      if (tap) {
        const t = this.verdict;
        t.src = b.src[i];
        t.dst = b.dst[i];
        t.sport = b.sport[i];
        t.dport = b.dport[i];
        t.proto = b.proto[i];
        t.model = model;
        t.alerted = alerted;
        t.source = flag && model !== alerted ? 'rule' : 'model';
        tap(t);
      }
    }
    this.stats.alerts += out.length;
    this.deliver(out);
    // Latency: arrival → alert handed to the MQTT client (or to the offline queue); Normal flows → verdict.
    const now = performance.now();
    for (let i = 0; i < rows; i++) this.stats.latency(now - b.arrival[i]);
  }

  private alertFor(b: Batch, i: number, cls: string, confidence: number, source: 'model' | 'rule'): AlertInput {
    const { verdicts: v, labels } = b;
    const c = labels.length;
    let probabilities: Record<string, number> | undefined;
    if (this.opts.probabilities ?? true) {
      probabilities = {};
      for (let j = 0; j < c; j++) probabilities[labels[j]] = round4(v.probs[i * c + j]);
    }
    return {
      v: 1,
      hub: this.opts.hub,
      site: this.opts.site,
      seq: 0,
      ts: Date.now(),
      class: cls,
      confidence: round4(confidence),
      probabilities,
      flow: { src: b.src[i], dst: b.dst[i], sport: b.sport[i], dport: b.dport[i], proto: b.proto[i] },
      model: b.model,
      count: 1,
      source,
    };
  }

  private modelAlert(b: Batch, i: number, k: number, out: string[]): void {
    const a = this.alertFor(b, i, b.labels[k], b.verdicts.confidence[i], 'model');
    const vec = this.attach ? this.tap!.gather(b, i) : undefined;
    if (this.burst && !this.burst.offer(a, undefined, vec)) return;
    if (vec) a.features = this.tap!.encodeLast();
    // Numbered when published, so seq follows publish order and folded verdicts use no numbers.
    a.seq = this.seq.next();
    out.push(encodeModelAlert(a));
  }

  /** A flow of a flagged host: confirmed or upgraded, and summarised per (class, host). */
  private flaggedAlert(b: Batch, i: number, cls: string, host: string, source: 'model' | 'rule', out: string[]): void {
    const a = this.alertFor(b, i, cls, source === 'model' ? b.verdicts.confidence[i] : 1, source);
    const vec = this.attach ? this.tap!.gather(b, i) : undefined;
    if (this.ruleBurst && !this.ruleBurst.offer(a, `${cls}|${host}`, vec)) return;
    if (vec) a.features = this.tap!.encodeLast();
    a.seq = this.seq.next();
    out.push(encodeAlert(a));
  }

  /** A Normal verdict picked by the sampler: published at QoS 0 if the budget and the connection allow. */
  private sample(b: Batch, i: number, normal: number): void {
    const sampler = this.sampler!;
    if (!sampler.admit(this.publisher.connected)) return;
    const vec = this.tap!.gather(b, i);
    if (!vec) return;
    const c = b.labels.length;
    const payload = sampler.take({
      model: b.model,
      confidence: round4(b.verdicts.probs[i * c + normal]),
      flow: { src: b.src[i], dst: b.dst[i], sport: b.sport[i], dport: b.dport[i], proto: b.proto[i] },
      features: this.tap!.encodeLast(),
    });
    if (payload && !this.publisher.publishSample(payload)) sampler.unsent();
  }

  /** A watcher finding: flags its host for the verdicts, and is itself an alert with source 'rule'. */
  finding(f: Finding): void {
    const cls = this.flags.add(f);
    if (cls !== f.class) f = { ...f, class: cls };
    this.opts.onFinding?.(f);
    if (f.class === MITM_LABEL) this.lastArpEvidence = performance.now();
    this.publishRule(f.class, f.host, f.evidence, f.evidence.kind.startsWith('arp-') ? 'arp-watcher' : 'watcher');
  }

  /** ARP-watcher evidence → an alert with source 'rule' (MITM ARP spoofing lives below the flow layer). */
  ruleAlert(e: Evidence): void {
    this.lastArpEvidence = performance.now();
    this.publishRule(MITM_LABEL, e.ip, e, 'arp-watcher');
  }

  private publishRule(cls: string, host: string, e: Evidence, model: string): void {
    const a: AlertInput = {
      v: 1,
      hub: this.opts.hub,
      site: this.opts.site,
      seq: 0,
      ts: Date.now(),
      class: cls,
      confidence: 1,
      flow: { src: host, dst: '', sport: 0, dport: 0, proto: 0 },
      model,
      count: 1,
      source: 'rule',
      evidence: e,
    };
    const ok = AlertSchema.safeParse(a);
    if (!ok.success) {
      // A watcher bug must not stop the input: the finding is counted as an input error, the capture goes on.
      this.fail('input', new Error(`finding ${e.kind} not encodable: ${ok.error.issues[0]?.message}`));
      return;
    }
    this.stats.ruleAlerts++;
    this.stats.alerts++;
    a.seq = this.seq.next();
    this.deliver([encodeAlert(a)]);
  }

  /**
   * Verifies a downlinked bundle and swaps it in between batches; a bad one is counted and the old one stays. Only
   * a bundle newer than the running one (by release) is installed, unless allowDowngrade.
   */
  async applyDownlink(payload: Uint8Array): Promise<boolean> {
    let staged: { dir: string; owned: boolean } | undefined;
    try {
      staged = await stageDownlink(payload, {
        stagingDir: this.opts.stateDir ? join(this.opts.stateDir, 'bundles') : '',
        pathRoot: this.pathRoot,
        forbidden: this.stateReal ? [this.stateReal] : [],
      });
      if (staged.owned) this.staged.add(staged.dir);
      const running = this.bundle.manifest;
      let same = false;
      const next = await loadBundle(staged.dir, this.opts, (m) => {
        // A retained downlink comes again on every reconnect: nothing to do for the bundle already running.
        same = m.model.version === running.model.version;
        if (!same) this.checkOrder(m, running);
        // Refused when its watcher settings are bad; good ones take effect with the model (below).
        if (!same) bundleWatcherSettings(m);
      });
      if (same) {
        await releaseBundle(next);
        this.discard(staged.dir);
        this.log(`downlink: bundle ${this.modelVersion} is already running`);
        return true;
      }
      checkAlertStatics(this.opts.hub, this.opts.site, next.manifest.labels, next.manifest.model.version);
      const maxRows = this.opts.maxBatch ?? 256;
      const clf = this.opts.classifierFactory ? this.opts.classifierFactory(next, maxRows) : new Classifier(next, maxRows);
      this.batcher.swap(clf);
      this.watchers.configure(hubWatcherOptions(next.manifest, this.opts.watchers) ?? {});
      const previous = this.bundle;
      this.bundle = next;
      this.stats.bundlesLoaded++;
      this.publisher.setStatus(bundleStatus(next.manifest));
      this.log(`bundle ${next.manifest.model.version} (release ${bundleRelease(next.manifest)}) loaded from the downlink (${staged.dir})`);
      for (const d of [...this.staged]) this.discard(d);
      if (this.opts.stateDir) {
        const rollback = !isNewerBundle(next.manifest, previous.manifest);
        writeActiveBundle(this.opts.stateDir, {
          dir: staged.dir,
          owned: staged.owned,
          ...(rollback ? { rolledBackFrom: bundleRelease(previous.manifest) } : {}),
        });
      }
      return true;
    } catch (e) {
      this.fail('bundle', e);
      if (staged) this.discard(staged.dir);
      this.publishStats();
      return false;
    }
  }

  /** The version policy: refuses a bundle that is not newer than the running one, unless allowDowngrade. */
  private checkOrder(next: BundleManifest, running: BundleManifest): void {
    if (this.opts.allowDowngrade || isNewerBundle(next, running)) return;
    throw new IdsError(
      'BAD_BUNDLE',
      `downlink: bundle ${next.model.version} (release ${bundleRelease(next)}) is not newer than the running ` +
        `${running.model.version} (release ${bundleRelease(running)}); a hub started with --allow-downgrade accepts a rollback`,
    );
  }

  /**
   * Removes a bundle folder only if this hub unpacked it itself (tracked, never judged by its name), and never
   * the one running; a `path` bundle is never in the set.
   */
  private discard(dir: string): void {
    if (!this.staged.has(dir) || dir === this.bundle.dir) return;
    this.staged.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  }

  /** Waits for downlinks being applied (tests). */
  idleDownlink(): Promise<void> {
    return this.downlinkChain;
  }

  publishStats(): void {
    const s = this.stats.snapshot(
      { hub: this.opts.hub, site: this.opts.site },
      {
        queueDepth: this.batcher.depth,
        dropped: this.batcher.dropped + this.store.dropped() + this.unstored,
        offlineQueued: this.store.size(),
      },
    );
    const reason = this.health.reason?.slice(0, 256);
    this.publisher.publishStats(encodeStats({ ...s, state: this.health.state, ...(reason ? { reason } : {}) }));
  }

  /** Classifies everything queued and publishes open summaries (no broker wait). */
  async drain(): Promise<void> {
    await this.batcher.drain();
    this.burst?.sweep(true);
    this.ruleBurst?.sweep(true);
  }

  /** Classifies everything queued and waits until the broker has acknowledged every alert (or the timeout). */
  async finish(timeoutMs = 60_000): Promise<boolean> {
    await this.drain();
    const ok = await this.publisher.flush(timeoutMs);
    this.publishStats();
    return ok;
  }

  async close(): Promise<void> {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.batcher.close();
    this.burst?.sweep(true);
    this.ruleBurst?.sweep(true);
    await this.downlinkChain.catch(() => undefined);
    await this.publisher.close();
    await this.store.close();
  }
}

/**
 * What status says about the running bundle: version, release and the order of the features alerts carry. A
 * value the status schema would refuse (an unordered old bundle, a name past 64 characters) is left out rather
 * than making every status unpublishable.
 */
function bundleStatus(m: BundleManifest): StatusFields {
  const release = bundleRelease(m);
  const features = m.preprocessing.features;
  const named = features.length <= 512 && features.every((f) => f.length <= 64 && !f.includes('\u0000'));
  // Undefined, not absent: status fields are patched, and the previous bundle's must not linger.
  return {
    bundle: m.model.version,
    release: Number.isSafeInteger(release) && release >= 0 ? release : undefined,
    features: named ? features : undefined,
  };
}

/**
 * The state folder and --downlink-root, checked once at start: the root must be an existing folder and must not be
 * (or lie inside) the state folder, whose real path the downlink then refuses to touch.
 */
function checkStateAndRoot(opts: HubOptions): { stateReal?: string; pathRoot?: string } {
  let stateReal: string | undefined;
  if (opts.stateDir) {
    try {
      mkdirSync(opts.stateDir, { recursive: true });
      stateReal = realpathSync(opts.stateDir);
    } catch (e) {
      throw new IdsError('BAD_OPTION', `--queue-dir ${opts.stateDir}: ${(e as Error).message}`);
    }
  }
  if (opts.downlinkRoot === undefined) return { stateReal };
  let pathRoot: string;
  try {
    pathRoot = realpathSync(opts.downlinkRoot);
    if (!statSync(pathRoot).isDirectory()) throw new Error('not a folder');
  } catch (e) {
    throw new IdsError('BAD_OPTION', `--downlink-root ${opts.downlinkRoot}: ${(e as Error).message}`);
  }
  if (stateReal && (pathRoot === stateReal || isStrictlyInside(stateReal, pathRoot))) {
    throw new IdsError('BAD_OPTION', `--downlink-root ${opts.downlinkRoot} must not be the state folder or inside it`);
  }
  return { stateReal, pathRoot };
}
