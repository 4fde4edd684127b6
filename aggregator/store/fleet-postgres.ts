/**
 * PostgreSQL side of the fleet data (store/fleet-data.ts): schema (created with the store's, under its advisory
 * lock), the writes of a batch that carries features, samples or models (in the batch's transaction, after the
 * alert insert told which alerts are new), retention and the export's reads.
 */
import type pg from 'pg';
import type { AlertRow } from './store.ts';
import {
  type ExportFilter, type FeatureExportRow, type FeatureKey, type FleetBatch, type FleetPrune, type FleetPruneResult,
  type FleetReader, type ModelCount, type ModelInfo, type SampleExportRow, type SampleKey,
  EFFECTIVE_MARK, firstModels, firstSamples, parseModelFeatures,
} from './fleet-data.ts';

type Row = Record<string, unknown>;
type Query = (sql: string, args?: unknown[]) => Promise<Row[]>;
const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** True when a batch needs the fleet writes (and so a transaction around the alert insert). */
export const hasFleetData = (alerts: readonly AlertRow[], fleet: FleetBatch | undefined): boolean =>
  !!(fleet?.samples?.length || fleet?.models?.length) || alerts.some((a) => a.features);

/**
 * In the batch's transaction: features of the alerts that were new, samples (returns one flag each: new or
 * duplicate), model feature orders. Rows in key order, like the alerts, so concurrent writers do not deadlock.
 */
export async function writeFleetPg(c: pg.PoolClient, alerts: readonly AlertRow[], isNew: readonly boolean[], fleet: FleetBatch | undefined): Promise<boolean[]> {
  const f: unknown[][] = Array.from({ length: 6 }, () => []);
  alerts.forEach((a, i) => {
    if (!isNew[i] || !a.features) return;
    [a.site, a.hub, a.seq, a.ts, a.model, a.features].forEach((v, k) => f[k].push(v));
  });
  if (f[0].length) {
    await c.query(`INSERT INTO alert_features (site, hub, seq, ts, model, features)
      SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[])
      ON CONFLICT DO NOTHING`, f);
  }
  const samples = fleet?.samples ?? [];
  const flags = new Array<boolean>(samples.length).fill(false);
  const keep = firstSamples(samples);
  if (keep.length) {
    const s: unknown[][] = Array.from({ length: 14 }, () => []);
    for (const i of keep) {
      const x = samples[i];
      [x.site, x.hub, x.id, x.ts, x.model, x.class, x.confidence, x.src, x.dst, x.sport, x.dport, x.proto, x.features, x.receivedAt]
        .forEach((v, k) => s[k].push(v));
    }
    const r = await c.query(`INSERT INTO samples
        (site, hub, id, ts, model, class, confidence, src, dst, sport, dport, proto, features, received_at)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::real[],
        $8::text[], $9::text[], $10::int[], $11::int[], $12::int[], $13::text[], $14::bigint[])
      ON CONFLICT DO NOTHING RETURNING site, hub, id`, s);
    const inserted = new Set(r.rows.map((x: Row) => `${x.site}\u0000${x.hub}\u0000${x.id}`));
    for (const i of keep) flags[i] = inserted.has(`${samples[i].site}\u0000${samples[i].hub}\u0000${samples[i].id}`);
  }
  const models = firstModels(fleet?.models ?? []);
  if (models.length) {
    // The first announcement of a version names its features; a later one may only fill in a missing release.
    await c.query(`INSERT INTO models (version, release, features, first_seen)
      SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[])
      ON CONFLICT (version) DO UPDATE SET release = COALESCE(models.release, excluded.release)`,
    [models.map((m) => m.version), models.map((m) => m.release), models.map((m) => m.features), models.map((m) => m.firstSeen)]);
  }
  return flags;
}

export async function pruneFleetPg(c: pg.PoolClient, p: FleetPrune): Promise<FleetPruneResult> {
  const features = (await c.query(`DELETE FROM alert_features f WHERE f.ts < $1 AND NOT EXISTS
    (SELECT 1 FROM marks x WHERE x.site = f.site AND x.hub = f.hub AND x.seq = f.seq AND x.undone_at IS NULL)`,
  [p.featuresBefore])).rowCount ?? 0;
  const samples = (await c.query('DELETE FROM samples WHERE received_at < $1', [p.samplesBefore])).rowCount ?? 0;
  let samplesOverCap = 0;
  const over = (await c.query('SELECT site, hub FROM samples GROUP BY site, hub HAVING COUNT(*) > $1', [p.samplesPerHub])).rows as Row[];
  for (const h of over) {
    // Everything received before the oldest of the newest `samplesPerHub` goes (ties on received_at by id).
    samplesOverCap += (await c.query(`DELETE FROM samples WHERE site = $1 AND hub = $2 AND (received_at, id) <
      (SELECT received_at, id FROM samples WHERE site = $1 AND hub = $2 ORDER BY received_at DESC, id DESC LIMIT 1 OFFSET $3)`,
    [h.site, h.hub, p.samplesPerHub - 1])).rowCount ?? 0;
  }
  return { features, samples, samplesOverCap };
}

function conds(f: ExportFilter, models: readonly string[] | undefined, t: string, args: unknown[]): string[] {
  const sql: string[] = [];
  const add = (cond: string, v: unknown) => (args.push(v), sql.push(cond.replace('?', '$' + args.length)));
  if (f.site !== undefined) add(`${t}.site = ?`, f.site);
  if (f.hub !== undefined) add(`${t}.hub = ?`, f.hub);
  if (f.since !== undefined) add(`${t}.ts >= ?`, f.since);
  if (f.until !== undefined) add(`${t}.ts < ?`, f.until);
  if (models) add(`${t}.model = ANY(?::text[])`, models);
  return sql;
}

const whereOf = (c: string[]) => (c.length ? 'WHERE ' + c.join(' AND ') : '');

export class PostgresFleet implements FleetReader {
  constructor(private readonly q: Query) {}

  /**
   * A keyset page must walk the primary key and stop at its LIMIT. On tables without statistics (filled faster
   * than autovacuum analyses them) the planner estimated 148 rows where 25,000 remained and sorted them all for
   * every page: 120,000 rows read at 4,800 rows/s, quadratic. So the export analyses its tables first (a sample
   * of 30,000 rows each, well under a second); without the right to, it goes on with what statistics there are.
   */
  async prepare(): Promise<void> {
    await this.q('ANALYZE alert_features, samples, marks, alerts').catch(() => {});
  }

  async models(): Promise<ModelInfo[]> {
    const rows = await this.q('SELECT version, release, features, first_seen FROM models ORDER BY first_seen, version');
    return rows.map((r) => ({
      version: r.version as string, release: numOrNull(r.release), features: parseModelFeatures(r.features as string),
      firstSeen: num(r.first_seen),
    }));
  }

  async countByModel(f: ExportFilter, includeUnmarked: boolean): Promise<ModelCount[]> {
    const aa: unknown[] = [];
    const a = conds(f, undefined, 'f', aa);
    if (!includeUnmarked) a.push(`${EFFECTIVE_MARK} IS NOT NULL`);
    const sa: unknown[] = [];
    const s = conds(f, undefined, 'f', sa);
    const m = new Map<string, ModelCount>();
    const get = (model: string) => m.get(model) ?? (m.set(model, { model, alerts: 0, samples: 0 }), m.get(model)!);
    for (const r of await this.q(`SELECT f.model, COUNT(*) n FROM alert_features f ${whereOf(a)} GROUP BY f.model`, aa)) {
      get(r.model as string).alerts = num(r.n);
    }
    for (const r of await this.q(`SELECT f.model, COUNT(*) n FROM samples f ${whereOf(s)} GROUP BY f.model`, sa)) {
      get(r.model as string).samples = num(r.n);
    }
    return [...m.values()];
  }

  async featurePage(f: ExportFilter, includeUnmarked: boolean, models: readonly string[], after: FeatureKey | undefined, limit: number): Promise<FeatureExportRow[]> {
    const args: unknown[] = [];
    const c = conds(f, models, 'f', args);
    if (after) {
      args.push(after.site, after.hub, after.seq);
      c.push(`(f.site, f.hub, f.seq) > ($${args.length - 2}, $${args.length - 1}, $${args.length})`);
    }
    args.push(limit);
    // The effective mark per row by LATERAL (an index probe each), not a join against every mark.
    const rows = await this.q(`SELECT f.site, f.hub, f.seq, f.ts, f.model, f.features, a.class AS alert_class,
        m.verdict, m.class AS mark_class
      FROM alert_features f
      LEFT JOIN alerts a ON a.site = f.site AND a.hub = f.hub AND a.seq = f.seq
      ${includeUnmarked ? 'LEFT' : ''} JOIN LATERAL (SELECT x.verdict, x.class FROM marks x
        WHERE x.site = f.site AND x.hub = f.hub AND x.seq = f.seq AND x.undone_at IS NULL ORDER BY x.id DESC LIMIT 1) m ON true
      ${whereOf(c)} ORDER BY f.site, f.hub, f.seq LIMIT $${args.length}`, args);
    return rows.map((r) => ({
      site: r.site as string, hub: r.hub as string, seq: num(r.seq), ts: num(r.ts), model: r.model as string,
      features: r.features as string, alertClass: (r.alert_class as string | null) ?? null,
      verdict: (r.verdict as string | null) ?? null, markClass: (r.mark_class as string | null) ?? null,
    }));
  }

  async samplePage(f: ExportFilter, models: readonly string[], after: SampleKey | undefined, limit: number): Promise<SampleExportRow[]> {
    const args: unknown[] = [];
    const c = conds(f, models, 's', args);
    if (after) {
      args.push(after.site, after.hub, after.id);
      c.push(`(s.site, s.hub, s.id) > ($${args.length - 2}, $${args.length - 1}, $${args.length})`);
    }
    args.push(limit);
    const rows = await this.q(`SELECT s.site, s.hub, s.id, s.ts, s.model, s.features FROM samples s
      ${whereOf(c)} ORDER BY s.site, s.hub, s.id LIMIT $${args.length}`, args);
    return rows.map((r) => ({ site: r.site as string, hub: r.hub as string, id: r.id as string, ts: num(r.ts), model: r.model as string, features: r.features as string }));
  }
}
