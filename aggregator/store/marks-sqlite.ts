/** The `marks` table on SQLite (better-sqlite3, synchronous; each write is one IMMEDIATE transaction). */
import type Database from 'better-sqlite3';
import type { Incident } from '../../shared/payloads.ts';
import { type AlertQuery, type AlertRow, HOUR_MS, clampLimit, hourOf } from './store.ts';
import {
  type HubMarkCounts, type IncidentScope, HAS_MARK, alertFilters, alertRow, type MarkInput, type MarkQuery, type MarkRow, type MarkStore, type UndoResult,
  EFFECTIVE, MAX_REPORTED_CLASSES, clampMarksLimit, marksSchema, foldCounts, newestPerAlert, toMark,
} from './marks.ts';

type Row = Record<string, unknown>;

export class SqliteMarks implements MarkStore {
  private readonly insertOne: Database.Statement;
  private readonly countScope: Database.Statement;
  private readonly insertScope: Database.Statement;
  private readonly markIncidentTx: (scope: IncidentScope, m: MarkInput, max: number) => { marked: number } | { tooMany: number };

  constructor(private readonly db: Database.Database) {
    db.exec(marksSchema('INTEGER PRIMARY KEY AUTOINCREMENT'));
    // INSERT ... SELECT from the alert itself: no alert, no row (and the alert's class when none is given).
    this.insertOne = db.prepare(`INSERT INTO marks (site, hub, seq, verdict, class, "by", at, incident)
      SELECT site, hub, seq, ?, COALESCE(?, class), ?, ?, NULL FROM alerts WHERE site = ? AND hub = ? AND seq = ?
      RETURNING *`);
    const scope = 'FROM alerts WHERE site = ? AND hub = ? AND class = ? AND received_at >= ? AND received_at <= ?';
    this.countScope = db.prepare(`SELECT COUNT(*) n ${scope}`).pluck();
    this.insertScope = db.prepare(`INSERT INTO marks (site, hub, seq, verdict, class, "by", at, incident)
      SELECT site, hub, seq, ?, COALESCE(?, class), ?, ?, ? ${scope}`);
    this.markIncidentTx = db.transaction((s: IncidentScope, m: MarkInput, max: number) => {
      let n = 0;
      for (const h of s.hubs) n += this.countScope.get(h.site, h.hub, s.class, s.from, s.to) as number;
      if (n > max) return { tooMany: n };
      let marked = 0;
      for (const h of s.hubs) {
        marked += this.insertScope.run(m.verdict, m.class ?? null, m.by, m.at, s.id, h.site, h.hub, s.class, s.from, s.to).changes;
      }
      return { marked };
    }).immediate;
  }

  async markAlert(site: string, hub: string, seq: number, m: MarkInput): Promise<MarkRow | undefined> {
    const r = this.insertOne.get(m.verdict, m.class ?? null, m.by, m.at, site, hub, seq) as Row | undefined;
    return r && toMark(r);
  }

  async markIncident(scope: IncidentScope, m: MarkInput, max: number): Promise<{ marked: number } | { tooMany: number }> {
    return this.markIncidentTx(scope, m, max);
  }

  async undo(id: number, by: string, at: number): Promise<UndoResult> {
    const r = this.db.prepare('UPDATE marks SET undone_at = ?, undone_by = ? WHERE id = ? AND undone_at IS NULL RETURNING *')
      .get(at, by, id) as Row | undefined;
    if (r) return { undone: toMark(r) };
    const was = this.db.prepare('SELECT * FROM marks WHERE id = ?').get(id) as Row | undefined;
    return was && { already: toMark(was) };
  }

  async undoIncident(incident: string, by: string, at: number): Promise<number> {
    return this.db.prepare('UPDATE marks SET undone_at = ?, undone_by = ? WHERE incident = ? AND undone_at IS NULL')
      .run(at, by, incident).changes;
  }

  async list(q: MarkQuery): Promise<MarkRow[]> {
    const c: string[] = [];
    const args: unknown[] = [];
    if (q.site !== undefined) (c.push('site = ?'), args.push(q.site));
    if (q.hub !== undefined) (c.push('hub = ?'), args.push(q.hub));
    if (q.incident !== undefined) (c.push('incident = ?'), args.push(q.incident));
    if (q.since !== undefined) (c.push('at >= ?'), args.push(q.since));
    const where = c.length ? 'WHERE ' + c.join(' AND ') : '';
    const rows = this.db.prepare(`SELECT * FROM marks ${where} ORDER BY id DESC LIMIT ?`).all(...args, clampMarksLimit(q.limit)) as Row[];
    return rows.map(toMark);
  }

  async effective(keys: readonly { site: string; hub: string; seq: number }[]): Promise<Map<string, MarkRow>> {
    const byHub = new Map<string, { site: string; hub: string; seqs: number[] }>();
    for (const k of keys) {
      const hk = `${k.site}/${k.hub}`;
      let g = byHub.get(hk);
      if (!g) byHub.set(hk, (g = { site: k.site, hub: k.hub, seqs: [] }));
      g.seqs.push(k.seq);
    }
    const rows: MarkRow[] = [];
    for (const g of byHub.values()) {
      // Chunks well under SQLite's 32,766 bound variables.
      for (let i = 0; i < g.seqs.length; i += 5000) {
        const part = g.seqs.slice(i, i + 5000);
        const found = this.db.prepare(`SELECT * FROM marks WHERE site = ? AND hub = ? AND undone_at IS NULL
          AND seq IN (${part.map(() => '?').join(',')})`).all(g.site, g.hub, ...part) as Row[];
        for (const r of found) rows.push(toMark(r));
      }
    }
    return newestPerAlert(rows);
  }

  async counts(since: number, lastHour: number): Promise<HubMarkCounts[]> {
    const raw = this.db.prepare(`SELECT site, hub, COUNT(*) n, SUM(CASE WHEN ts >= ? THEN 1 ELSE 0 END) last
      FROM alerts WHERE ts >= ? GROUP BY site, hub`).all(lastHour, since) as Row[];
    const rolled = this.db.prepare(`SELECT site, hub, SUM(alerts) n, SUM(CASE WHEN hour + ${HOUR_MS} > ? THEN alerts ELSE 0 END) last
      FROM alert_hourly WHERE hour >= ? GROUP BY site, hub`).all(lastHour, hourOf(since)) as Row[];
    const marks = this.db.prepare(`SELECT m.site, m.hub, m.verdict, COUNT(*) n FROM marks m
      JOIN alerts a ON a.site = m.site AND a.hub = m.hub AND a.seq = m.seq
      WHERE a.ts >= ? AND ${EFFECTIVE} GROUP BY m.site, m.hub, m.verdict`).all(since) as Row[];
    return foldCounts(raw, rolled, marks);
  }

  async reportedClasses(): Promise<string[]> {
    return this.db.prepare(`SELECT DISTINCT class FROM alert_totals ORDER BY class LIMIT ${MAX_REPORTED_CLASSES}`).pluck().all() as string[];
  }

  async incident(id: string): Promise<Incident | undefined> {
    const body = this.db.prepare('SELECT body FROM incidents WHERE id = ?').pluck().get(id) as string | undefined;
    return body === undefined ? undefined : (JSON.parse(body) as Incident);
  }

  async alertsByMark(q: AlertQuery, which: 'marked' | 'unmarked'): Promise<AlertRow[]> {
    const f = alertFilters(q);
    f.sql.push(which === 'marked' ? HAS_MARK : `NOT ${HAS_MARK}`);
    const rows = this.db.prepare(`SELECT a.* FROM alerts a WHERE ${f.sql.join(' AND ')} ORDER BY a.ts DESC, a.seq DESC LIMIT ?`)
      .all(...f.args, clampLimit(q.limit)) as Row[];
    return rows.map(alertRow);
  }
}
