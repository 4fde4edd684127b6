/**
 * The aggregator's storage seam. SQLite (embedded default) and PostgreSQL (a fleet past one machine) both
 * implement it and pass one shared test suite (test/aggregator/store.test.ts).
 *
 * Duplicates are removed by the database itself: alerts have a unique key (site, hub, seq), so two aggregator
 * instances sharing one database cannot both insert a QoS 1 redelivery. Rolled-up alerts leave a per-hub seq
 * watermark behind so that a late redelivery of a deleted row is still recognised as a duplicate.
 */
import type { Incident } from '../../shared/payloads.ts';

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
}

/** What one status or stats message changes about a hub. Undefined fields keep their stored value. */
export interface HubUpdate {
  site: string;
  hub: string;
  /** Time of the message (receive time), ms. */
  seenAt: number;
  state?: 'online' | 'offline';
  bundle?: string;
  /** Set by stats messages: the stats JSON as received, and when. */
  stats?: string;
  statsAt?: number;
}

export interface HubRow {
  site: string;
  hub: string;
  state: 'online' | 'offline' | 'unknown';
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
}

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
  /** Creates tables if missing. */
  open(): Promise<void>;
  close(): Promise<void>;
  /**
   * Writes alerts and hub updates in ONE transaction. Returns, per alert, whether it was new (false = duplicate
   * of a stored or rolled-up alert, or of an earlier one in the same batch).
   */
  writeBatch(alerts: readonly AlertRow[], hubs: readonly HubUpdate[]): Promise<boolean[]>;
  queryAlerts(q: AlertQuery): Promise<AlertRow[]>;
  summary(): Promise<Summary>;
  hubs(): Promise<HubRow[]>;
  upsertIncident(i: Incident): Promise<void>;
  incidents(state?: 'open' | 'closed'): Promise<Incident[]>;
  /** Folds raw alerts with ts < cutoff into per-hour counts per (site, hub, class) and deletes them. */
  rollup(cutoffMs: number): Promise<RollupResult>;
  hourly(q: Pick<AlertQuery, 'site' | 'hub' | 'class' | 'since' | 'until'>): Promise<HourCount[]>;
}

export const HOUR_MS = 3_600_000;
export const DEFAULT_QUERY_LIMIT = 100;
export const MAX_QUERY_LIMIT = 10_000;

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
