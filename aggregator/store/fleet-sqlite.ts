/** SQLite side of the fleet data (store/fleet-data.ts): schema, the writes inside a batch, retention, export reads. */
import type Database from 'better-sqlite3';
import type { AlertRow } from './store.ts';
import {
  type ExportFilter, type FeatureExportRow, type FeatureKey, type FleetBatch, type FleetPrune, type FleetPruneResult,
  type FleetReader, type ModelCount, type ModelInfo, type SampleExportRow, type SampleKey,
  EFFECTIVE_MARK, firstModels, firstSamples, parseModelFeatures,
} from './fleet-data.ts';

type Row = Record<string, unknown>;

/** Filter conditions on table alias `t` (ts is the hub's time). */
function conds(f: ExportFilter, models: readonly string[] | undefined, t: string): { sql: string[]; args: unknown[] } {
  const sql: string[] = [];
  const args: unknown[] = [];
  if (f.site !== undefined) (sql.push(`${t}.site = ?`), args.push(f.site));
  if (f.hub !== undefined) (sql.push(`${t}.hub = ?`), args.push(f.hub));
  if (f.since !== undefined) (sql.push(`${t}.ts >= ?`), args.push(f.since));
  if (f.until !== undefined) (sql.push(`${t}.ts < ?`), args.push(f.until));
  if (models) (sql.push(`${t}.model IN (${models.map(() => '?').join(', ') || 'NULL'})`), args.push(...models));
  return { sql, args };
}

const whereOf = (c: string[]) => (c.length ? 'WHERE ' + c.join(' AND ') : '');

export class SqliteFleet implements FleetReader {
  private readonly insertFeatures: Database.Statement;
  private readonly insertSample: Database.Statement;
  private readonly upsertModel: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.insertFeatures = db.prepare('INSERT OR IGNORE INTO alert_features (site, hub, seq, ts, model, features) VALUES (?, ?, ?, ?, ?, ?)');
    this.insertSample = db.prepare(`INSERT OR IGNORE INTO samples
      (site, hub, id, ts, model, class, confidence, src, dst, sport, dport, proto, features, received_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    // The first announcement of a version names its features; a later one may only fill in a missing release.
    this.upsertModel = db.prepare(`INSERT INTO models (version, release, features, first_seen) VALUES (?, ?, ?, ?)
      ON CONFLICT (version) DO UPDATE SET release = COALESCE(models.release, excluded.release)`);
  }

  /** Inside the batch transaction: the features of a new alert. */
  alertFeatures(a: AlertRow): void {
    if (a.features) this.insertFeatures.run(a.site, a.hub, a.seq, a.ts, a.model, a.features);
  }

  /** Inside the batch transaction: samples (one flag each: new or duplicate) and model feature orders. */
  write(fleet: FleetBatch | undefined): boolean[] {
    const samples = fleet?.samples ?? [];
    const isNew = new Array<boolean>(samples.length).fill(false);
    for (const i of firstSamples(samples)) {
      const s = samples[i];
      isNew[i] = this.insertSample.run(s.site, s.hub, s.id, s.ts, s.model, s.class, s.confidence, s.src, s.dst, s.sport,
        s.dport, s.proto, s.features, s.receivedAt).changes === 1;
    }
    for (const m of firstModels(fleet?.models ?? [])) this.upsertModel.run(m.version, m.release, m.features, m.firstSeen);
    return isNew;
  }

  prune(p: FleetPrune): FleetPruneResult {
    const db = this.db;
    return db.transaction(() => {
      const features = db.prepare(`DELETE FROM alert_features AS f WHERE f.ts < ? AND NOT EXISTS
        (SELECT 1 FROM marks x WHERE x.site = f.site AND x.hub = f.hub AND x.seq = f.seq AND x.undone_at IS NULL)`)
        .run(p.featuresBefore).changes;
      const samples = db.prepare('DELETE FROM samples WHERE received_at < ?').run(p.samplesBefore).changes;
      let samplesOverCap = 0;
      const over = db.prepare('SELECT site, hub FROM samples GROUP BY site, hub HAVING COUNT(*) > ?').all(p.samplesPerHub) as Row[];
      // Everything received before the oldest of the newest `samplesPerHub` goes (ties on received_at by id).
      const cut = db.prepare(`DELETE FROM samples WHERE site = ? AND hub = ? AND (received_at, id) <
        (SELECT received_at, id FROM samples WHERE site = ? AND hub = ? ORDER BY received_at DESC, id DESC LIMIT 1 OFFSET ?)`);
      for (const h of over) samplesOverCap += cut.run(h.site, h.hub, h.site, h.hub, p.samplesPerHub - 1).changes;
      return { features, samples, samplesOverCap };
    }).immediate();
  }

  async models(): Promise<ModelInfo[]> {
    const rows = this.db.prepare('SELECT version, release, features, first_seen FROM models ORDER BY first_seen, version').all() as Row[];
    return rows.map((r) => ({
      version: r.version as string, release: (r.release as number | null) ?? null,
      features: parseModelFeatures(r.features as string), firstSeen: r.first_seen as number,
    }));
  }

  async countByModel(f: ExportFilter, includeUnmarked: boolean): Promise<ModelCount[]> {
    const a = conds(f, undefined, 'f');
    if (!includeUnmarked) a.sql.push(`${EFFECTIVE_MARK} IS NOT NULL`);
    const s = conds(f, undefined, 'f');
    const m = new Map<string, ModelCount>();
    const get = (model: string) => m.get(model) ?? (m.set(model, { model, alerts: 0, samples: 0 }), m.get(model)!);
    for (const r of this.db.prepare(`SELECT f.model, COUNT(*) n FROM alert_features f ${whereOf(a.sql)} GROUP BY f.model`).all(...a.args) as Row[]) {
      get(r.model as string).alerts = r.n as number;
    }
    for (const r of this.db.prepare(`SELECT f.model, COUNT(*) n FROM samples f ${whereOf(s.sql)} GROUP BY f.model`).all(...s.args) as Row[]) {
      get(r.model as string).samples = r.n as number;
    }
    return [...m.values()];
  }

  async featurePage(f: ExportFilter, includeUnmarked: boolean, models: readonly string[], after: FeatureKey | undefined, limit: number): Promise<FeatureExportRow[]> {
    const c = conds(f, models, 'f');
    if (after) (c.sql.push('(f.site, f.hub, f.seq) > (?, ?, ?)'), c.args.push(after.site, after.hub, after.seq));
    if (!includeUnmarked) c.sql.push('m.id IS NOT NULL');
    const rows = this.db.prepare(`SELECT f.site, f.hub, f.seq, f.ts, f.model, f.features, a.class AS alert_class,
        m.verdict, m.class AS mark_class
      FROM alert_features f
      LEFT JOIN alerts a ON a.site = f.site AND a.hub = f.hub AND a.seq = f.seq
      LEFT JOIN marks m ON m.id = ${EFFECTIVE_MARK}
      ${whereOf(c.sql)} ORDER BY f.site, f.hub, f.seq LIMIT ?`).all(...c.args, limit) as Row[];
    return rows.map((r) => ({
      site: r.site as string, hub: r.hub as string, seq: r.seq as number, ts: r.ts as number, model: r.model as string,
      features: r.features as string, alertClass: (r.alert_class as string | null) ?? null,
      verdict: (r.verdict as string | null) ?? null, markClass: (r.mark_class as string | null) ?? null,
    }));
  }

  async samplePage(f: ExportFilter, models: readonly string[], after: SampleKey | undefined, limit: number): Promise<SampleExportRow[]> {
    const c = conds(f, models, 's');
    if (after) (c.sql.push('(s.site, s.hub, s.id) > (?, ?, ?)'), c.args.push(after.site, after.hub, after.id));
    const rows = this.db.prepare(`SELECT s.site, s.hub, s.id, s.ts, s.model, s.features FROM samples s
      ${whereOf(c.sql)} ORDER BY s.site, s.hub, s.id LIMIT ?`).all(...c.args, limit) as Row[];
    return rows as unknown as SampleExportRow[];
  }
}
