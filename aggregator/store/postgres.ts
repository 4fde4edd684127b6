/**
 * PostgreSQL store (`pg`): for a fleet whose aggregators outgrow one machine and share one database. A batch is
 * ONE statement (one round trip, atomic by itself): a multi-row INSERT from unnest of column arrays ... ON CONFLICT
 * DO NOTHING RETURNING, with the per-class totals and the hub rows upserted in data-modifying CTEs of the same
 * statement. The unique key (site, hub, seq) removes duplicates even between instances. Rows are written in key
 * order so that two writers inserting the same redelivered keys wait on each other instead of deadlocking; a
 * deadlock or serialization failure is retried. Several batches may be written at once, on separate connections
 * (`maxWritesInFlight`): what they write commutes (inserts, additions, maxima, newest stats by time).
 */
import pg from 'pg';
import type { Incident } from '../../shared/payloads.ts';
import { IdsError } from '../../shared/errors.ts';
import {
  type AlertQuery, type AlertRow, type DeadLetter, type DeadLetterRow, type HourCount, type HubRow, type HubUpdate,
  type RollupResult, type Store, type Summary, DEAD_LETTER_CAP, HOUR_MS, MAX_DEAD_LETTER_LIMIT, StoreWriteError,
  ACK_WALK_FIRST, ACK_WALK_MAX, clampLimit, hubCounts, deadLetterText, firstOccurrences, mergeHubUpdates, walkContiguous,
} from './store.ts';
import { PostgresFleet, hasFleetData, pruneFleetPg, writeFleetPg } from './fleet-postgres.ts';
import { FLEET_SCHEMA, type FleetBatch, type FleetPrune, type FleetPruneResult } from './fleet-data.ts';
import { PostgresMarks } from './marks-postgres.ts';
import { marksSchema } from './marks.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS alerts (
  site TEXT NOT NULL, hub TEXT NOT NULL, seq BIGINT NOT NULL, ts BIGINT NOT NULL, class TEXT NOT NULL,
  confidence DOUBLE PRECISION NOT NULL, count INTEGER NOT NULL, source TEXT NOT NULL, model TEXT NOT NULL,
  src TEXT NOT NULL, dst TEXT NOT NULL, sport INTEGER NOT NULL, dport INTEGER NOT NULL, proto INTEGER NOT NULL,
  evidence TEXT, received_at BIGINT NOT NULL,
  PRIMARY KEY (site, hub, seq)
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts);
CREATE TABLE IF NOT EXISTS hubs (
  site TEXT NOT NULL, hub TEXT NOT NULL, state TEXT, bundle TEXT, last_seen BIGINT NOT NULL,
  last_stats_at BIGINT, stats TEXT, PRIMARY KEY (site, hub)
);
CREATE TABLE IF NOT EXISTS alert_totals (
  site TEXT NOT NULL, hub TEXT NOT NULL, class TEXT NOT NULL, alerts BIGINT NOT NULL, verdicts BIGINT NOT NULL,
  PRIMARY KEY (site, hub, class)
);
CREATE TABLE IF NOT EXISTS alert_hourly (
  site TEXT NOT NULL, hub TEXT NOT NULL, class TEXT NOT NULL, hour BIGINT NOT NULL,
  alerts BIGINT NOT NULL, verdicts BIGINT NOT NULL, PRIMARY KEY (site, hub, class, hour)
);
CREATE TABLE IF NOT EXISTS rollup_marks (
  site TEXT NOT NULL, hub TEXT NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (site, hub)
);
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, opened_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_state ON incidents (state, updated_at);
CREATE TABLE IF NOT EXISTS dead_letters (
  id BIGSERIAL PRIMARY KEY, topic TEXT NOT NULL, payload BYTEA NOT NULL, error TEXT NOT NULL, at BIGINT NOT NULL
);
`;

// The delivery watermark per hub (store.ts advanceAckMark); its own table, so the alert write path is untouched.
const ACK_SCHEMA = `
CREATE TABLE IF NOT EXISTS ack_marks (
  site TEXT NOT NULL, hub TEXT NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (site, hub)
);
`;

/**
 * Raw rows rolled up so far (one row): the summary's `rawAlerts` is the totals minus this, instead of a COUNT(*)
 * over the alerts table (a scan that grows with it and competes with the writes). A database that rolled up
 * before this table existed gets it seeded from `alert_hourly` once.
 */
const ROLLED_SCHEMA = `
CREATE TABLE IF NOT EXISTS rolled_total (one INTEGER PRIMARY KEY CHECK (one = 1), alerts BIGINT NOT NULL);
INSERT INTO rolled_total (one, alerts) SELECT 1, COALESCE(SUM(alerts), 0) FROM alert_hourly ON CONFLICT DO NOTHING;
`;

/** The summary in one round trip, from maintained counts only (no scan of the alerts table). */
const SUMMARY_SQL = `SELECT
  (SELECT COALESCE(json_agg(json_build_array(class, a, v)), '[]') FROM
    (SELECT class, SUM(alerts) a, SUM(verdicts) v FROM alert_totals GROUP BY class) c) classes,
  (SELECT alerts FROM rolled_total WHERE one = 1) rolled,
  (SELECT COUNT(*) FROM dead_letters) dead,
  (SELECT COALESCE(json_agg(json_build_array(state, n)), '[]') FROM (SELECT state, COUNT(*) n FROM hubs GROUP BY state) h) hub_states`;

/**
 * Opens `n` connections of a pool, runs `prepare` on each and returns them to it idle. A failure is left to the
 * first real query to report.
 */
async function warm(pool: pg.Pool, n: number, prepare: (c: pg.PoolClient) => Promise<unknown>): Promise<void> {
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect().catch(() => undefined)));
  await Promise.all(clients.map((c) => c && prepare(c).catch(() => undefined)));
  for (const c of clients) c?.release();
}

const BATCH_STATEMENT = 'iot-ids-batch';
const SUMMARY_STATEMENT = 'iot-ids-summary';
/** The batch statement's 23 column arrays, empty: it writes nothing. */
const NO_ROWS: unknown[][] = Array.from({ length: 23 }, () => []);

/** Deadlock and serialization failure: the same transaction succeeds when run again. */
const RETRYABLE = new Set(['40P01', '40001']);

/**
 * SQLSTATE classes caused by the rows themselves: 22 data exception (a number out of range, a NUL or bad byte
 * in text), 23 integrity constraint (not null, check, foreign key), 54 program limit (a value too large for an
 * index). Writing the same rows again fails the same way. Unique and exclusion violations are left out: with
 * ON CONFLICT they can only come from a race, which a retry settles. Everything else (connection loss 08,
 * shutdown 57, disk full 53, permissions 42, internal XX, errors without a code) depends on the database.
 */
export function isPermanentPgError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || code.length !== 5) return false;
  if (code === '23505' || code === '23P01') return false;
  return code.startsWith('22') || code.startsWith('23') || code.startsWith('54');
}

/**
 * One batch in one statement. $1-$16: alert columns in key order; $17-$23: hub updates. The totals count only
 * the rows the INSERT returned (new ones); all CTEs see the same snapshot and write different tables.
 */
const BATCH_SQL = `WITH ins AS (
  INSERT INTO alerts
    (site, hub, seq, ts, class, confidence, count, source, model, src, dst, sport, dport, proto, evidence, received_at)
  SELECT u.* FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::float8[], $7::int[],
    $8::text[], $9::text[], $10::text[], $11::text[], $12::int[], $13::int[], $14::int[], $15::text[], $16::bigint[])
    AS u(site, hub, seq, ts, class, confidence, count, source, model, src, dst, sport, dport, proto, evidence, received_at)
  WHERE NOT EXISTS (SELECT 1 FROM rollup_marks m WHERE m.site = u.site AND m.hub = u.hub AND m.seq >= u.seq)
  ON CONFLICT DO NOTHING RETURNING site, hub, seq, class, count
), totals AS (
  INSERT INTO alert_totals (site, hub, class, alerts, verdicts)
  SELECT site, hub, class, COUNT(*), SUM(count) FROM ins GROUP BY site, hub, class ORDER BY site, hub, class
  ON CONFLICT (site, hub, class) DO UPDATE SET alerts = alert_totals.alerts + excluded.alerts,
    verdicts = alert_totals.verdicts + excluded.verdicts
), hub_rows AS (
  INSERT INTO hubs (site, hub, state, bundle, last_seen, last_stats_at, stats)
  SELECT * FROM unnest($17::text[], $18::text[], $19::text[], $20::text[], $21::bigint[], $22::bigint[], $23::text[])
  ON CONFLICT (site, hub) DO UPDATE SET
    state = COALESCE(excluded.state, hubs.state), bundle = COALESCE(excluded.bundle, hubs.bundle),
    last_seen = GREATEST(hubs.last_seen, excluded.last_seen),
    -- The newest stats win whatever order concurrent batches commit in (a NULL comparison keeps the stored ones).
    stats = CASE WHEN excluded.last_stats_at >= COALESCE(hubs.last_stats_at, 0) THEN excluded.stats ELSE hubs.stats END,
    last_stats_at = GREATEST(hubs.last_stats_at, excluded.last_stats_at)
)
SELECT site, hub, seq FROM ins`;
const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

type Row = Record<string, unknown>;
const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

const toAlert = (r: Row): AlertRow => ({
  site: r.site as string, hub: r.hub as string, seq: num(r.seq), ts: num(r.ts), class: r.class as string,
  confidence: num(r.confidence), count: num(r.count), source: r.source as 'model' | 'rule', model: r.model as string,
  src: r.src as string, dst: r.dst as string, sport: num(r.sport), dport: num(r.dport), proto: num(r.proto),
  evidence: (r.evidence as string | null) ?? null, receivedAt: num(r.received_at),
});

function where(q: AlertQuery, col = 'ts', first = 1): { sql: string; args: unknown[] } {
  const c: string[] = [];
  const args: unknown[] = [];
  const add = (cond: string, v: unknown) => {
    args.push(v);
    c.push(cond.replace('?', '$' + (first + args.length - 1)));
  };
  if (q.site !== undefined) add('site = ?', q.site);
  if (q.hub !== undefined) add('hub = ?', q.hub);
  if (q.class !== undefined) add('class = ?', q.class);
  if (q.since !== undefined) add(`${col} >= ?`, q.since);
  if (q.until !== undefined) add(`${col} < ?`, q.until);
  return { sql: c.length ? 'WHERE ' + c.join(' AND ') : '', args };
}

export interface PostgresOptions {
  connectionString: string;
  /** Schema holding the tables (created if missing); default "public". */
  schema?: string;
  /** Batches written at once, each on its own connection (default 4). */
  writers?: number;
  /** Connections in the pool for writes and watermarks (default writers + 2). */
  poolSize?: number;
  /**
   * Connections of their own for the API's reads (default 2): a summary never waits for a connection behind the
   * batch writes, however many of them are blocked.
   */
  readers?: number;
  /** `application_name` of every connection (pg_stat_activity shows which backends are the aggregator's). */
  applicationName?: string;
}

/** Two instances starting together on an empty schema serialise their CREATEs on this lock (per schema). */
const schemaLockKey = (schema: string) => `iot-ids aggregator schema ${schema}`;

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly maxWritesInFlight: number;
  private pool!: pg.Pool;
  private readPool!: pg.Pool;
  readonly schema: string;
  /** The export's reads (store/fleet-postgres.ts). */
  readonly fleet = new PostgresFleet((sql, args) => this.q(sql, args));
  /** Operators' marks (store/marks-postgres.ts). */
  readonly marks = new PostgresMarks(() => this.pool, () => this.where);

  constructor(private readonly opts: PostgresOptions) {
    this.schema = opts.schema ?? 'public';
    if (!SCHEMA_RE.test(this.schema)) throw new IdsError('BAD_OPTION', `postgres schema "${this.schema}" must match ${SCHEMA_RE}`);
    this.maxWritesInFlight = Math.max(1, Math.floor(opts.writers ?? 4));
  }

  /** What every error message starts with: the database (without password) and the schema. */
  private get where(): string {
    return `postgres ${redact(this.opts.connectionString)} schema "${this.schema}"`;
  }

  async open(): Promise<void> {
    this.pool = new pg.Pool({
      connectionString: this.opts.connectionString,
      max: this.opts.poolSize ?? this.maxWritesInFlight + 2,
      application_name: this.opts.applicationName ?? 'iot-ids-aggregator',
      // An unreachable server fails the write (which is retried) instead of hanging it, and so shutdown too.
      connectionTimeoutMillis: 10_000,
      // Connections stay open between bursts (pg closes idle ones after 10 s by default), so a burst after a quiet
      // spell does not open them again while it drains.
      idleTimeoutMillis: 0,
      options: `-c search_path=${this.schema}`,
    });
    this.readPool = new pg.Pool({
      connectionString: this.opts.connectionString,
      max: Math.max(1, this.opts.readers ?? 2),
      application_name: this.opts.applicationName ?? 'iot-ids-aggregator',
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 0,
      options: `-c search_path=${this.schema}`,
    });
    // An idle client's connection error must not crash the process; the next query reports it.
    this.pool.on('error', () => {});
    this.readPool.on('error', () => {});
    try {
      await this.createSchema();
    } catch (e) {
      await this.pool.end().catch(() => {});
      await this.readPool.end().catch(() => {});
      throw new IdsError('STORE_FAILED', `${this.where}: cannot create the tables: ${(e as Error).message}`, { cause: e });
    }
    // Every connection is opened now, not by the first batches of a drain: a backlog's first second otherwise paid
    // for the backends' start-up while the API answered its first requests (the slowest /api/summary of a drain).
    // Each also plans its statement (named statements are per connection): the batch insert, run on no rows, and
    // the summary.
    await Promise.all([
      warm(this.pool, this.pool.options.max, (c) => c.query({ name: BATCH_STATEMENT, text: BATCH_SQL, values: NO_ROWS })),
      warm(this.readPool, this.readPool.options.max, (c) => c.query({ name: SUMMARY_STATEMENT, text: SUMMARY_SQL })),
    ]);
  }

  /**
   * CREATE ... IF NOT EXISTS is not safe against a concurrent twin (both see "missing", one fails on a catalog
   * unique index), so the whole creation runs in one transaction under an advisory lock keyed by the schema: the
   * second instance waits, then finds everything there.
   */
  private async createSchema(): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schemaLockKey(this.schema)]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
      await c.query(SCHEMA);
      await c.query(ACK_SCHEMA);
      await c.query(FLEET_SCHEMA);
      await c.query(marksSchema('BIGSERIAL PRIMARY KEY'));
      await c.query(ROLLED_SCHEMA);
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }

  async close(): Promise<void> {
    await this.pool?.end().catch(() => {});
    await this.readPool?.end().catch(() => {});
  }

  private async tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.pool.connect().catch((e: Error) => {
        throw new StoreWriteError(`${this.where}: ${what}: cannot connect: ${e.message}`, false, { cause: e });
      });
      try {
        await c.query('BEGIN');
        const r = await fn(c);
        await c.query('COMMIT');
        return r;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        const code = (e as { code?: string }).code;
        if (code && RETRYABLE.has(code) && attempt < 5) continue;
        throw new StoreWriteError(`${this.where}: ${what} failed: ${(e as Error).message}`, isPermanentPgError(e), { cause: e });
      } finally {
        c.release();
      }
    }
  }

  async writeBatch(alerts: readonly AlertRow[], hubs: readonly HubUpdate[], fleet?: FleetBatch): Promise<boolean[]> {
    const keep = firstOccurrences(alerts).sort((i, j) => {
      const a = alerts[i];
      const b = alerts[j];
      return a.site !== b.site ? (a.site < b.site ? -1 : 1) : a.hub !== b.hub ? (a.hub < b.hub ? -1 : 1) : a.seq - b.seq;
    });
    const cols: unknown[][] = Array.from({ length: 23 }, () => []);
    for (const i of keep) {
      const a = alerts[i];
      const v = [a.site, a.hub, a.seq, a.ts, a.class, a.confidence, a.count, a.source, a.model, a.src, a.dst,
        a.sport, a.dport, a.proto, a.evidence ?? null, a.receivedAt];
      for (let k = 0; k < 16; k++) cols[k].push(v[k]);
    }
    for (const h of mergeHubUpdates(hubs)) {
      const v = [h.site, h.hub, h.state ?? null, h.bundle ?? null, h.seenAt, h.statsAt ?? null, h.stats ?? null];
      for (let k = 0; k < 7; k++) cols[16 + k].push(v[k]);
    }
    const what = `batch of ${alerts.length} alerts`;
    const newOf = (r: pg.QueryResult): boolean[] => {
      const inserted = new Set(r.rows.map((x: Row) => `${x.site}\u0000${x.hub}\u0000${x.seq}`));
      const isNew = new Array<boolean>(alerts.length).fill(false);
      for (const i of keep) isNew[i] = inserted.has(`${alerts[i].site}\u0000${alerts[i].hub}\u0000${alerts[i].seq}`);
      return isNew;
    };
    // Features, samples or models: the same statement, then theirs, in one transaction (store/fleet-postgres.ts).
    if (hasFleetData(alerts, fleet)) {
      return this.tx(what, async (c) => {
        const isNew = newOf(await c.query({ name: BATCH_STATEMENT, text: BATCH_SQL, values: cols }));
        return isNew.concat(await writeFleetPg(c, alerts, isNew, fleet));
      });
    }
    for (let attempt = 1; ; attempt++) {
      let r: pg.QueryResult;
      try {
        // Named: parsed and planned once per connection.
        r = await this.pool.query({ name: BATCH_STATEMENT, text: BATCH_SQL, values: cols });
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code && RETRYABLE.has(code) && attempt < 5) continue;
        throw new StoreWriteError(`${this.where}: ${what} failed: ${(e as Error).message}`, isPermanentPgError(e), { cause: e });
      }
      return newOf(r);
    }
  }

  async deadLetter(entries: readonly DeadLetter[]): Promise<void> {
    if (!entries.length) return;
    await this.tx(`${entries.length} dead letters`, async (c) => {
      for (const d of entries) {
        await c.query('INSERT INTO dead_letters (topic, payload, error, at) VALUES ($1, $2, $3, $4)', [
          deadLetterText(d.topic, 1024), Buffer.from(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength),
          deadLetterText(d.error, 2000), d.at]);
      }
      await c.query('DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - $1', [DEAD_LETTER_CAP]);
    }).catch((e: unknown) => {
      // Dead letters are bytes and clean text: whatever fails here is the database, so the caller retries.
      throw e instanceof StoreWriteError && e.permanent ? new StoreWriteError(e.message, false, { cause: e.cause }) : e;
    });
  }

  async deadLetters(limit = 20): Promise<DeadLetterRow[]> {
    const n = Math.max(1, Math.min(MAX_DEAD_LETTER_LIMIT, Math.floor(limit) || 20));
    const rows = await this.q('SELECT id, topic, payload, error, at FROM dead_letters ORDER BY id DESC LIMIT $1', [n], true);
    return rows.map((r) => ({ id: num(r.id), topic: r.topic as string, payload: r.payload as Buffer, error: r.error as string, at: num(r.at) }));
  }

  /** A query on the write pool (`read`: on the API's own connections). */
  private async q(sql: string | { name: string; text: string }, args: unknown[] = [], read = false): Promise<Row[]> {
    const pool = read ? this.readPool : this.pool;
    try {
      return (await (typeof sql === 'string' ? pool.query(sql, args) : pool.query({ ...sql, values: args }))).rows as Row[];
    } catch (e) {
      throw new IdsError('STORE_FAILED', `${this.where}: query failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async queryAlerts(q: AlertQuery): Promise<AlertRow[]> {
    const w = where(q);
    const rows = await this.q(`SELECT * FROM alerts ${w.sql} ORDER BY ts DESC, seq DESC LIMIT $${w.args.length + 1}`,
      [...w.args, clampLimit(q.limit)], true);
    return rows.map(toAlert);
  }

  async summary(): Promise<Summary> {
    const r = (await this.q({ name: SUMMARY_STATEMENT, text: SUMMARY_SQL }, [], true))[0];
    const classes: Record<string, number> = {};
    let alerts = 0;
    let verdicts = 0;
    for (const [cls, a, v] of r.classes as [string, unknown, unknown][]) {
      classes[cls] = num(a);
      alerts += num(a);
      verdicts += num(v);
    }
    const hubs = hubCounts((r.hub_states as [string | null, unknown][]).map(([s, n]) => [s, num(n)]));
    return { alerts, verdicts, classes, rawAlerts: alerts - num(r.rolled), deadLetters: num(r.dead), hubs };
  }

  async hubs(): Promise<HubRow[]> {
    const rows = await this.q(`SELECT h.*, COALESCE(t.a, 0) a, COALESCE(t.v, 0) v FROM hubs h
      LEFT JOIN (SELECT site, hub, SUM(alerts) a, SUM(verdicts) v FROM alert_totals GROUP BY site, hub) t
        ON t.site = h.site AND t.hub = h.hub ORDER BY h.site, h.hub`, [], true);
    return rows.map((r) => ({
      site: r.site as string, hub: r.hub as string, state: ((r.state as string | null) ?? 'unknown') as HubRow['state'],
      bundle: (r.bundle as string | null) ?? null, lastSeen: num(r.last_seen),
      lastStatsAt: r.last_stats_at === null ? null : num(r.last_stats_at),
      stats: r.stats ? JSON.parse(r.stats as string) : null, alerts: num(r.a), verdicts: num(r.v),
    }));
  }

  async upsertIncident(i: Incident): Promise<void> {
    await this.q(`INSERT INTO incidents (id, kind, state, opened_at, updated_at, body) VALUES ($1, $2, $3, $4, $5, $6)
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, body = excluded.body`,
    [i.id, i.kind, i.state, i.openedAt, i.updatedAt, JSON.stringify(i)]);
  }

  async incidents(state?: 'open' | 'closed'): Promise<Incident[]> {
    const cond = state === undefined ? '' : state === 'open' ? "WHERE state <> 'closed'" : "WHERE state = 'closed'";
    const rows = await this.q(`SELECT body FROM incidents ${cond} ORDER BY updated_at DESC LIMIT 1000`, [], true);
    return rows.map((r) => JSON.parse(r.body as string) as Incident);
  }

  async rollup(cutoffMs: number): Promise<RollupResult> {
    return this.tx('rollup', async (c) => {
      await c.query(`INSERT INTO alert_hourly (site, hub, class, hour, alerts, verdicts)
        SELECT site, hub, class, (ts / ${HOUR_MS}) * ${HOUR_MS}, COUNT(*), SUM(count) FROM alerts WHERE ts < $1
        GROUP BY site, hub, class, (ts / ${HOUR_MS})
        ON CONFLICT (site, hub, class, hour) DO UPDATE SET
          alerts = alert_hourly.alerts + excluded.alerts, verdicts = alert_hourly.verdicts + excluded.verdicts`, [cutoffMs]);
      await c.query(`INSERT INTO rollup_marks (site, hub, seq)
        SELECT site, hub, MAX(seq) FROM alerts WHERE ts < $1 GROUP BY site, hub
        ON CONFLICT (site, hub) DO UPDATE SET seq = GREATEST(rollup_marks.seq, excluded.seq)`, [cutoffMs]);
      const d = await c.query('DELETE FROM alerts WHERE ts < $1', [cutoffMs]);
      await c.query('UPDATE rolled_total SET alerts = alerts + $1 WHERE one = 1', [d.rowCount ?? 0]);
      return { rolled: d.rowCount ?? 0 };
    });
  }

  async hourly(q: Pick<AlertQuery, 'site' | 'hub' | 'class' | 'since' | 'until'>): Promise<HourCount[]> {
    const wr = where(q);
    const wh = where(q, 'hour', wr.args.length + 1);
    const rows = await this.q(`SELECT site, hub, class, hour, SUM(a) alerts, SUM(v) verdicts FROM (
        SELECT site, hub, class, (ts / ${HOUR_MS}) * ${HOUR_MS} AS hour, COUNT(*) a, SUM(count) v FROM alerts ${wr.sql}
          GROUP BY site, hub, class, (ts / ${HOUR_MS})
        UNION ALL SELECT site, hub, class, hour, alerts a, verdicts v FROM alert_hourly ${wh.sql}
      ) x GROUP BY site, hub, class, hour ORDER BY hour, site, hub, class`, [...wr.args, ...wh.args], true);
    return rows.map((r) => ({
      site: r.site as string, hub: r.hub as string, class: r.class as string, hour: num(r.hour),
      alerts: num(r.alerts), verdicts: num(r.verdicts),
    }));
  }

  async pruneFleetData(p: FleetPrune): Promise<FleetPruneResult> {
    return this.tx('fleet data retention', (c) => pruneFleetPg(c, p));
  }

  async advanceAckMark(site: string, hub: string, floor?: number): Promise<number | undefined> {
    const cur = (await this.q('SELECT seq FROM ack_marks WHERE site = $1 AND hub = $2', [site, hub])).map((r) => num(r.seq))[0] ?? -1;
    let mark = Math.max(cur, floor === undefined ? -1 : floor - 1);
    for (let step = ACK_WALK_FIRST; ; step = Math.min(ACK_WALK_MAX, step * 4)) {
      const seqs = (await this.q('SELECT seq FROM alerts WHERE site = $1 AND hub = $2 AND seq > $3 ORDER BY seq LIMIT $4',
        [site, hub, mark, step])).map((r) => num(r.seq));
      const w = walkContiguous(mark, seqs);
      mark = w.mark;
      if (!w.open || seqs.length < step) break;
    }
    if (mark <= cur) return mark >= 0 ? mark : undefined;
    // Another instance may have raised it meanwhile: the higher of the two is right (both walks were valid).
    const r = await this.q(`INSERT INTO ack_marks (site, hub, seq) VALUES ($1, $2, $3)
      ON CONFLICT (site, hub) DO UPDATE SET seq = GREATEST(ack_marks.seq, excluded.seq) RETURNING seq`, [site, hub, mark]);
    return num(r[0].seq);
  }

  /** Drops the schema and everything in it (tests use a schema per run). */
  async dropSchema(): Promise<void> {
    if (this.schema === 'public') throw new IdsError('BAD_OPTION', 'refusing to drop the public schema');
    await this.q(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
  }
}

/** The connection string without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
