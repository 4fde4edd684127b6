/**
 * Operator marks: an operator's verdict on a stored alert, kept as history. Each mark is a row of `marks`; the
 * effective mark of an alert is its newest row with `undone_at IS NULL`, so marking again overrides (and an
 * undo brings the previous mark back), and nothing is ever deleted. A burst summary is one alert row (its
 * `count` verdicts): its mark covers all of them.
 *
 * Labels: a false positive is the class `Normal` (what the flow should have been called); a confirmed alert
 * keeps its class, or takes the operator's correction. `dataset export` reads `class` as the training label.
 *
 * An incident maps to alerts as the correlator made it (aggregator/correlator.ts): a `burst` or `outbreak` of
 * class C over the hubs H stands for the stored alerts of class C from a hub in H received (`received_at`, the
 * aggregator's clock, which the correlator also uses) from one correlation window before it opened (the
 * evidence that opened it: 10 s for a burst, 60 s for an outbreak by default) until it closed (or now, while it
 * is open). `hub-offline` and `hub-silent` incidents stand for no alerts and cannot be marked.
 */
import type { Incident } from '../../shared/payloads.ts';
import type { AlertQuery, AlertRow } from './store.ts';
import { IOTID20_CATEGORIES, IOTID20_SUBCATEGORIES, NORMAL_LABEL } from '../../shared/labels.ts';

export const VERDICTS = ['false-positive', 'confirmed'] as const;
export type Verdict = (typeof VERDICTS)[number];

export interface MarkRow {
  id: number;
  site: string;
  hub: string;
  seq: number;
  verdict: Verdict;
  /** The training label: Normal for a false positive, the alert's class or the correction when confirmed. */
  class: string;
  /** The token identity that marked. */
  by: string;
  at: number;
  /** Set when the mark was made for a whole incident. */
  incident: string | null;
  undoneAt: number | null;
  undoneBy: string | null;
}

export interface MarkInput {
  verdict: Verdict;
  /** The label to record; undefined = the alert's own class (confirmed only). */
  class?: string;
  by: string;
  at: number;
}

/** The alerts an incident stands for (see the header). */
export interface IncidentScope {
  id: string;
  class: string;
  hubs: { site: string; hub: string }[];
  /** received_at bounds, inclusive. */
  from: number;
  to: number;
}

export interface MarkQuery {
  site?: string;
  hub?: string;
  incident?: string;
  /** Marks made at or after (ms). */
  since?: number;
  /** Newest first; default 100, at most MAX_MARKS_LIMIT. */
  limit?: number;
}

/** Per hub, the alerts stored and marked in a window. */
export interface HubMarkCounts {
  site: string;
  hub: string;
  /** Alert messages in the window, stored and rolled up. */
  alerts: number;
  /** Alert messages in the last hour. */
  alertsLastHour: number;
  /** Alert messages still stored as rows (the ones that can be marked). */
  stored: number;
  falsePositive: number;
  confirmed: number;
}

export type UndoResult = { undone: MarkRow } | { already: MarkRow } | undefined;

export interface MarkStore {
  /** Marks one stored alert; undefined when no such alert is stored. */
  markAlert(site: string, hub: string, seq: number, m: MarkInput): Promise<MarkRow | undefined>;
  /**
   * Marks every stored alert of the scope in one transaction and returns how many; marks nothing and returns
   * `{tooMany}` when there are more than `max`.
   */
  markIncident(scope: IncidentScope, m: MarkInput, max: number): Promise<{ marked: number } | { tooMany: number }>;
  /** Sets undone_at/undone_by of one mark (never deletes it). */
  undo(id: number, by: string, at: number): Promise<UndoResult>;
  /** Undoes every effective mark made for an incident; returns how many. */
  undoIncident(incident: string, by: string, at: number): Promise<number>;
  /** History, newest first, undone marks included. */
  list(q: MarkQuery): Promise<MarkRow[]>;
  /** The effective mark of each of these alerts that has one, keyed by alertKey. */
  effective(keys: readonly { site: string; hub: string; seq: number }[]): Promise<Map<string, MarkRow>>;
  /** Per hub counts for alerts with ts ≥ since (and the last hour from lastHour on). */
  counts(since: number, lastHour: number): Promise<HubMarkCounts[]>;
  /** Classes the fleet's models have reported (the labels besides IoTID20's that a correction may use). */
  reportedClasses(): Promise<string[]>;
  /** The stored incident, if any. */
  incident(id: string): Promise<Incident | undefined>;
  /** queryAlerts narrowed to alerts with (`marked`) or without (`unmarked`) an effective mark; newest first. */
  alertsByMark(q: AlertQuery, which: 'marked' | 'unmarked'): Promise<AlertRow[]>;
}

/** The MarkStore methods that write (SQLite with a writer thread runs them there). */
export const MARK_WRITES = ['markAlert', 'markIncident', 'undo', 'undoIncident'] as const;
export type MarkWrite = (typeof MARK_WRITES)[number];

export const DEFAULT_MARKS_LIMIT = 100;
export const MAX_MARKS_LIMIT = 1000;
/** One incident mark writes at most this many rows in its transaction. */
export const MAX_INCIDENT_MARKS = 100_000;
/** Reported classes read for validation (a hostile hub could invent many; these are the first). */
export const MAX_REPORTED_CLASSES = 200;

export const alertKey = (site: string, hub: string, seq: number): string => `${site}/${hub}/${seq}`;

export const clampMarksLimit = (limit: number | undefined): number =>
  limit === undefined || !Number.isFinite(limit) ? DEFAULT_MARKS_LIMIT : Math.max(1, Math.min(MAX_MARKS_LIMIT, Math.floor(limit)));

/** Labels a mark may record: IoTID20's categories and subcategories, and whatever the fleet's models report. */
export function knownLabels(reported: readonly string[]): string[] {
  return [...new Set<string>([...IOTID20_CATEGORIES, ...IOTID20_SUBCATEGORIES, ...reported])];
}

/**
 * The label a mark records, or the reason the request is wrong. `alertClass` undefined = several alerts (an
 * incident): confirmed without a correction then records each alert's own class (undefined here).
 */
export function markLabel(verdict: Verdict, cls: string | undefined, known: readonly string[]): { label?: string } | { error: string } {
  if (verdict === 'false-positive') {
    if (cls !== undefined && cls !== NORMAL_LABEL) {
      return { error: `class: a false positive is ${NORMAL_LABEL}; give no class or "${NORMAL_LABEL}", got "${cls}"` };
    }
    return { label: NORMAL_LABEL };
  }
  if (cls === undefined) return {};
  if (cls === NORMAL_LABEL) return { error: `class: a confirmed alert cannot be ${NORMAL_LABEL}; mark it false-positive instead` };
  if (!known.includes(cls)) return { error: `class: "${cls}" is not a known label (${known.join(', ')})` };
  return { label: cls };
}

/** Default correlation windows (aggregator/correlator.ts): how far before an incident opened its evidence starts. */
export const INCIDENT_LOOKBACK_MS = { burst: 10_000, outbreak: 60_000 } as const;

/** The alerts an incident stands for, or why it stands for none. */
export function incidentScope(inc: Incident, now: number, lookback: { burst: number; outbreak: number } = INCIDENT_LOOKBACK_MS):
  IncidentScope | { error: string } {
  if ((inc.kind !== 'burst' && inc.kind !== 'outbreak') || !inc.class) {
    return { error: `incident ${inc.id} is a ${inc.kind} incident: it stands for no alerts` };
  }
  const hubs: { site: string; hub: string }[] = [];
  for (const k of inc.hubs) {
    const i = k.indexOf('/');
    if (i > 0 && i < k.length - 1) hubs.push({ site: k.slice(0, i), hub: k.slice(i + 1) });
  }
  return { id: inc.id, class: inc.class, hubs, from: inc.openedAt - lookback[inc.kind], to: inc.closedAt ?? now };
}

type Row = Record<string, unknown>;
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export const toMark = (r: Row): MarkRow => ({
  id: num(r.id), site: r.site as string, hub: r.hub as string, seq: num(r.seq), verdict: r.verdict as Verdict,
  class: r.class as string, by: r.by as string, at: num(r.at), incident: (r.incident as string | null) ?? null,
  undoneAt: numOrNull(r.undone_at), undoneBy: (r.undone_by as string | null) ?? null,
});

/** An alerts row as both drivers return it (PostgreSQL BIGINTs arrive as strings). */
export const alertRow = (r: Row): AlertRow => ({
  site: r.site as string, hub: r.hub as string, seq: num(r.seq), ts: num(r.ts), class: r.class as string,
  confidence: num(r.confidence), count: num(r.count), source: r.source as 'model' | 'rule', model: r.model as string,
  src: r.src as string, dst: r.dst as string, sport: num(r.sport), dport: num(r.dport), proto: num(r.proto),
  evidence: (r.evidence as string | null) ?? null, receivedAt: num(r.received_at),
});

/** The filters of an AlertQuery on alias `a`, with `?` placeholders (numbered by the caller for PostgreSQL). */
export function alertFilters(q: AlertQuery): { sql: string[]; args: unknown[] } {
  const sql: string[] = [];
  const args: unknown[] = [];
  if (q.site !== undefined) (sql.push('a.site = ?'), args.push(q.site));
  if (q.hub !== undefined) (sql.push('a.hub = ?'), args.push(q.hub));
  if (q.class !== undefined) (sql.push('a.class = ?'), args.push(q.class));
  if (q.since !== undefined) (sql.push('a.ts >= ?'), args.push(q.since));
  if (q.until !== undefined) (sql.push('a.ts < ?'), args.push(q.until));
  return { sql, args };
}

/**
 * The contract's DDL (fleet-contract.md), the same on both stores but for the id column (`INTEGER PRIMARY KEY
 * AUTOINCREMENT` on SQLite, `BIGSERIAL PRIMARY KEY` on PostgreSQL); "by" is quoted everywhere: BY is an SQL keyword.
 */
export const marksSchema = (idColumn: string): string => `
CREATE TABLE IF NOT EXISTS marks (
  id ${idColumn}, site TEXT NOT NULL, hub TEXT NOT NULL, seq BIGINT NOT NULL,
  verdict TEXT NOT NULL, class TEXT NOT NULL, "by" TEXT NOT NULL, at BIGINT NOT NULL, incident TEXT NULL,
  undone_at BIGINT NULL, undone_by TEXT NULL
);
CREATE INDEX IF NOT EXISTS marks_alert ON marks (site, hub, seq, id);
CREATE INDEX IF NOT EXISTS marks_at ON marks (at);
CREATE INDEX IF NOT EXISTS marks_incident ON marks (incident);
`;

/** Mark row `m` is its alert's effective mark: not undone, and no newer row of the same alert is active. */
export const EFFECTIVE = `m.undone_at IS NULL AND NOT EXISTS (SELECT 1 FROM marks n WHERE n.site = m.site AND n.hub = m.hub
  AND n.seq = m.seq AND n.undone_at IS NULL AND n.id > m.id)`;

/** An alert has an effective mark when one of its marks is not undone. */
export const HAS_MARK = 'EXISTS (SELECT 1 FROM marks m WHERE m.site = a.site AND m.hub = a.hub AND m.seq = a.seq AND m.undone_at IS NULL)';

/** Folds the three per-hub count queries (raw alerts, rolled-up alerts, effective marks) into one list. */
export function foldCounts(raw: Row[], rolled: Row[], marks: Row[]): HubMarkCounts[] {
  const m = new Map<string, HubMarkCounts>();
  const get = (r: Row) => {
    const k = `${r.site}/${r.hub}`;
    let c = m.get(k);
    if (!c) m.set(k, (c = { site: r.site as string, hub: r.hub as string, alerts: 0, alertsLastHour: 0, stored: 0, falsePositive: 0, confirmed: 0 }));
    return c;
  };
  for (const r of raw) {
    const c = get(r);
    c.alerts += num(r.n);
    c.stored += num(r.n);
    c.alertsLastHour += num(r.last ?? 0);
  }
  for (const r of rolled) {
    const c = get(r);
    c.alerts += num(r.n);
    c.alertsLastHour += num(r.last ?? 0);
  }
  for (const r of marks) {
    const c = get(r);
    if (r.verdict === 'false-positive') c.falsePositive += num(r.n);
    else if (r.verdict === 'confirmed') c.confirmed += num(r.n);
  }
  return [...m.values()].sort((a, b) => (a.site + '/' + a.hub < b.site + '/' + b.hub ? -1 : 1));
}

/** Keeps, per alert, the active mark with the highest id. */
export function newestPerAlert(rows: readonly MarkRow[]): Map<string, MarkRow> {
  const out = new Map<string, MarkRow>();
  for (const r of rows) {
    const k = alertKey(r.site, r.hub, r.seq);
    const prev = out.get(k);
    if (!prev || r.id > prev.id) out.set(k, r);
  }
  return out;
}
