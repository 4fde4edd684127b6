/**
 * SQLite store (better-sqlite3 12): WAL, prepared statements, one transaction per batch. Synchronous under
 * the hood; the async Store methods resolve at once. Several processes (or instances) may share the file:
 * WAL lets readers run beside the one writer and busy_timeout makes writers queue instead of failing.
 */
import Database from 'better-sqlite3';
import type { Incident } from '../../shared/payloads.ts';
import { IdsError } from '../../shared/errors.ts';
import {
  type AlertQuery, type AlertRow, type DeadLetter, type DeadLetterRow, type HourCount, type HubRow, type HubUpdate,
  type RollupResult, type Store, type Summary, DEAD_LETTER_CAP, HOUR_MS, MAX_DEAD_LETTER_LIMIT, StoreWriteError,
  ACK_WALK_FIRST, ACK_WALK_MAX, clampLimit, hubCounts, deadLetterText, firstOccurrences, mergeHubUpdates, totalsOf, walkContiguous,
} from './store.ts';
import { SqliteFleet } from './fleet-sqlite.ts';
import { FLEET_SCHEMA, type FleetBatch, type FleetPrune, type FleetPruneResult } from './fleet-data.ts';
import { SqliteMarks } from './marks-sqlite.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS alerts (
  site TEXT NOT NULL, hub TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, class TEXT NOT NULL,
  confidence REAL NOT NULL, count INTEGER NOT NULL, source TEXT NOT NULL, model TEXT NOT NULL,
  src TEXT NOT NULL, dst TEXT NOT NULL, sport INTEGER NOT NULL, dport INTEGER NOT NULL, proto INTEGER NOT NULL,
  evidence TEXT, received_at INTEGER NOT NULL,
  PRIMARY KEY (site, hub, seq)
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts);
CREATE TABLE IF NOT EXISTS hubs (
  site TEXT NOT NULL, hub TEXT NOT NULL, state TEXT, bundle TEXT, last_seen INTEGER NOT NULL,
  last_stats_at INTEGER, stats TEXT, PRIMARY KEY (site, hub)
);
CREATE TABLE IF NOT EXISTS alert_totals (
  site TEXT NOT NULL, hub TEXT NOT NULL, class TEXT NOT NULL, alerts INTEGER NOT NULL, verdicts INTEGER NOT NULL,
  PRIMARY KEY (site, hub, class)
);
CREATE TABLE IF NOT EXISTS alert_hourly (
  site TEXT NOT NULL, hub TEXT NOT NULL, class TEXT NOT NULL, hour INTEGER NOT NULL,
  alerts INTEGER NOT NULL, verdicts INTEGER NOT NULL, PRIMARY KEY (site, hub, class, hour)
);
CREATE TABLE IF NOT EXISTS rollup_marks (
  site TEXT NOT NULL, hub TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (site, hub)
);
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, opened_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_state ON incidents (state, updated_at);
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL
);
`;

/**
 * Errors caused by the rows themselves (retrying the same rows fails the same way): constraints, a value too
 * big or of the wrong type, and the binding's TypeError/RangeError on a value it cannot bind. Busy, locked,
 * I/O, full disk, read-only... depend on the database, not the data.
 */
const PERMANENT = /^SQLITE_(CONSTRAINT|TOOBIG|MISMATCH|RANGE)/;
export const isPermanentSqliteError = (e: unknown): boolean =>
  e instanceof TypeError || e instanceof RangeError || PERMANENT.test(String((e as { code?: unknown }).code ?? ''));
// The delivery watermark per hub (store.ts advanceAckMark); its own table, so the alert write path is untouched.
const ACK_SCHEMA = `
CREATE TABLE IF NOT EXISTS ack_marks (
  site TEXT NOT NULL, hub TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (site, hub)
);
`;
/**
 * Raw rows rolled up so far (one row): the summary's `rawAlerts` is the totals minus this, instead of a COUNT(*)
 * over the alerts table, which grows with it. A database that rolled up before this
 * table existed gets it seeded from `alert_hourly` once.
 */
const ROLLED_SCHEMA = `
CREATE TABLE IF NOT EXISTS rolled_total (one INTEGER PRIMARY KEY CHECK (one = 1), alerts INTEGER NOT NULL);
INSERT OR IGNORE INTO rolled_total (one, alerts) SELECT 1, COALESCE(SUM(alerts), 0) FROM alert_hourly;
`;

type Row = Record<string, unknown>;

/**
 * The writes are synchronous: without a turn of the event loop before each one, a drain runs commit → acks →
 * more messages → the next commit in one chain of callbacks, and the HTTP API (and every timer) waits seconds
 * for it (draining 150k alerts: /api/summary p50 535 ms, worst 2.1 s, and a heap the GC could not keep up with).
 */
export const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

const toAlert = (r: Row): AlertRow => ({
  site: r.site as string, hub: r.hub as string, seq: r.seq as number, ts: r.ts as number, class: r.class as string,
  confidence: r.confidence as number, count: r.count as number, source: r.source as 'model' | 'rule',
  model: r.model as string, src: r.src as string, dst: r.dst as string, sport: r.sport as number,
  dport: r.dport as number, proto: r.proto as number, evidence: (r.evidence as string | null) ?? null,
  receivedAt: r.received_at as number,
});

function where(q: AlertQuery, col = 'ts'): { sql: string; args: unknown[] } {
  const c: string[] = [];
  const args: unknown[] = [];
  if (q.site !== undefined) (c.push('site = ?'), args.push(q.site));
  if (q.hub !== undefined) (c.push('hub = ?'), args.push(q.hub));
  if (q.class !== undefined) (c.push('class = ?'), args.push(q.class));
  if (q.since !== undefined) (c.push(`${col} >= ?`), args.push(q.since));
  if (q.until !== undefined) (c.push(`${col} < ?`), args.push(q.until));
  return { sql: c.length ? 'WHERE ' + c.join(' AND ') : '', args };
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  /** One connection writes; a second write would only wait for the first. */
  readonly maxWritesInFlight = 1;
  private db!: Database.Database;
  private insertAlert!: Database.Statement;
  private markOf!: Database.Statement;
  private upsertHub!: Database.Statement;
  private addTotals!: Database.Statement;
  private writeTx!: (alerts: readonly AlertRow[], hubs: readonly HubUpdate[], fleet?: FleetBatch) => boolean[];
  /** Features, samples and model feature orders (store/fleet-sqlite.ts); also the export's reads. */
  fleet!: SqliteFleet;
  private deadLetterTx!: (entries: readonly DeadLetter[]) => void;
  /** Operators' marks (store/marks-sqlite.ts). */
  marks!: SqliteMarks;
  private summaryStmt!: Database.Statement;
  private countsStmt!: Database.Statement;
  private hubsStmt!: Database.Statement;
  private hubStatesStmt!: Database.Statement;

  constructor(readonly file: string) {}

  async open(): Promise<void> {
    try {
      this.db = new Database(this.file);
      this.db.pragma('journal_mode = WAL');
      // NORMAL in WAL: a commit survives a process crash; only an OS crash or power loss may lose the last ones.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 10000');
      // A checkpoint fsyncs the database file and stalls the event loop: every 10,000 pages (~40 MB of WAL)
      // instead of SQLite's 1,000 makes that ten times rarer during a burst; the WAL is cut back to 64 MB after.
      this.db.pragma('wal_autocheckpoint = 10000');
      this.db.pragma('journal_size_limit = 67108864');
      this.db.exec(SCHEMA);
      this.db.exec(ACK_SCHEMA);
      this.db.exec(FLEET_SCHEMA);
      this.db.exec(ROLLED_SCHEMA);
    } catch (e) {
      throw new IdsError('STORE_FAILED', `sqlite: cannot open ${this.file}: ${(e as Error).message}`, { cause: e });
    }
    const db = this.db;
    this.marks = new SqliteMarks(db);
    this.insertAlert = db.prepare(`INSERT OR IGNORE INTO alerts
      (site, hub, seq, ts, class, confidence, count, source, model, src, dst, sport, dport, proto, evidence, received_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.markOf = db.prepare('SELECT seq FROM rollup_marks WHERE site = ? AND hub = ?').pluck();
    this.upsertHub = db.prepare(`INSERT INTO hubs (site, hub, state, bundle, last_seen, last_stats_at, stats)
      VALUES (@site, @hub, @state, @bundle, @seenAt, @statsAt, @stats)
      ON CONFLICT (site, hub) DO UPDATE SET
        state = COALESCE(excluded.state, hubs.state), bundle = COALESCE(excluded.bundle, hubs.bundle),
        last_seen = MAX(hubs.last_seen, excluded.last_seen),
        -- The newest stats win whatever order batches commit in (a NULL comparison keeps the stored ones).
        stats = CASE WHEN excluded.last_stats_at >= COALESCE(hubs.last_stats_at, 0) THEN excluded.stats ELSE hubs.stats END,
        last_stats_at = CASE WHEN excluded.last_stats_at >= COALESCE(hubs.last_stats_at, 0)
          THEN excluded.last_stats_at ELSE hubs.last_stats_at END`);
    this.addTotals = db.prepare(`INSERT INTO alert_totals (site, hub, class, alerts, verdicts)
      VALUES (@site, @hub, @class, @alerts, @verdicts)
      ON CONFLICT (site, hub, class) DO UPDATE SET alerts = alerts + excluded.alerts, verdicts = verdicts + excluded.verdicts`);
    const fleet = (this.fleet = new SqliteFleet(db));
    const tx = db.transaction((alerts: readonly AlertRow[], hubs: readonly HubUpdate[], fb?: FleetBatch) => {
      const isNew = new Array<boolean>(alerts.length).fill(false);
      // Rolled-up seq watermarks, looked up once per hub in the batch (a per-row subquery costs more than the
      // insert itself). The transaction is IMMEDIATE, so no other writer can roll up between this read and the inserts.
      const marks = new Map<string, number>();
      for (const i of firstOccurrences(alerts)) {
        const a = alerts[i];
        const hk = a.site + '\u0000' + a.hub;
        let mark = marks.get(hk);
        if (mark === undefined) marks.set(hk, (mark = (this.markOf.get(a.site, a.hub) as number | undefined) ?? -1));
        if (a.seq <= mark) continue;
        // Positional parameters: about twice as fast as named ones (no per-row object).
        isNew[i] = this.insertAlert.run(a.site, a.hub, a.seq, a.ts, a.class, a.confidence, a.count, a.source, a.model,
          a.src, a.dst, a.sport, a.dport, a.proto, a.evidence ?? null, a.receivedAt).changes === 1;
        if (isNew[i] && a.features) fleet.alertFeatures(a);
      }
      for (const t of totalsOf(alerts, isNew)) this.addTotals.run(t);
      for (const h of mergeHubUpdates(hubs)) {
        this.upsertHub.run({
          site: h.site, hub: h.hub, state: h.state ?? null, bundle: h.bundle ?? null, seenAt: h.seenAt,
          statsAt: h.statsAt ?? null, stats: h.stats ?? null,
        });
      }
      return fb ? isNew.concat(fleet.write(fb)) : isNew;
    });
    this.writeTx = tx.immediate;
    this.summaryStmt = db.prepare('SELECT class, SUM(alerts) a, SUM(verdicts) v FROM alert_totals GROUP BY class');
    this.countsStmt = db.prepare(`SELECT (SELECT alerts FROM rolled_total WHERE one = 1) rolled,
      (SELECT COUNT(*) FROM dead_letters) dead`);
    this.hubStatesStmt = db.prepare('SELECT state, COUNT(*) n FROM hubs GROUP BY state');
    this.hubsStmt = db.prepare(`SELECT h.*, COALESCE(t.a, 0) a, COALESCE(t.v, 0) v FROM hubs h
      LEFT JOIN (SELECT site, hub, SUM(alerts) a, SUM(verdicts) v FROM alert_totals GROUP BY site, hub) t
        ON t.site = h.site AND t.hub = h.hub ORDER BY h.site, h.hub`);
    const addDead = db.prepare('INSERT INTO dead_letters (topic, payload, error, at) VALUES (?, ?, ?, ?)');
    const trimDead = db.prepare('DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?');
    this.deadLetterTx = db.transaction((entries: readonly DeadLetter[]) => {
      for (const d of entries) {
        addDead.run(deadLetterText(d.topic, 1024), Buffer.from(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength),
          deadLetterText(d.error, 2000), d.at);
      }
      trimDead.run(DEAD_LETTER_CAP);
    }).immediate;
  }

  async close(): Promise<void> {
    if (this.db?.open) this.db.close();
  }

  async writeBatch(alerts: readonly AlertRow[], hubs: readonly HubUpdate[], fleet?: FleetBatch): Promise<boolean[]> {
    await yieldToLoop();
    try {
      return this.writeTx(alerts, hubs, fleet);
    } catch (e) {
      throw new StoreWriteError(`sqlite: batch of ${alerts.length} alerts failed: ${(e as Error).message}`, isPermanentSqliteError(e), { cause: e });
    }
  }

  async deadLetter(entries: readonly DeadLetter[]): Promise<void> {
    try {
      this.deadLetterTx(entries);
    } catch (e) {
      throw new StoreWriteError(`sqlite: dead letters failed: ${(e as Error).message}`, false, { cause: e });
    }
  }

  async deadLetters(limit = 20): Promise<DeadLetterRow[]> {
    const n = Math.max(1, Math.min(MAX_DEAD_LETTER_LIMIT, Math.floor(limit) || 20));
    const rows = this.db.prepare('SELECT id, topic, payload, error, at FROM dead_letters ORDER BY id DESC LIMIT ?').all(n) as Row[];
    return rows.map((r) => ({ id: r.id as number, topic: r.topic as string, payload: r.payload as Buffer, error: r.error as string, at: r.at as number }));
  }

  async queryAlerts(q: AlertQuery): Promise<AlertRow[]> {
    const w = where(q);
    const rows = this.db.prepare(`SELECT * FROM alerts ${w.sql} ORDER BY ts DESC, seq DESC LIMIT ?`)
      .all(...w.args, clampLimit(q.limit)) as Row[];
    return rows.map(toAlert);
  }

  /**
   * Maintained counts only (per-class totals, rows rolled up, the capped dead-letter table): no scan of the alerts
   * table, so the API's summary costs the same at ten rows or ten million, also while a drain writes.
   */
  async summary(): Promise<Summary> {
    const classes: Record<string, number> = {};
    let alerts = 0;
    let verdicts = 0;
    for (const r of this.summaryStmt.all() as Row[]) {
      classes[r.class as string] = r.a as number;
      alerts += r.a as number;
      verdicts += r.v as number;
    }
    const c = this.countsStmt.get() as Row;
    const hubs = hubCounts((this.hubStatesStmt.all() as Row[]).map((r) => [r.state as string | null, r.n as number]));
    return { alerts, verdicts, classes, rawAlerts: alerts - (c.rolled as number), deadLetters: c.dead as number, hubs };
  }

  async hubs(): Promise<HubRow[]> {
    const rows = this.hubsStmt.all() as Row[];
    return rows.map((r) => ({
      site: r.site as string, hub: r.hub as string, state: ((r.state as string | null) ?? 'unknown') as HubRow['state'],
      bundle: (r.bundle as string | null) ?? null, lastSeen: r.last_seen as number,
      lastStatsAt: (r.last_stats_at as number | null) ?? null, stats: r.stats ? JSON.parse(r.stats as string) : null,
      alerts: r.a as number, verdicts: r.v as number,
    }));
  }

  async upsertIncident(i: Incident): Promise<void> {
    this.db.prepare(`INSERT INTO incidents (id, kind, state, opened_at, updated_at, body) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, body = excluded.body`)
      .run(i.id, i.kind, i.state, i.openedAt, i.updatedAt, JSON.stringify(i));
  }

  async incidents(state?: 'open' | 'closed'): Promise<Incident[]> {
    const sql = state === undefined
      ? 'SELECT body FROM incidents ORDER BY updated_at DESC LIMIT 1000'
      : state === 'open'
        ? "SELECT body FROM incidents WHERE state <> 'closed' ORDER BY updated_at DESC LIMIT 1000"
        : "SELECT body FROM incidents WHERE state = 'closed' ORDER BY updated_at DESC LIMIT 1000";
    return (this.db.prepare(sql).all() as Row[]).map((r) => JSON.parse(r.body as string) as Incident);
  }

  async rollup(cutoffMs: number): Promise<RollupResult> {
    const tx = this.db.transaction((cutoff: number) => {
      this.db.prepare(`INSERT INTO alert_hourly (site, hub, class, hour, alerts, verdicts)
        SELECT site, hub, class, (ts / ${HOUR_MS}) * ${HOUR_MS}, COUNT(*), SUM(count) FROM alerts WHERE ts < ?
        GROUP BY site, hub, class, (ts / ${HOUR_MS})
        ON CONFLICT (site, hub, class, hour) DO UPDATE SET
          alerts = alerts + excluded.alerts, verdicts = verdicts + excluded.verdicts`).run(cutoff);
      this.db.prepare(`INSERT INTO rollup_marks (site, hub, seq)
        SELECT site, hub, MAX(seq) FROM alerts WHERE ts < ? GROUP BY site, hub
        ON CONFLICT (site, hub) DO UPDATE SET seq = MAX(seq, excluded.seq)`).run(cutoff);
      const rolled = this.db.prepare('DELETE FROM alerts WHERE ts < ?').run(cutoff).changes;
      this.db.prepare('UPDATE rolled_total SET alerts = alerts + ? WHERE one = 1').run(rolled);
      return rolled;
    });
    return { rolled: tx(cutoffMs) };
  }

  async hourly(q: Pick<AlertQuery, 'site' | 'hub' | 'class' | 'since' | 'until'>): Promise<HourCount[]> {
    const wr = where(q);
    const wh = where(q, 'hour');
    const rows = this.db.prepare(`SELECT site, hub, class, hour, SUM(a) alerts, SUM(v) verdicts FROM (
        SELECT site, hub, class, (ts / ${HOUR_MS}) * ${HOUR_MS} hour, COUNT(*) a, SUM(count) v FROM alerts ${wr.sql}
          GROUP BY site, hub, class, (ts / ${HOUR_MS})
        UNION ALL SELECT site, hub, class, hour, alerts a, verdicts v FROM alert_hourly ${wh.sql}
      ) GROUP BY site, hub, class, hour ORDER BY hour, site, hub, class`).all(...wr.args, ...wh.args) as Row[];
    return rows.map((r) => ({
      site: r.site as string, hub: r.hub as string, class: r.class as string, hour: r.hour as number,
      alerts: r.alerts as number, verdicts: r.verdicts as number,
    }));
  }

  async pruneFleetData(p: FleetPrune): Promise<FleetPruneResult> {
    return this.fleet.prune(p);
  }

  async advanceAckMark(site: string, hub: string, floor?: number): Promise<number | undefined> {
    const db = this.db;
    const cur = (db.prepare('SELECT seq FROM ack_marks WHERE site = ? AND hub = ?').pluck().get(site, hub) as number | undefined) ?? -1;
    let mark = Math.max(cur, floor === undefined ? -1 : floor - 1);
    const next = db.prepare('SELECT seq FROM alerts WHERE site = ? AND hub = ? AND seq > ? ORDER BY seq LIMIT ?').pluck();
    for (let step = ACK_WALK_FIRST; ; step = Math.min(ACK_WALK_MAX, step * 4)) {
      const seqs = next.all(site, hub, mark, step) as number[];
      const w = walkContiguous(mark, seqs);
      mark = w.mark;
      if (!w.open || seqs.length < step) break;
    }
    if (mark > cur) {
      db.prepare(`INSERT INTO ack_marks (site, hub, seq) VALUES (?, ?, ?)
        ON CONFLICT (site, hub) DO UPDATE SET seq = MAX(seq, excluded.seq)`).run(site, hub, mark);
    }
    return mark >= 0 ? mark : undefined;
  }
}
