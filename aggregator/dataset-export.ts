/**
 * `iot-ids dataset export`: the fleet's verdicts as training data. Writes `DIR/flows.csv` (the model's features
 * as IoTID20 columns, then Label,Cat,Sub_Cat) and `DIR/manifest.json` (what went in, what was skipped and why).
 *
 * Rows: alerts with stored features that an operator marked (false positive → Normal, confirmed → the mark's
 * class), unmarked alerts with their model class only when asked, and sampled Normal flows as Normal. A vector is
 * only meaningful in its model's feature order, so one order is exported: the one of `--model`, or the one with
 * the most rows; rows of models with another order, or whose order no hub announced, are skipped and counted.
 * Streaming: keyset pages of PAGE_ROWS rows, written as they come; memory does not grow with the table.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { decodeFeatures } from '../shared/feature-vector.ts';
import { IdsError } from '../shared/errors.ts';
import { NORMAL_LABEL } from '../shared/labels.ts';
import type { Store } from './store/store.ts';
import type { ExportFilter, FeatureKey, ModelCount, ModelInfo, SampleKey } from './store/fleet-data.ts';
import { csvCell, featureColumns, float32Text, iotid20Class, labelCells } from './dataset-csv.ts';

export const PAGE_ROWS = 2000;
export const SOURCES = ['mark-fp', 'mark-confirmed', 'unmarked', 'sample'] as const;
export type RowSource = (typeof SOURCES)[number];

export interface ExportOptions extends ExportFilter {
  out: string;
  includeUnmarked?: boolean;
  /** Export this model's feature order (default: the order with the most rows). */
  model?: string;
  /** What the manifest says about the database (no password). */
  dbLabel?: string;
  pageRows?: number;
  now?: () => number;
}

export interface ExportManifest {
  format: 'iot-ids fleet dataset';
  version: 1;
  createdAt: string;
  db: { kind: Store['kind']; location?: string };
  filters: { since: string | null; until: string | null; site: string | null; hub: string | null; includeUnmarked: boolean; model: string | null };
  /** First and last ts of the rows written. */
  timeRange: { first: string; last: string } | null;
  model: { version: string; release: number | null; chosen: string; versions: string[]; features: string[]; columns: string[]; unknownColumns: string[] };
  /** Every model with rows in the filter, and whether its rows are in the file. */
  models: { version: string; release: number | null; features: number | null; alerts: number; samples: number; exported: boolean; why?: string }[];
  columns: string[];
  rows: { total: number; byLabel: Record<string, number>; byClass: Record<string, number>; bySource: Record<RowSource, number>; byHub: Record<string, number> };
  skipped: { total: number; byReason: Record<string, number> };
  notes: string[];
}

const orderKey = (m: ModelInfo) => JSON.stringify(m.features);
const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());

/** The feature order to export and the versions that share it. */
function chooseOrder(models: ModelInfo[], counts: ModelCount[], wanted: string | undefined): { order: ModelInfo; versions: string[]; chosen: string } {
  const byVersion = new Map(models.map((m) => [m.version, m]));
  const rowsOf = new Map(counts.map((c) => [c.model, c.alerts + c.samples]));
  if (wanted !== undefined) {
    const m = byVersion.get(wanted);
    if (!m || !m.features.length) {
      throw new IdsError('BAD_OPTION', `--model ${wanted}: no feature order known for it (known: ${models.map((x) => x.version).join(', ') || 'none'}); hubs announce it in their status`);
    }
    return { order: m, versions: models.filter((x) => orderKey(x) === orderKey(m)).map((x) => x.version), chosen: '--model' };
  }
  const groups = new Map<string, { rows: number; newest: ModelInfo; versions: string[] }>();
  for (const m of models) {
    if (!m.features.length) continue;
    const g = groups.get(orderKey(m)) ?? { rows: 0, newest: m, versions: [] };
    g.rows += rowsOf.get(m.version) ?? 0;
    g.versions.push(m.version);
    if (m.firstSeen >= g.newest.firstSeen) g.newest = m;
    groups.set(orderKey(m), g);
  }
  const best = [...groups.values()].sort((a, b) => b.rows - a.rows || b.newest.firstSeen - a.newest.firstSeen)[0];
  if (!best) throw new IdsError('EMPTY_INPUT', 'no model feature order in the database: hubs announce it in their status (`features`); nothing can be exported');
  return { order: best.newest, versions: best.versions, chosen: groups.size > 1 ? 'the feature order with the most rows' : 'the only feature order' };
}

/** Counts per label, class, source and hub, and skipped rows by reason. */
class Tally {
  readonly rows: ExportManifest['rows'] = { total: 0, byLabel: {}, byClass: {}, bySource: { 'mark-fp': 0, 'mark-confirmed': 0, unmarked: 0, sample: 0 }, byHub: {} };
  readonly skipped: ExportManifest['skipped'] = { total: 0, byReason: {} };
  first = Infinity;
  last = -Infinity;

  row(site: string, hub: string, ts: number, cls: string, source: RowSource): void {
    const r = this.rows;
    r.total++;
    const label = cls === NORMAL_LABEL ? 'Normal' : 'Anomaly';
    r.byLabel[label] = (r.byLabel[label] ?? 0) + 1;
    r.byClass[cls] = (r.byClass[cls] ?? 0) + 1;
    r.bySource[source]++;
    r.byHub[`${site}/${hub}`] = (r.byHub[`${site}/${hub}`] ?? 0) + 1;
    if (ts < this.first) this.first = ts;
    if (ts > this.last) this.last = ts;
  }

  skip(reason: string, n = 1): void {
    if (n <= 0) return;
    this.skipped.total += n;
    this.skipped.byReason[reason] = (this.skipped.byReason[reason] ?? 0) + n;
  }
}

/** The label of an alert row and where it came from, or why it cannot be used. */
function labelOf(r: { verdict: string | null; markClass: string | null; alertClass: string | null }): { cls: string; source: RowSource } | { skip: string } {
  if (r.verdict === 'false-positive') return { cls: NORMAL_LABEL, source: 'mark-fp' };
  if (r.verdict === 'confirmed') {
    const c = r.markClass ?? r.alertClass;
    return c ? { cls: iotid20Class(c), source: 'mark-confirmed' } : { skip: 'confirmed mark without a class' };
  }
  if (r.verdict !== null) return { skip: `unknown mark verdict` };
  return r.alertClass ? { cls: iotid20Class(r.alertClass), source: 'unmarked' } : { skip: 'unmarked alert rolled up (its class is gone)' };
}

/** Appends one CSV line for `b64` to `out`; false when its length is not the model's. */
function line(b64: string, width: number, cls: string, out: string[]): boolean {
  let v: Float32Array;
  try {
    v = decodeFeatures(b64);
  } catch {
    return false;
  }
  if (v.length !== width) return false;
  let s = '';
  for (let i = 0; i < v.length; i++) s += float32Text(v[i]) + ',';
  out.push(s + labelCells(cls) + '\n');
  return true;
}

export async function exportDataset(store: Store, o: ExportOptions): Promise<ExportManifest> {
  const now = o.now ?? Date.now;
  const filter: ExportFilter = { since: o.since, until: o.until, site: o.site, hub: o.hub };
  const includeUnmarked = o.includeUnmarked ?? false;
  const page = o.pageRows ?? PAGE_ROWS;
  await store.fleet.prepare?.();
  const models = await store.fleet.models();
  const counts = await store.fleet.countByModel(filter, includeUnmarked);
  const { order, versions, chosen } = chooseOrder(models, counts, o.model);
  const { columns, unknown, note } = featureColumns(order.features);
  const width = order.features.length;
  const notes: string[] = [];
  if (note) notes.push(note);
  if (unknown.length) notes.push(`${unknown.length} feature names are not IoTID20/CICFlowMeter columns and keep the model's name: ${unknown.join(', ')}`);

  const t = new Tally();
  const known = new Map(models.map((m) => [m.version, m]));
  const inFile = new Set(versions);
  const modelRows: ExportManifest['models'] = [];
  for (const c of counts) {
    const m = known.get(c.model);
    const why = inFile.has(c.model) ? undefined : !m ? 'no hub announced its feature order' : 'its feature order differs from the exported one';
    if (why) t.skip(!m ? 'model feature order unknown' : 'feature order differs from the exported model\'s', c.alerts + c.samples);
    modelRows.push({ version: c.model, release: m?.release ?? null, features: m ? m.features.length : null, alerts: c.alerts, samples: c.samples, exported: !why, ...(why ? { why } : {}) });
  }
  if (new Set(models.filter((m) => counts.some((c) => c.model === m.version && c.alerts + c.samples > 0)).map(orderKey)).size > 1) {
    notes.push(`rows of several feature orders are in the range: only ${chosen === '--model' ? 'the one of --model' : 'the one with the most rows'} (${order.version}) is exported; export the others with --model VERSION`);
  }

  await mkdir(o.out, { recursive: true });
  const csvPath = join(o.out, 'flows.csv');
  const tmp = `${csvPath}.partial`;
  const file = createWriteStream(tmp);
  const write = async (chunk: string) => {
    if (!file.write(chunk)) await once(file, 'drain');
  };
  try {
    const header = [...columns, 'Label', 'Cat', 'Sub_Cat'];
    await write(header.map(csvCell).join(',') + '\n');
    let fk: FeatureKey | undefined;
    for (;;) {
      const rows = await store.fleet.featurePage(filter, includeUnmarked, versions, fk, page);
      const out: string[] = [];
      for (const r of rows) {
        const l = labelOf(r);
        if ('skip' in l) t.skip(l.skip);
        else if (!line(r.features, width, l.cls, out)) t.skip('vector length differs from the model\'s feature count');
        else t.row(r.site, r.hub, r.ts, l.cls, l.source);
      }
      if (out.length) await write(out.join(''));
      if (rows.length < page) break;
      const last = rows[rows.length - 1];
      fk = { site: last.site, hub: last.hub, seq: last.seq };
    }
    let sk: SampleKey | undefined;
    for (;;) {
      const rows = await store.fleet.samplePage(filter, versions, sk, page);
      const out: string[] = [];
      for (const r of rows) {
        if (!line(r.features, width, NORMAL_LABEL, out)) t.skip('vector length differs from the model\'s feature count');
        else t.row(r.site, r.hub, r.ts, NORMAL_LABEL, 'sample');
      }
      if (out.length) await write(out.join(''));
      if (rows.length < page) break;
      const last = rows[rows.length - 1];
      sk = { site: last.site, hub: last.hub, id: last.id };
    }
    file.end();
    await once(file, 'finish');
  } catch (e) {
    file.destroy();
    throw e;
  }
  await rename(tmp, csvPath);

  const manifest: ExportManifest = {
    format: 'iot-ids fleet dataset', version: 1, createdAt: new Date(now()).toISOString(),
    db: { kind: store.kind, ...(o.dbLabel ? { location: o.dbLabel } : {}) },
    filters: { since: iso(o.since), until: iso(o.until), site: o.site ?? null, hub: o.hub ?? null, includeUnmarked, model: o.model ?? null },
    timeRange: t.rows.total ? { first: new Date(t.first).toISOString(), last: new Date(t.last).toISOString() } : null,
    model: { version: order.version, release: order.release, chosen, versions, features: order.features, columns, unknownColumns: unknown },
    models: modelRows, columns: [...columns, 'Label', 'Cat', 'Sub_Cat'], rows: t.rows, skipped: t.skipped, notes,
  };
  await writeFile(join(o.out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}
