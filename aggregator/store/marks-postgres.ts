/** The `marks` table on PostgreSQL; created with the store's other tables, under its advisory lock. */
import type pg from 'pg';
import type { Incident } from '../../shared/payloads.ts';
import { IdsError } from '../../shared/errors.ts';
import { type AlertQuery, type AlertRow, HOUR_MS, clampLimit, hourOf } from './store.ts';
import {
  type HubMarkCounts, type IncidentScope, HAS_MARK, alertFilters, alertRow, type MarkInput, type MarkQuery, type MarkRow, type MarkStore, type UndoResult,
  EFFECTIVE, MAX_REPORTED_CLASSES, clampMarksLimit, foldCounts, newestPerAlert, toMark,
} from './marks.ts';

type Row = Record<string, unknown>;

export class PostgresMarks implements MarkStore {
  /** `pool`: the store's pool (read at call time, it exists once the store is open); `where`: for messages. */
  constructor(private readonly pool: () => pg.Pool, private readonly where: () => string) {}

  private async q(sql: string, args: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool().query(sql, args)).rows as Row[];
    } catch (e) {
      throw new IdsError('STORE_FAILED', `${this.where()}: marks: ${(e as Error).message}`, { cause: e });
    }
  }

  async markAlert(site: string, hub: string, seq: number, m: MarkInput): Promise<MarkRow | undefined> {
    const r = await this.q(`INSERT INTO marks (site, hub, seq, verdict, class, "by", at, incident)
      SELECT site, hub, seq, $1, COALESCE($2, class), $3, $4, NULL FROM alerts WHERE site = $5 AND hub = $6 AND seq = $7
      RETURNING *`, [m.verdict, m.class ?? null, m.by, m.at, site, hub, seq]);
    return r[0] && toMark(r[0]);
  }

  async markIncident(s: IncidentScope, m: MarkInput, max: number): Promise<{ marked: number } | { tooMany: number }> {
    const sites = s.hubs.map((h) => h.site);
    const hubs = s.hubs.map((h) => h.hub);
    const scope = `FROM alerts a JOIN unnest($1::text[], $2::text[]) AS h(site, hub) ON a.site = h.site AND a.hub = h.hub
      WHERE a.class = $3 AND a.received_at >= $4 AND a.received_at <= $5`;
    let c: pg.PoolClient;
    try {
      c = await this.pool().connect();
    } catch (e) {
      throw new IdsError('STORE_FAILED', `${this.where()}: marks: cannot connect: ${(e as Error).message}`, { cause: e });
    }
    try {
      await c.query('BEGIN');
      const n = Number((await c.query(`SELECT COUNT(*) n ${scope}`, [sites, hubs, s.class, s.from, s.to])).rows[0].n);
      if (n > max) {
        await c.query('ROLLBACK');
        return { tooMany: n };
      }
      const r = await c.query(`INSERT INTO marks (site, hub, seq, verdict, class, "by", at, incident)
        SELECT a.site, a.hub, a.seq, $6, COALESCE($7, a.class), $8, $9, $10 ${scope}`,
      [sites, hubs, s.class, s.from, s.to, m.verdict, m.class ?? null, m.by, m.at, s.id]);
      await c.query('COMMIT');
      return { marked: r.rowCount ?? 0 };
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw new IdsError('STORE_FAILED', `${this.where()}: marks: incident ${s.id}: ${(e as Error).message}`, { cause: e });
    } finally {
      c.release();
    }
  }

  async undo(id: number, by: string, at: number): Promise<UndoResult> {
    const r = await this.q('UPDATE marks SET undone_at = $1, undone_by = $2 WHERE id = $3 AND undone_at IS NULL RETURNING *', [at, by, id]);
    if (r[0]) return { undone: toMark(r[0]) };
    const was = await this.q('SELECT * FROM marks WHERE id = $1', [id]);
    return was[0] && { already: toMark(was[0]) };
  }

  async undoIncident(incident: string, by: string, at: number): Promise<number> {
    try {
      const r = await this.pool().query('UPDATE marks SET undone_at = $1, undone_by = $2 WHERE incident = $3 AND undone_at IS NULL', [at, by, incident]);
      return r.rowCount ?? 0;
    } catch (e) {
      throw new IdsError('STORE_FAILED', `${this.where()}: marks: ${(e as Error).message}`, { cause: e });
    }
  }

  async list(q: MarkQuery): Promise<MarkRow[]> {
    const c: string[] = [];
    const args: unknown[] = [];
    const add = (cond: string, v: unknown) => (args.push(v), c.push(`${cond} $${args.length}`));
    if (q.site !== undefined) add('site =', q.site);
    if (q.hub !== undefined) add('hub =', q.hub);
    if (q.incident !== undefined) add('incident =', q.incident);
    if (q.since !== undefined) add('at >=', q.since);
    const where = c.length ? 'WHERE ' + c.join(' AND ') : '';
    const rows = await this.q(`SELECT * FROM marks ${where} ORDER BY id DESC LIMIT $${args.length + 1}`, [...args, clampMarksLimit(q.limit)]);
    return rows.map(toMark);
  }

  async effective(keys: readonly { site: string; hub: string; seq: number }[]): Promise<Map<string, MarkRow>> {
    if (!keys.length) return new Map();
    const rows = await this.q(`SELECT m.* FROM marks m JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k(site, hub, seq)
      ON m.site = k.site AND m.hub = k.hub AND m.seq = k.seq WHERE m.undone_at IS NULL`,
    [keys.map((k) => k.site), keys.map((k) => k.hub), keys.map((k) => k.seq)]);
    return newestPerAlert(rows.map(toMark));
  }

  async counts(since: number, lastHour: number): Promise<HubMarkCounts[]> {
    const raw = await this.q(`SELECT site, hub, COUNT(*) n, SUM(CASE WHEN ts >= $1 THEN 1 ELSE 0 END) last
      FROM alerts WHERE ts >= $2 GROUP BY site, hub`, [lastHour, since]);
    const rolled = await this.q(`SELECT site, hub, SUM(alerts) n, SUM(CASE WHEN hour + ${HOUR_MS} > $1 THEN alerts ELSE 0 END) last
      FROM alert_hourly WHERE hour >= $2 GROUP BY site, hub`, [lastHour, hourOf(since)]);
    const marks = await this.q(`SELECT m.site, m.hub, m.verdict, COUNT(*) n FROM marks m
      JOIN alerts a ON a.site = m.site AND a.hub = m.hub AND a.seq = m.seq
      WHERE a.ts >= $1 AND ${EFFECTIVE} GROUP BY m.site, m.hub, m.verdict`, [since]);
    return foldCounts(raw, rolled, marks);
  }

  async reportedClasses(): Promise<string[]> {
    const rows = await this.q(`SELECT DISTINCT class FROM alert_totals ORDER BY class LIMIT ${MAX_REPORTED_CLASSES}`);
    return rows.map((r) => r.class as string);
  }

  async incident(id: string): Promise<Incident | undefined> {
    const rows = await this.q('SELECT body FROM incidents WHERE id = $1', [id]);
    return rows[0] ? (JSON.parse(rows[0].body as string) as Incident) : undefined;
  }

  async alertsByMark(q: AlertQuery, which: 'marked' | 'unmarked'): Promise<AlertRow[]> {
    const f = alertFilters(q);
    f.sql.push(which === 'marked' ? HAS_MARK : `NOT ${HAS_MARK}`);
    let n = 0;
    const where = f.sql.join(' AND ').replace(/\?/g, () => `$${++n}`);
    const rows = await this.q(`SELECT a.* FROM alerts a WHERE ${where} ORDER BY a.ts DESC, a.seq DESC LIMIT $${n + 1}`,
      [...f.args, clampLimit(q.limit)]);
    return rows.map(alertRow);
  }
}
