/**
 * A canary rollout, start to end: send the bundle to the canaries, wait until they run it, watch them for the
 * window, then promote it to every other hub or roll the canaries back to the previous bundle. Every step is
 * written to the `rollouts` table first, so the API shows it and a crashed run can be continued (`--resume ID`).
 *
 *   canary ──(all canaries run it)──► watching ──(window over, decide)──► promoting ──► promoted
 *     │ refused / timeout                 │ offline, degraded, other bundle, or over the limits
 *     └──────────────────────────────────►└──► rolling-back ──► rolled-back   (failed: a step could not finish)
 */
import { IdsError } from '../../shared/errors.ts';
import { decide, type Decision, type DecisionLimits, type CanaryInput, type WindowCounts } from './decision.ts';
import { formatDuration } from './duration.ts';
import { loadBundle, rerelease, rollbackRelease, downlinkPayload, checkSigningKey, type RolloutBundle } from './bundle.ts';
import { BundlePublisher, type PublisherOptions } from './publish.ts';
import { DEFAULT_PREFLIGHT, preflight, preflightLines, type PreflightLimits } from './preflight.ts';
import { FINAL_STATES, RolloutStore, type HubRef, type NewRollout, type RolloutRow, type RolloutState } from './store.ts';
import { hubName, rejectedCounts, sleep, waitForVersion, type WaitResult } from './wait.ts';

export interface RolloutSettings {
  watchMs: number;
  /** Length of the canary's own history the window is compared with (default 1 h). */
  baselineMs: number;
  installTimeoutMs: number;
  promoteTimeoutMs: number;
  pollMs: number;
  limits: DecisionLimits;
}

export interface RolloutOptions extends RolloutSettings {
  /** A new rollout's bundle; absent with `resume`. */
  bundleDir?: string;
  /** Bundle to roll back to; default: the bundle of the last promoted rollout. */
  previousDir?: string;
  canaries?: HubRef[];
  /** Continue this rollout (its stored settings win over the ones given). */
  resume?: number;
  db: string;
  mqtt: PublisherOptions;
  /** The hubs' Ed25519 public key (PEM): everything sent is verified with it first. */
  publicKeyPem: string;
  /** Re-sign the previous bundle under a higher release for a rollback (recommended). */
  privateKeyPem?: string;
  /** The pre-flight check's limits (preflight.ts); default DEFAULT_PREFLIGHT. */
  preflight?: PreflightLimits;
  /** Start without the pre-flight check (recorded in the rollout's decision). */
  skipPreflight?: boolean;
  now?: () => number;
  log?: (line: string) => void;
}

export interface RolloutResult {
  id: number;
  state: RolloutState;
  decision: RolloutRow['decision'];
}

/** Exit codes of `iot-ids rollout`: 0 promoted, 3 rolled back or refused by the pre-flight check, 1 anything else. */
export const exitCodeOf = (s: RolloutState): number => (s === 'promoted' ? 0 : s === 'rolled-back' || s === 'refused' ? 3 : 1);

type Phase = 'install' | 'watch' | 'promote' | 'rollback';

/** A canary that sent stats before and none for this long is silent (as the correlator's hub-silent incident). */
const SILENT_MS = 90_000;

class Run {
  private decision: Record<string, unknown>;
  constructor(
    private readonly o: RolloutOptions & { now: () => number; log: (l: string) => void },
    private readonly store: RolloutStore,
    private readonly pub: BundlePublisher,
    private row: RolloutRow,
    private readonly next: RolloutBundle,
    private readonly previous: RolloutBundle,
    private readonly s: RolloutSettings,
  ) {
    this.decision = { ...(row.decision ?? {}) };
  }

  private say(line: string): void {
    this.o.log(`rollout ${this.row.id}: ${line}`);
  }

  private async set(patch: Partial<Pick<RolloutRow, 'state' | 'watchUntil' | 'finishedAt'>>): Promise<void> {
    await this.store.update(this.row.id, { ...patch, decision: this.decision }, this.o.now());
    this.row = { ...this.row, ...patch };
  }

  /** Runs from the row's state to a final one. */
  async run(): Promise<RolloutResult> {
    let phase: Phase = ({ canary: 'install', watching: 'watch', promoting: 'promote', 'rolling-back': 'rollback' } as const)[
      this.row.state as 'canary'] ?? 'install';
    for (;;) {
      const nextPhase: Phase | undefined = await this[phase]();
      if (!nextPhase) break;
      phase = nextPhase;
    }
    return { id: this.row.id, state: this.row.state, decision: this.decision };
  }

  private async install(): Promise<Phase> {
    const canaries = this.row.canaries;
    const before = await rejectedCounts(this.store);
    await this.pub.send(canaries, downlinkPayload(this.next));
    this.say(`sent ${this.next.version} to ${canaries.map(hubName).join(', ')}; waiting up to ${formatDuration(this.s.installTimeoutMs)} for them to run it`);
    const t0 = this.o.now();
    const w = await waitForVersion(this.store, canaries, this.next.version, before, {
      timeoutMs: this.s.installTimeoutMs, pollMs: this.s.pollMs, now: this.o.now, stopOnRefusal: true,
      onConfirmed: (h) => this.say(`${h} runs ${this.next.version} (${formatDuration(this.o.now() - t0)})`),
    });
    this.decision.install = w;
    if (w.refused.length || w.pending.length) {
      const reasons = [
        ...w.refused.map((r) => `${r.hub} refused the bundle${r.error ? `: ${r.error}` : ''}`),
        ...(w.refused.length ? [] : w.pending.map((h) => `${h} did not report ${this.next.version} within ${formatDuration(this.s.installTimeoutMs)}`)),
      ];
      this.decision = { ...this.decision, action: 'rollback', reasons };
      for (const r of reasons) this.say(r);
      return 'rollback';
    }
    await this.set({ state: 'watching', watchUntil: this.o.now() + this.s.watchMs });
    return 'watch';
  }

  private async watch(): Promise<Phase> {
    const until = this.row.watchUntil ?? this.o.now() + this.s.watchMs;
    this.say(`watching ${this.row.canaries.map(hubName).join(', ')} until ${new Date(until).toISOString()} (${formatDuration(this.s.watchMs)})`);
    const unwell = async (): Promise<boolean> => {
      const bad = await this.healthProblems();
      if (!bad.length) return false;
      this.decision = { ...this.decision, action: 'rollback', reasons: bad };
      for (const r of bad) this.say(r);
      return true;
    };
    while (this.o.now() < until) {
      if (await unwell()) return 'rollback';
      await this.store.update(this.row.id, {}, this.o.now());
      await sleep(Math.min(this.s.pollMs, until - this.o.now()));
    }
    // Alerts of the window's last seconds may still be on their way through the broker.
    await sleep(Math.min(5000, this.s.watchMs / 5));
    if (await unwell()) return 'rollback';
    const d = await this.measure(until - this.s.watchMs, until);
    this.decision = { ...this.decision, ...d };
    this.say(`decision: ${d.action}: ${d.reasons.join('; ')}`);
    for (const c of d.canaries) {
      this.say(`  ${c.site}/${c.hub}: ${c.perHour} alerts/h (baseline ${c.baselinePerHour}, fleet median ${d.fleetMedianPerHour ?? 'n/a'}, ` +
        `limit ${c.limitPerHour}); false-positive share ${c.fpShare} (baseline ${c.baselineFpShare})`);
    }
    return d.action === 'promote' ? 'promote' : 'rollback';
  }

  /** Offline, degraded, or running another bundle than the one sent: reasons to roll back at once. */
  private async healthProblems(): Promise<string[]> {
    const views = new Map((await this.store.hubs()).map((h) => [hubName(h), h]));
    const out: string[] = [];
    for (const c of this.row.canaries) {
      const v = views.get(hubName(c));
      if (!v) out.push(`${hubName(c)} is no longer known to the aggregator`);
      else if (v.state === 'offline' || v.state === 'degraded') out.push(`${hubName(c)} went ${v.state}${v.lastError ? ` (${v.lastError})` : ''}`);
      else if (v.bundle !== this.next.version) out.push(`${hubName(c)} runs ${v.bundle ?? 'no known bundle'} instead of ${this.next.version}`);
      else if (v.lastStatsAt !== null && this.o.now() - v.lastStatsAt > SILENT_MS) {
        // The aggregator's hub-silent rule: without its stats (or with the aggregator down) its counts mean nothing.
        out.push(`${hubName(c)} sent no stats for ${formatDuration(this.o.now() - v.lastStatsAt)}: its alert counts cannot be trusted`);
      }
    }
    return out;
  }

  private async measure(from: number, until: number): Promise<Decision> {
    const s = this.s;
    const started = this.row.startedAt;
    const zero: WindowCounts = { verdicts: 0, alerts: 0, falsePositives: 0 };
    const win = await this.store.counts(from, until, this.row.canaries);
    const base = await this.store.counts(started - s.baselineMs, started, this.row.canaries);
    const isCanary = new Set(this.row.canaries.map(hubName));
    const fleet = (await this.store.hubs())
      // Peers that took part in the window: online at its end (an offline hub's count covers only part of it; and
      // lastSeen alone misleads: a restarted aggregator receives every retained status again), or, for a hub that
      // never sent a status, seen during it.
      .filter((h) => !isCanary.has(hubName(h)) &&
        (h.state === 'online' || h.state === 'degraded' || (h.state === 'unknown' && h.lastSeen >= from)))
      .map((h) => ({ site: h.site, hub: h.hub, verdicts: win.get(hubName(h))?.verdicts ?? 0 }));
    const canaries: CanaryInput[] = this.row.canaries.map((c) => ({
      ...c, window: win.get(hubName(c)) ?? zero, baseline: base.get(hubName(c)) ?? zero,
    }));
    return decide({ windowMs: until - from, baselineMs: s.baselineMs, canaries, fleet, limits: s.limits });
  }

  private async promote(): Promise<Phase | undefined> {
    await this.set({ state: 'promoting' });
    const isCanary = new Set(this.row.canaries.map(hubName));
    const others = (await this.store.hubs()).filter((h) => !isCanary.has(hubName(h)));
    const offline = others.filter((h) => h.state === 'offline' || h.state === 'unknown');
    const live = others.filter((h) => !offline.includes(h));
    const before = await rejectedCounts(this.store);
    await this.pub.send(others, downlinkPayload(this.next));
    this.say(`promoting ${this.next.version} to ${others.length} hubs (${offline.length} offline: they find it retained when they return)`);
    const w = await waitForVersion(this.store, live, this.next.version, before, {
      timeoutMs: this.s.promoteTimeoutMs, pollMs: this.s.pollMs, now: this.o.now,
    });
    this.decision.promotion = { ...w, offline: offline.map(hubName) };
    const ok = w.refused.length === 0 && w.pending.length === 0;
    for (const r of w.refused) this.say(`${r.hub} refused the bundle${r.error ? `: ${r.error}` : ''}`);
    if (w.pending.length) this.say(`no report of ${this.next.version} from ${w.pending.join(', ')} within ${formatDuration(this.s.promoteTimeoutMs)}`);
    await this.set({ state: ok ? 'promoted' : 'failed', finishedAt: this.o.now() });
    this.say(ok ? `promoted: ${w.confirmed.length + this.row.canaries.length} hubs run ${this.next.version}` : 'promotion incomplete: state failed');
    return undefined;
  }

  private async rollback(): Promise<Phase | undefined> {
    await this.set({ state: 'rolling-back' });
    let b = this.previous;
    if (this.o.privateKeyPem) {
      b = rerelease(this.previous, rollbackRelease(this.next, this.previous), this.o.privateKeyPem, this.o.publicKeyPem);
      this.say(`rolling back to ${b.version}, re-released as release ${b.release} and signed again`);
    } else {
      this.say(`rolling back to ${b.version} as it is (release ${b.release}): only hubs started with --allow-downgrade install it`);
    }
    const before = await rejectedCounts(this.store);
    await this.pub.send(this.row.canaries, downlinkPayload(b));
    const w: WaitResult = await waitForVersion(this.store, this.row.canaries, b.version, before, {
      timeoutMs: this.s.installTimeoutMs, pollMs: this.s.pollMs, now: this.o.now,
    });
    this.decision.rollback = { version: b.version, release: b.release, resigned: b !== this.previous, ...w };
    const ok = w.refused.length === 0 && w.pending.length === 0;
    for (const r of w.refused) this.say(`${r.hub} refused the previous bundle${r.error ? `: ${r.error}` : ''}`);
    if (w.pending.length) this.say(`no report of ${b.version} from ${w.pending.join(', ')} within ${formatDuration(this.s.installTimeoutMs)}`);
    await this.set({ state: ok ? 'rolled-back' : 'failed', finishedAt: this.o.now() });
    this.say(ok ? `rolled back: ${this.row.canaries.map(hubName).join(', ')} run ${b.version}` : 'rollback incomplete: state failed');
    return undefined;
  }
}

/** Checks everything that can be checked before a single byte is published; returns the row to create. */
async function prepare(store: RolloutStore, o: RolloutOptions, now: number) {
  if (!o.bundleDir) throw new IdsError('BAD_OPTION', '--bundle DIR is required (or --resume ID)');
  if (!o.canaries?.length) throw new IdsError('BAD_OPTION', '--canary SITE/HUB[,SITE/HUB...] is required');
  const active = await store.active();
  if (active.length) {
    const a = active[0];
    throw new IdsError('BAD_OPTION', `rollout ${a.id} is still ${a.state} (updated ${new Date(a.updatedAt).toISOString()}): ` +
      `continue it with --resume ${a.id}, or give it up with --abandon ${a.id}; one rollout at a time`);
  }
  const next = await loadBundle(o.bundleDir, o.publicKeyPem, '--bundle');
  let previousDir = o.previousDir;
  if (!previousDir) {
    const last = await store.lastPromoted();
    if (!last) throw new IdsError('BAD_OPTION', 'no promoted rollout is stored to roll back to: give --previous DIR (the bundle the canaries run now)');
    previousDir = last.bundle.dir;
  }
  const previous = await loadBundle(previousDir, o.publicKeyPem, '--previous');
  if (previous.version === next.version) throw new IdsError('BAD_OPTION', `--bundle and --previous are the same model ${next.version}`);
  const known = new Map((await store.hubs()).map((h) => [hubName(h), h]));
  const unknown = o.canaries.filter((c) => !known.has(hubName(c)));
  if (unknown.length) {
    throw new IdsError('BAD_OPTION', `--canary ${unknown.map(hubName).join(', ')}: not known to the aggregator (no status stored); known: ` +
      ([...known.keys()].slice(0, 20).join(', ') || 'none'));
  }
  // An offline canary would only time out twice (install, then rollback); a degraded one would be rolled back at once.
  const unwell = o.canaries.filter((c) => known.get(hubName(c))!.state !== 'online');
  if (unwell.length) {
    throw new IdsError('BAD_OPTION', `--canary ${unwell.map((c) => `${hubName(c)} is ${known.get(hubName(c))!.state}`).join(', ')}: ` +
      'canaries must be online');
  }
  if (o.privateKeyPem) checkSigningKey(o.privateKeyPem, o.publicKeyPem);
  const s = settingsOf(o);
  const row: NewRollout = {
    bundle: { version: next.version, release: next.release, dir: next.dir },
    previous: { version: previous.version, release: previous.release, dir: previous.dir },
    canaries: o.canaries, state: 'canary', startedAt: now, watchUntil: null, finishedAt: null,
    decision: null, options: { ...s },
  };
  return { next, previous, row, canaryBundles: o.canaries.map((c) => known.get(hubName(c))!.bundle) };
}

const settingsOf = (o: RolloutSettings): RolloutSettings => ({
  watchMs: o.watchMs, baselineMs: o.baselineMs, installTimeoutMs: o.installTimeoutMs, promoteTimeoutMs: o.promoteTimeoutMs,
  pollMs: o.pollMs, limits: { ...o.limits },
});

/**
 * The pre-flight check (or its skipping) into the new row's decision. A refused bundle's row is stored as it is,
 * final, before any connection to the broker: no hub sees it.
 */
async function checkFirst(store: RolloutStore, o: RolloutOptions & { now: () => number; log: (l: string) => void },
  row: NewRollout, previous: RolloutBundle, next: RolloutBundle): Promise<RolloutResult | undefined> {
  if (o.skipPreflight) {
    o.log('pre-flight: skipped (--skip-preflight)');
    row.decision = { preflight: { skipped: true } };
    return undefined;
  }
  const p = await preflight(store.labelled(), previous, next, o.preflight ?? DEFAULT_PREFLIGHT);
  for (const l of preflightLines(p)) o.log(l);
  if (p.action === 'pass') {
    row.decision = { preflight: p };
    return undefined;
  }
  const decision = { preflight: p, reasons: p.reasons };
  const now = o.now();
  const id = await store.create({ ...row, state: 'refused', finishedAt: now, decision }, now);
  o.log(`rollout ${id}: refused by the pre-flight check: nothing was sent; ${next.version} stays off every hub`);
  return { id, state: 'refused', decision };
}

/** Starts (or with `resume`, continues) a rollout and runs it to a final state. */
export async function runRollout(opts: RolloutOptions): Promise<RolloutResult> {
  const o = { ...opts, now: opts.now ?? Date.now, log: opts.log ?? ((l: string) => process.stderr.write(l + '\n')) };
  const store = await RolloutStore.open(o.db);
  let pub: BundlePublisher | undefined;
  let id: number | undefined;
  try {
    if (!(await store.hasAggregatorTables())) {
      throw new IdsError('BAD_OPTION', `--db ${o.db}: no aggregator tables (hubs, alerts): point it at the aggregator's database`);
    }
    let row: RolloutRow;
    let next: RolloutBundle;
    let previous: RolloutBundle;
    if (o.resume !== undefined) {
      const r = await store.get(o.resume);
      if (!r) throw new IdsError('BAD_OPTION', `--resume ${o.resume}: no such rollout`);
      if (FINAL_STATES.includes(r.state)) return { id: r.id, state: r.state, decision: r.decision };
      if (!r.previous) throw new IdsError('BAD_OPTION', `--resume ${r.id}: the rollout has no previous bundle stored`);
      if (o.privateKeyPem) checkSigningKey(o.privateKeyPem, o.publicKeyPem);
      next = await loadBundle(r.bundle.dir, o.publicKeyPem, `rollout ${r.id} bundle`);
      previous = await loadBundle(r.previous.dir, o.publicKeyPem, `rollout ${r.id} previous bundle`);
      row = r;
      o.log(`rollout ${r.id}: resuming in state ${r.state}`);
    } else {
      const p = await prepare(store, o, o.now());
      ({ next, previous } = p);
      const refused = await checkFirst(store, o, p.row, previous, next);
      if (refused) return refused;
      pub = await BundlePublisher.connect(o.mqtt);
      const newId = await store.create(p.row, o.now());
      row = { ...p.row, id: newId, updatedAt: o.now() };
      o.log(`rollout ${newId}: ${next.version} (release ${next.release}) to canaries ${row.canaries.map(hubName).join(', ')} ` +
        `(running ${p.canaryBundles.map((b) => b ?? '?').join(', ')}); rollback target ${previous.version} (release ${previous.release})`);
      if (!o.privateKeyPem) {
        o.log(`rollout ${newId}: no --sign-key: a rollback sends ${previous.version} as it is, which only hubs started with --allow-downgrade install`);
      }
    }
    id = row.id;
    pub ??= await BundlePublisher.connect(o.mqtt);
    const stored = row.options as Partial<RolloutSettings>;
    const s = { ...settingsOf(o), ...stored, limits: { ...o.limits, ...(stored.limits ?? {}) } };
    return await new Run(o, store, pub, row, next, previous, s).run();
  } catch (e) {
    if (id !== undefined) {
      // A step threw (the broker went away, the database failed): the row keeps its state, so `--resume` can
      // continue it, and says what went wrong.
      const msg = (e as Error).message;
      o.log(`rollout ${id}: stopped: ${msg}; continue it with --resume ${id} (or give it up with --abandon ${id})`);
      const cur = await store.get(id).catch(() => undefined);
      await store.update(id, { decision: { ...(cur?.decision ?? {}), error: msg } }, o.now()).catch(() => undefined);
    }
    throw e;
  } finally {
    await pub?.close();
    await store.close();
  }
}

/**
 * Gives up a rollout that cannot go on (`--abandon ID`): its state becomes failed, with who decided it in the
 * decision. Nothing is published: the canaries keep what they run, which the operator then sets right.
 */
export async function abandonRollout(db: string, id: number, now = Date.now()): Promise<RolloutResult> {
  const store = await RolloutStore.open(db);
  try {
    const r = await store.get(id);
    if (!r) throw new IdsError('BAD_OPTION', `--abandon ${id}: no such rollout`);
    if (FINAL_STATES.includes(r.state)) throw new IdsError('BAD_OPTION', `--abandon ${id}: the rollout is already ${r.state}`);
    const decision = { ...(r.decision ?? {}), abandoned: { at: now, state: r.state } };
    await store.update(id, { state: 'failed', finishedAt: now, decision }, now);
    return { id, state: 'failed', decision };
  } finally {
    await store.close();
  }
}
