/**
 * The fleet's training data (#15): raw feature vectors of alerts, sampled Normal flows and the feature order of
 * every model the hubs announced. Kept apart from `alerts` because alerts roll up into hourly counts while
 * features must outlive that (retention in days; features of marked alerts are kept). Types and the SQL that
 * both backends share; the per-backend statements are in fleet-sqlite.ts and fleet-postgres.ts.
 *
 * Tables (same names and columns on SQLite and PostgreSQL):
 * - alert_features(site, hub, seq, ts, model, features)       written with the alert, only when the alert is new
 * - samples(site, hub, id, ts, model, class, confidence, src, dst, sport, dport, proto, features, received_at)
 *                                                              deduplicated by (site, hub, id)
 * - models(version, release, features JSON, first_seen)      from status messages that carry `features`
 * - marks(...)                                                 the operator feedback API's (store/marks*.ts), read
 *                                                              by retention and the export
 */

/** A sampled Normal flow as stored. The flow key is absent when the hub drops addresses for privacy. */
export interface SampleRow {
  site: string;
  hub: string;
  /** 16 hex, random per sample. */
  id: string;
  ts: number;
  model: string;
  class: string;
  confidence: number;
  src: string | null;
  dst: string | null;
  sport: number | null;
  dport: number | null;
  proto: number | null;
  /** float32 LE base64, decode-checked at ingest. */
  features: string;
  receivedAt: number;
}

/** A model's feature order, from a hub's status (`bundle` = the version alerts name in `model`). */
export interface ModelRow {
  version: string;
  release: number | null;
  /** JSON array of the feature names, in the order of the vectors. */
  features: string;
  firstSeen: number;
}

/** What a batch carries besides alerts and hub updates. */
export interface FleetBatch {
  samples?: readonly SampleRow[];
  models?: readonly ModelRow[];
}

export interface FleetPrune {
  /** Features of alerts with ts before this are deleted, unless the alert has an effective mark. */
  featuresBefore: number;
  /** Samples received before this are deleted (receive time: a hub's clock cannot keep its samples forever). */
  samplesBefore: number;
  /** Per (site, hub) at most this many samples are kept, the newest received. */
  samplesPerHub: number;
}

export interface FleetPruneResult {
  features: number;
  samples: number;
  /** Samples deleted because their hub was over `samplesPerHub`. */
  samplesOverCap: number;
}

export interface ExportFilter {
  /** Inclusive, on the hub's ts. */
  since?: number;
  /** Exclusive. */
  until?: number;
  site?: string;
  hub?: string;
}

/** An alert's stored features with what labels it: its effective mark, else the alert's own class. */
export interface FeatureExportRow {
  site: string;
  hub: string;
  seq: number;
  ts: number;
  model: string;
  features: string;
  /** The alert's class, null once the alert was rolled up into hourly counts. */
  alertClass: string | null;
  /** The effective mark (newest row not undone), or null. */
  verdict: string | null;
  markClass: string | null;
}

export interface SampleExportRow {
  site: string;
  hub: string;
  id: string;
  ts: number;
  model: string;
  features: string;
}

export interface ModelInfo {
  version: string;
  release: number | null;
  features: string[];
  firstSeen: number;
}

export interface ModelCount {
  model: string;
  /** Exportable alert rows: marked ones, or all with includeUnmarked. */
  alerts: number;
  samples: number;
}

/** Reads for `dataset export`: small aggregates and keyset pages, never a whole table at once. */
export interface FleetReader {
  /** Before an export: whatever makes the pages cheap (PostgreSQL: fresh planner statistics). */
  prepare?(): Promise<void>;
  models(): Promise<ModelInfo[]>;
  countByModel(f: ExportFilter, includeUnmarked: boolean): Promise<ModelCount[]>;
  /** Rows after `after` in (site, hub, seq) order, of the given model versions. */
  featurePage(f: ExportFilter, includeUnmarked: boolean, models: readonly string[], after: FeatureKey | undefined, limit: number): Promise<FeatureExportRow[]>;
  /** Rows after `after` in (site, hub, id) order, of the given model versions. */
  samplePage(f: ExportFilter, models: readonly string[], after: SampleKey | undefined, limit: number): Promise<SampleExportRow[]>;
}

export type FeatureKey = { site: string; hub: string; seq: number };
export type SampleKey = { site: string; hub: string; id: string };

export const DEFAULT_FEATURE_RETENTION_DAYS = 30;
export const DEFAULT_SAMPLE_RETENTION_DAYS = 30;
/**
 * Samples kept per hub. A sample is ~0.5 kB (57 features): 100,000 is ~50 MB per hub, about 12 hours of a hub
 * sending at the edge's default budget of 64 KiB a minute, or 30 days at one sample every 26 s.
 */
export const DEFAULT_SAMPLES_PER_HUB = 100_000;
export const DAY_MS = 24 * 3_600_000;

/** The fleet data's tables: the same DDL on SQLite and PostgreSQL (created with each store's other tables). */
export const FLEET_SCHEMA = `
CREATE TABLE IF NOT EXISTS alert_features (
  site TEXT NOT NULL, hub TEXT NOT NULL, seq BIGINT NOT NULL, ts BIGINT NOT NULL, model TEXT NOT NULL,
  features TEXT NOT NULL, PRIMARY KEY (site, hub, seq)
);
CREATE INDEX IF NOT EXISTS alert_features_ts ON alert_features (ts);
CREATE TABLE IF NOT EXISTS samples (
  site TEXT NOT NULL, hub TEXT NOT NULL, id TEXT NOT NULL, ts BIGINT NOT NULL, model TEXT NOT NULL,
  class TEXT NOT NULL, confidence REAL NOT NULL, src TEXT, dst TEXT, sport INTEGER, dport INTEGER, proto INTEGER,
  features TEXT NOT NULL, received_at BIGINT NOT NULL, PRIMARY KEY (site, hub, id)
);
CREATE INDEX IF NOT EXISTS samples_received ON samples (received_at);
CREATE INDEX IF NOT EXISTS samples_hub_received ON samples (site, hub, received_at);
CREATE TABLE IF NOT EXISTS models (
  version TEXT PRIMARY KEY, release BIGINT, features TEXT NOT NULL, first_seen BIGINT NOT NULL
);
`;

/**
 * The effective mark of alert f: its newest row that is not undone. A correlated subquery on the marks index,
 * so an alert without marks costs one index probe.
 */
export const EFFECTIVE_MARK = `(SELECT MAX(x.id) FROM marks x WHERE x.site = f.site AND x.hub = f.hub AND x.seq = f.seq AND x.undone_at IS NULL)`;

/** Keeps the first sample of each (site, hub, id) in a batch, sorted by key (lock order); returns indices. */
export function firstSamples(samples: readonly SampleRow[]): number[] {
  const seen = new Set<string>();
  const keep: number[] = [];
  for (let i = 0; i < samples.length; i++) {
    const k = `${samples[i].site}\u0000${samples[i].hub}\u0000${samples[i].id}`;
    if (seen.has(k)) continue;
    seen.add(k);
    keep.push(i);
  }
  const key = (s: SampleRow) => `${s.site}\u0000${s.hub}\u0000${s.id}`;
  return keep.sort((i, j) => (key(samples[i]) < key(samples[j]) ? -1 : 1));
}

/** One row per version, the first of the batch (a status batch is written alone, so this is the newest status). */
export function firstModels(models: readonly ModelRow[]): ModelRow[] {
  const m = new Map<string, ModelRow>();
  for (const r of models) if (!m.has(r.version)) m.set(r.version, r);
  return [...m.values()].sort((a, b) => (a.version < b.version ? -1 : 1));
}

export function parseModelFeatures(json: string): string[] {
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : [];
  } catch {
    return [];
  }
}
