/**
 * The aggregator's storage seam. SQLite (embedded default) and PostgreSQL (a fleet past one machine) both
 * implement it and pass one shared test suite (test/aggregator/store.test.ts).
 *
 * Duplicates are removed by the database itself: alerts have a unique key (site, hub, seq), so two aggregator
 * instances sharing one database cannot both insert a QoS 1 redelivery. Rolled-up alerts leave a per-hub seq
 * watermark behind so that a late redelivery of a deleted row is still recognised as a duplicate.
 */
import type { Incident } from '../../shared/payloads.ts';
import { IdsError } from '../../shared/errors.ts';
import type { FleetBatch, FleetPrune, FleetPruneResult, FleetReader } from './fleet-data.ts';
import type { MarkStore } from './marks.ts';

export interface AlertRow {
  site: string;
  hub: string;
  seq: number;
  /** Hub's verdict time, ms since the epoch. */
  ts: number;
  class: string;
  confidence: number;
  /** Verdicts this message stands for. */
  count: number;
  source: 'model' | 'rule';
  model: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  proto: number;
  /** JSON of the rule evidence, when there is some. */
  evidence?: string | null;
  /** When the aggregator received it, ms since the epoch. */
  receivedAt: number;
  /**
   * The flow's raw features (float32 LE base64, shared/feature-vector.ts) when the hub attached them: written to
   * `alert_features` in the alert's transaction, only when the alert itself is new. Not read back by queryAlerts.
   */
  features?: string | null;
}

/** What one status or stats message changes about a hub. Undefined fields keep their stored value. */
export interface HubUpdate {
  site: string;
  hub: string;
  /** Time of the message (receive time), ms. */
  seenAt: number;
  state?: 'online' | 'degraded' | 'offline';
  bundle?: string;
  /** Set by stats messages: the stats JSON as received, and when. */
  stats?: string;
  statsAt?: number;
}

export interface HubRow {
  site: string;
  hub: string;
  state: 'online' | 'degraded' | 'offline' | 'unknown';
  bundle: string | null;
  lastSeen: number;
  lastStatsAt: number | null;
  /** Latest stats payload, parsed back. */
  stats: unknown;
  alerts: number;
  verdicts: number;
}

export interface AlertQuery {
  site?: string;
  hub?: string;
  class?: string;
  /** Inclusive lower bound on ts (ms). */
  since?: number;
  /** Exclusive upper bound on ts (ms). */
  until?: number;
  /** Newest first; default 100. */
  limit?: number;
}

export interface Summary {
  /** Alert messages stored, raw and rolled up together. */
  alerts: number;
  /** Verdicts those messages stand for (sum of `count`). */
  verdicts: number;
  /** Alert messages per class. */
  classes: Record<string, number>;
  /** Raw rows still stored (not yet rolled up). */
  rawAlerts: number;
  /** Messages kept in the dead-letter table (at most DEAD_LETTER_CAP, the newest). */
  deadLetters: number;
  /** Hubs known, and how many are online, offline or without a status yet (degraded ones count in `total` only). */
  hubs: HubCounts;
}

export interface HubCounts {
  total: number;
  online: number;
  offline: number;
  unknown: number;
}

/** HubCounts from (state, count) rows, state null for a hub without a status. */
export function hubCounts(rows: Iterable<[state: string | null, n: number]>): HubCounts {
  const c: HubCounts = { total: 0, online: 0, offline: 0, unknown: 0 };
  for (const [state, n] of rows) {
    c.total += n;
    if (state === 'online' || state === 'offline') c[state] += n;
    else if (state === null) c.unknown += n;
  }
  return c;
}

/** A message the store refused for good: kept as received, with the store's error, instead of blocking ingestion. */
export interface DeadLetter {
  topic: string;
  payload: Uint8Array;
  error: string;
  /** When it was dead-lettered, ms since the epoch. */
  at: number;
}

export interface DeadLetterRow extends DeadLetter {
  id: number;
}

/** The dead-letter table keeps the newest this many (an attacker who finds a poison must not fill the disk). */
export const DEAD_LETTER_CAP = 10_000;

/**
 * A store failure, told apart by what retrying can do. `permanent`: the data itself was refused (a constraint,
 * a value out of range, a bad encoding): the same rows fail again however often they are retried, so the
 * offending message must be set aside. Otherwise (connection lost, locks, disk full, permissions) the same write
 * may succeed later and is retried.
 */
export class StoreWriteError extends IdsError {
  constructor(message: string, readonly permanent: boolean, options?: { cause?: unknown }) {
    super('STORE_FAILED', message, options);
    this.name = 'StoreWriteError';
  }
}

export const isPermanentStoreError = (e: unknown): boolean => e instanceof StoreWriteError && e.permanent;

/** Text for a dead letter's topic and error: no NUL (PostgreSQL TEXT refuses it), bounded length. */
export const deadLetterText = (s: string, max: number): string => s.replace(/\u0000/g, '\uFFFD').slice(0, max);

export interface HourCount {
  site: string;
  hub: string;
  class: string;
  /** Start of the hour, ms. */
  hour: number;
  alerts: number;
  verdicts: number;
}

export interface RollupResult {
  /** Raw rows folded into hourly counts and deleted. */
  rolled: number;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * How many writeBatch calls may run at once (SQLite: 1, one writer; PostgreSQL: several connections). Batches
   * that run at once must not depend on each other's order: the ingest keeps status changes apart (see ingest.ts).
   */
  readonly maxWritesInFlight: number;
  /** Creates tables if missing. */
  open(): Promise<void>;
  close(): Promise<void>;
  /**
   * Writes alerts and hub updates in ONE transaction. Returns, per alert, whether it was new (false = duplicate
   * of a stored or rolled-up alert, or of an earlier one in the same batch). Fails with a StoreWriteError that
   * says whether the failure is permanent (the data) or not (the database). With `fleet` (samples and model
   * feature orders, store/fleet-data.ts) those are written in the same transaction, and the result holds, after
   * the alerts' flags, one flag per sample (false = a duplicate (site, hub, id)).
   */
  writeBatch(alerts: readonly AlertRow[], hubs: readonly HubUpdate[], fleet?: FleetBatch): Promise<boolean[]>;
  /** Stores refused messages in one transaction, keeping the newest DEAD_LETTER_CAP. */
  deadLetter(entries: readonly DeadLetter[]): Promise<void>;
  /** Dead letters, newest first (default 20, at most MAX_DEAD_LETTER_LIMIT). */
  deadLetters(limit?: number): Promise<DeadLetterRow[]>;
  queryAlerts(q: AlertQuery): Promise<AlertRow[]>;
  summary(): Promise<Summary>;
  hubs(): Promise<HubRow[]>;
  upsertIncident(i: Incident): Promise<void>;
  incidents(state?: 'open' | 'closed'): Promise<Incident[]>;
  /** Folds raw alerts with ts < cutoff into per-hour counts per (site, hub, class) and deletes them. */
  rollup(cutoffMs: number): Promise<RollupResult>;
  hourly(q: Pick<AlertQuery, 'site' | 'hub' | 'class' | 'since' | 'until'>): Promise<HourCount[]>;
  /**
   * The hub's end-to-end delivery watermark, advanced: the highest seq S such that every alert of the hub with
   * seq ≤ S is stored, counting every seq below `floor` (the hub's word that those are committed or given up)
   * as present. Kept in `ack_marks` and only ever raised (GREATEST), so instances sharing a database may call it
   * concurrently. Undefined while nothing counts yet. See aggregator/acks.ts.
   */
  advanceAckMark(site: string, hub: string, floor?: number): Promise<number | undefined>;
  /** Deletes old raw features and samples, keeping marked alerts' features; caps samples per hub (fleet-data.ts). */
  pruneFleetData(p: FleetPrune): Promise<FleetPruneResult>;
  /** The export's reads: model feature orders, row counts and keyset pages (aggregator/dataset-export.ts). */
  readonly fleet: FleetReader;
  /** Operators' marks on alerts (store/marks.ts); usable once open() resolved. */
  readonly marks: MarkStore;
}

/**
 * Rows read per step when walking a hub's stored seqs upward from its watermark: the first step is small (a hole
 * just past the mark, e.g. a message still on its way, must not cost a long read every round), later ones grow.
 */
export const ACK_WALK_FIRST = 256;
export const ACK_WALK_MAX = 8192;

/**
 * Walks `seqs` (ascending, all > mark) while they follow `mark` without a hole; returns the new mark and
 * whether the walk may go on past the last row (no hole met).
 */
export function walkContiguous(mark: number, seqs: readonly number[]): { mark: number; open: boolean } {
  for (const s of seqs) {
    if (s !== mark + 1) return { mark, open: false };
    mark = s;
  }
  return { mark, open: true };
}

export const HOUR_MS = 3_600_000;
export const DEFAULT_QUERY_LIMIT = 100;
export const MAX_QUERY_LIMIT = 10_000;
/** Dead letters carry payloads of up to 64 KiB: one listing stays under ~7 MB. */
export const MAX_DEAD_LETTER_LIMIT = 100;

export const hourOf = (ts: number): number => Math.floor(ts / HOUR_MS) * HOUR_MS;

/** Keeps the first of each (site, hub, seq) in a batch; returns the kept indices. */
export function firstOccurrences(alerts: readonly AlertRow[]): number[] {
  const seen = new Set<string>();
  const keep: number[] = [];
  for (let i = 0; i < alerts.length; i++) {
    const a = alerts[i];
    const k = `${a.site}\u0000${a.hub}\u0000${a.seq}`;
    if (seen.has(k)) continue;
    seen.add(k);
    keep.push(i);
  }
  return keep;
}

/** Folds several updates of one hub in a batch into one (later fields win), so each hub row is written once. */
export function mergeHubUpdates(updates: readonly HubUpdate[]): HubUpdate[] {
  const m = new Map<string, HubUpdate>();
  for (const u of updates) {
    const k = `${u.site}\u0000${u.hub}`;
    const prev = m.get(k);
    if (!prev) {
      m.set(k, { ...u });
      continue;
    }
    prev.seenAt = Math.max(prev.seenAt, u.seenAt);
    if (u.state !== undefined) prev.state = u.state;
    if (u.bundle !== undefined) prev.bundle = u.bundle;
    if (u.stats !== undefined) {
      prev.stats = u.stats;
      prev.statsAt = u.statsAt;
    }
  }
  // Sorted, so that concurrent writers lock hub rows in the same order (no deadlocks on PostgreSQL).
  return [...m.values()].sort((a, b) => (a.site + '/' + a.hub < b.site + '/' + b.hub ? -1 : 1));
}

/** Per (site, hub, class) totals of the alerts that were new in a batch, sorted by key (lock order). */
export function totalsOf(alerts: readonly AlertRow[], isNew: readonly boolean[]): HourCount[] {
  const m = new Map<string, HourCount>();
  for (let i = 0; i < alerts.length; i++) {
    if (!isNew[i]) continue;
    const a = alerts[i];
    const k = `${a.site}\u0000${a.hub}\u0000${a.class}`;
    let t = m.get(k);
    if (!t) m.set(k, (t = { site: a.site, hub: a.hub, class: a.class, hour: 0, alerts: 0, verdicts: 0 }));
    t.alerts++;
    t.verdicts += a.count;
  }
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map((e) => e[1]);
}

export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_QUERY_LIMIT;
  return Math.max(1, Math.min(MAX_QUERY_LIMIT, Math.floor(limit)));
}
