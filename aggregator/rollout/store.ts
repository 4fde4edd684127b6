/**
 * The rollouts table, and the reads a rollout makes from the aggregator's tables (hubs, alerts, marks), in the same
 * database the aggregator writes (--db: a SQLite file or a postgres:// URL with ?schema=). Its own small module so
 * that the rollout, a separate process, needs nothing of the aggregator's ingest; the aggregator opens it too, to
 * serve GET /api/rollouts. One class over a two-method SQL adapter: the queries are plain SQL both databases read
 * (`?` placeholders become `$n` for PostgreSQL).
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { IdsError } from '../../shared/errors.ts';
import type { Decision, WindowCounts } from './decision.ts';
import { EFFECTIVE } from '../store/marks.ts';

export const ROLLOUT_STATES = ['canary', 'watching', 'promoting', 'promoted', 'rolling-back', 'rolled-back', 'failed', 'refused'] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];
/**
 * States a rollout ends in; the others belong to a running (or crashed, then resumable) rollout process.
 * `refused`: the pre-flight check (preflight.ts) stopped it before anything was sent.
 */
export const FINAL_STATES: readonly RolloutState[] = ['promoted', 'rolled-back', 'failed', 'refused'];

export interface HubRef {
  site: string;
  hub: string;
}

export interface RolloutRow {
  id: number;
  bundle: { version: string; release: number; dir: string };
  previous: { version: string; release: number; dir: string } | null;
  canaries: HubRef[];
  state: RolloutState;
  startedAt: number;
  /** End of the watch window, once the canaries run the bundle. */
  watchUntil: number | null;
  finishedAt: number | null;
  updatedAt: number;
  /** The numbers behind the verdict (decision.ts), plus what happened while installing and promoting. */
  decision: (Partial<Decision> & Record<string, unknown>) | null;
  /** The command's settings (watch, baseline, limits, timeouts), so `--resume` continues with the same ones. */
  options: Record<string, unknown>;
}

export type NewRollout = Omit<RolloutRow, 'id' | 'updatedAt'>;
export type RolloutPatch = Partial<Pick<RolloutRow, 'state' | 'watchUntil' | 'finishedAt' | 'decision'>>;

/** A hub as the aggregator last stored it (from its retained status and its latest stats). */
export interface HubView extends HubRef {
  state: 'online' | 'degraded' | 'offline' | 'unknown';
  bundle: string | null;
  lastSeen: number;
  /** When its latest stats arrived (null: never). */
  lastStatsAt: number | null;
  bundlesRejected: number;
  lastError: string | null;
}

interface Sql {
  all(sql: string, args?: unknown[]): Promise<Record<string, unknown>[]>;
  hasTable(name: string): Promise<boolean>;
  close(): Promise<void>;
}

const DDL = (serial: string) => `CREATE TABLE IF NOT EXISTS rollouts (
  id ${serial}, bundle_version TEXT NOT NULL, bundle_release BIGINT NOT NULL, bundle_dir TEXT NOT NULL,
  previous_version TEXT, previous_release BIGINT, previous_dir TEXT, canaries TEXT NOT NULL, state TEXT NOT NULL,
  started_at BIGINT NOT NULL, watch_until BIGINT, finished_at BIGINT, updated_at BIGINT NOT NULL, decision TEXT,
  options TEXT NOT NULL
)`;

const n = (v: unknown): number => Number(v ?? 0);
const nOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const json = <T>(v: unknown, fallback: T): T => {
  if (typeof v !== 'string') return fallback;
  try {
    return JSON.parse(v) as T;
  } catch {
    return fallback;
  }
};

function toRow(r: Record<string, unknown>): RolloutRow {
  return {
    id: n(r.id),
    bundle: { version: r.bundle_version as string, release: n(r.bundle_release), dir: r.bundle_dir as string },
    previous: r.previous_version == null ? null
      : { version: r.previous_version as string, release: n(r.previous_release), dir: (r.previous_dir as string) ?? '' },
    canaries: json<HubRef[]>(r.canaries, []),
    state: r.state as RolloutState,
    startedAt: n(r.started_at),
    watchUntil: nOrNull(r.watch_until),
    finishedAt: nOrNull(r.finished_at),
    updatedAt: n(r.updated_at),
    decision: json(r.decision, null),
    options: json(r.options, {}),
  };
}

function statsOf(text: unknown): { bundlesRejected: number; lastError: string | null } {
  const s = json<{ bundlesRejected?: unknown; lastError?: unknown } | null>(text, null);
  return {
    bundlesRejected: typeof s?.bundlesRejected === 'number' ? s.bundlesRejected : 0,
    lastError: typeof s?.lastError === 'string' ? s.lastError : null,
  };
}

/** An alert with stored features and an effective mark (the pre-flight's labelled rows). */
export interface MarkedFeatures {
  markId: number;
  verdict: string;
  /** The training label: the confirmed (or corrected) class, 'Normal' for a false positive. */
  label: string;
  model: string;
  features: string;
}

export class RolloutStore {
  private constructor(private readonly sql: Sql, readonly kind: 'sqlite' | 'postgres') {}

  /** Opens the database named by --db and creates the rollouts table when missing. */
  static async open(db: string): Promise<RolloutStore> {
    const store = /^postgres(ql)?:\/\//i.test(db) ? new RolloutStore(await openPostgres(db), 'postgres') : new RolloutStore(openSqlite(db), 'sqlite');
    return store;
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  /** The reads of the pre-flight check. */
  labelled(): LabelledRows {
    return new LabelledRows(this.sql);
  }

  /** True when the aggregator has created its tables here (a rollout reads hubs and alerts). */
  async hasAggregatorTables(): Promise<boolean> {
    return (await this.sql.hasTable('hubs')) && (await this.sql.hasTable('alerts'));
  }

  async create(r: NewRollout, now: number): Promise<number> {
    const rows = await this.sql.all(`INSERT INTO rollouts (bundle_version, bundle_release, bundle_dir, previous_version,
      previous_release, previous_dir, canaries, state, started_at, watch_until, finished_at, updated_at, decision, options)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, [
      r.bundle.version, r.bundle.release, r.bundle.dir, r.previous?.version ?? null, r.previous?.release ?? null,
      r.previous?.dir ?? null, JSON.stringify(r.canaries), r.state, r.startedAt, r.watchUntil, r.finishedAt, now,
      r.decision === null ? null : JSON.stringify(r.decision), JSON.stringify(r.options),
    ]);
    return n(rows[0].id);
  }

  async update(id: number, p: RolloutPatch, now: number): Promise<void> {
    const sets: string[] = ['updated_at = ?'];
    const args: unknown[] = [now];
    if (p.state !== undefined) (sets.push('state = ?'), args.push(p.state));
    if (p.watchUntil !== undefined) (sets.push('watch_until = ?'), args.push(p.watchUntil));
    if (p.finishedAt !== undefined) (sets.push('finished_at = ?'), args.push(p.finishedAt));
    if (p.decision !== undefined) (sets.push('decision = ?'), args.push(p.decision === null ? null : JSON.stringify(p.decision)));
    await this.sql.all(`UPDATE rollouts SET ${sets.join(', ')} WHERE id = ?`, [...args, id]);
  }

  async get(id: number): Promise<RolloutRow | undefined> {
    const rows = await this.sql.all('SELECT * FROM rollouts WHERE id = ?', [id]);
    return rows[0] && toRow(rows[0]);
  }

  /** Newest first. */
  async list(limit = 100): Promise<RolloutRow[]> {
    return (await this.sql.all('SELECT * FROM rollouts ORDER BY id DESC LIMIT ?', [limit])).map(toRow);
  }

  /** Rollouts not in a final state (running, or left by a process that died: `--resume ID` continues them). */
  async active(): Promise<RolloutRow[]> {
    const marks = FINAL_STATES.map(() => '?').join(', ');
    return (await this.sql.all(`SELECT * FROM rollouts WHERE state NOT IN (${marks}) ORDER BY id`, [...FINAL_STATES])).map(toRow);
  }

  async lastPromoted(): Promise<RolloutRow | undefined> {
    const rows = await this.sql.all("SELECT * FROM rollouts WHERE state = 'promoted' ORDER BY id DESC LIMIT 1");
    return rows[0] && toRow(rows[0]);
  }

  async hubs(): Promise<HubView[]> {
    const rows = await this.sql.all('SELECT site, hub, state, bundle, last_seen, last_stats_at, stats FROM hubs ORDER BY site, hub');
    return rows.map((r) => ({
      site: r.site as string, hub: r.hub as string, state: ((r.state as string | null) ?? 'unknown') as HubView['state'],
      bundle: (r.bundle as string | null) ?? null, lastSeen: n(r.last_seen), lastStatsAt: nOrNull(r.last_stats_at),
      ...statsOf(r.stats),
    }));
  }

  /**
   * Model verdicts, alert messages and alerts marked false positive of each hub with alerts in [since, until)
   * (hub timestamps). Hubs without alerts are absent. Marks are read only where the feedback table exists.
   */
  async counts(since: number, until: number, only?: readonly HubRef[]): Promise<Map<string, WindowCounts>> {
    const out = new Map<string, WindowCounts>();
    const rows = await this.sql.all(`SELECT site, hub, COUNT(*) AS alerts, COALESCE(SUM(count), 0) AS verdicts FROM alerts
      WHERE source = 'model' AND ts >= ? AND ts < ? GROUP BY site, hub`, [since, until]);
    for (const r of rows) out.set(`${r.site}/${r.hub}`, { verdicts: n(r.verdicts), alerts: n(r.alerts), falsePositives: 0 });
    if (!(await this.sql.hasTable('marks'))) return out;
    for (const h of only ?? []) {
      // The effective mark of an alert is its newest row not undone (the feedback contract).
      const fp = await this.sql.all(`SELECT COUNT(*) AS fp FROM alerts a WHERE a.site = ? AND a.hub = ? AND a.source = 'model'
        AND a.ts >= ? AND a.ts < ? AND (SELECT m.verdict FROM marks m WHERE m.site = a.site AND m.hub = a.hub AND m.seq = a.seq
          AND m.undone_at IS NULL ORDER BY m.id DESC LIMIT 1) = 'false-positive'`, [h.site, h.hub, since, until]);
      const c = out.get(`${h.site}/${h.hub}`);
      if (c) c.falsePositives = n(fp[0]?.fp);
    }
    return out;
  }
}

/** The pre-flight's reads (preflight.ts); every one bounded. */
export class LabelledRows {
  constructor(private readonly sql: Sql) {}

  /** The tables the rows come from; the check has nothing to compare without them. */
  async missingTables(): Promise<string[]> {
    const out: string[] = [];
    for (const t of ['marks', 'alert_features', 'samples', 'models']) if (!(await this.sql.hasTable(t))) out.push(t);
    return out;
  }

  /** Model version → its feature names in order (from the hubs' status messages). */
  async modelFeatures(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const r of await this.sql.all('SELECT version, features FROM models')) {
      const f = json<unknown>(r.features, null);
      if (Array.isArray(f) && f.every((x) => typeof x === 'string')) out.set(r.version as string, f as string[]);
    }
    return out;
  }

  /**
   * Alerts with features whose effective mark (the newest not undone: the feedback contract) is older than mark
   * `beforeId`, newest mark first: the next page of a keyset walk (start with Number.MAX_SAFE_INTEGER).
   */
  async markedPage(beforeId: number, limit: number): Promise<MarkedFeatures[]> {
    const rows = await this.sql.all(`SELECT m.id, m.verdict, m.class, f.model, f.features FROM marks m
      JOIN alert_features f ON f.site = m.site AND f.hub = m.hub AND f.seq = m.seq
      WHERE m.id < ? AND ${EFFECTIVE}
      ORDER BY m.id DESC LIMIT ?`, [beforeId, limit]);
    return rows.map((r) => ({
      markId: n(r.id), verdict: r.verdict as string, label: r.class as string, model: r.model as string, features: r.features as string,
    }));
  }

  /** Up to `limit` Normal samples drawn at random (random() is the same function in SQLite and PostgreSQL). */
  async randomSamples(limit: number): Promise<{ model: string; features: string }[]> {
    const rows = await this.sql.all('SELECT model, features FROM samples ORDER BY random() LIMIT ?', [limit]);
    return rows.map((r) => ({ model: r.model as string, features: r.features as string }));
  }
}

function openSqlite(file: string): Sql {
  let db: Database.Database;
  // The aggregator creates the file; a rollout pointed at a wrong path must not leave an empty database there.
  if (!existsSync(file)) throw new IdsError('BAD_OPTION', `--db ${file}: no such SQLite file (the aggregator's database)`);
  try {
    db = new Database(file, { fileMustExist: true });
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 10000');
    db.exec(DDL('INTEGER PRIMARY KEY AUTOINCREMENT'));
  } catch (e) {
    throw new IdsError('STORE_FAILED', `sqlite: cannot open ${file} for rollouts: ${(e as Error).message}`, { cause: e });
  }
  const cache = new Map<string, Database.Statement>();
  const stmt = (sql: string) => cache.get(sql) ?? cache.set(sql, db.prepare(sql)).get(sql)!;
  return {
    async all(sql, args = []) {
      const s = stmt(sql);
      return s.reader ? (s.all(...args) as Record<string, unknown>[]) : (s.run(...args), []);
    },
    async hasTable(name) {
      return stmt("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
    },
    async close() {
      if (db.open) db.close();
    },
  };
}

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

async function openPostgres(url: string): Promise<Sql> {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? 'public';
  u.searchParams.delete('schema');
  if (!SCHEMA_RE.test(schema)) throw new IdsError('BAD_OPTION', `postgres schema "${schema}" must match ${SCHEMA_RE}`);
  const where = `postgres ${u.host}${u.pathname} schema "${schema}"`;
  const pool = new pg.Pool({ connectionString: u.toString(), max: 2, connectionTimeoutMillis: 10_000, options: `-c search_path=${schema}` });
  pool.on('error', () => {});
  const c = await pool.connect().catch(async (e: Error) => {
    await pool.end().catch(() => {});
    throw new IdsError('STORE_FAILED', `${where}: cannot connect: ${e.message}`, { cause: e });
  });
  try {
    // The aggregator store's creation lock (store/postgres.ts), so instances starting together never race a CREATE.
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`iot-ids aggregator schema ${schema}`]);
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await c.query(DDL('BIGSERIAL PRIMARY KEY'));
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    c.release();
    await pool.end().catch(() => {});
    throw new IdsError('STORE_FAILED', `${where}: cannot create the rollouts table: ${(e as Error).message}`, { cause: e });
  }
  c.release();
  const dollar = (sql: string) => {
    let i = 0;
    return sql.replace(/\?/g, () => `$${++i}`);
  };
  return {
    async all(sql, args = []) {
      try {
        return (await pool.query(dollar(sql), args)).rows;
      } catch (e) {
        throw new IdsError('STORE_FAILED', `${where}: ${(e as Error).message}`, { cause: e });
      }
    },
    async hasTable(name) {
      const r = await pool.query('SELECT to_regclass($1) IS NOT NULL AS ok', [`${schema}.${name}`]);
      return r.rows[0]?.ok === true;
    },
    async close() {
      await pool.end().catch(() => {});
    },
  };
}
