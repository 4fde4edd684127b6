/**
 * `iot-ids dataset export --db DB --out DIR [--since T] [--until T] [--site S] [--hub H] [--include-unmarked]
 *  [--model VERSION]`: the fleet's marked alerts and sampled Normal flows as a training CSV (dataset-export.ts).
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { defineCommand } from 'citty';
import { IdsError } from '../shared/errors.ts';
import { isValidId } from '../shared/topics.ts';
import { exportDataset } from './dataset-export.ts';
import { isPostgresUrl, openStore } from './store/open.ts';
import { redact } from './store/postgres.ts';

/** ms since the epoch or an ISO 8601 date (as the HTTP API takes them). */
export function timeOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) throw new IdsError('BAD_OPTION', `--${name} "${v.slice(0, 40)}" is neither ms since the epoch nor an ISO 8601 date`);
  return n;
}

function idOption(name: string, v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (!isValidId(v)) throw new IdsError('BAD_OPTION', `--${name} "${v.slice(0, 70)}" is not a valid ${name} id`);
  return v;
}

export const datasetExport = defineCommand({
  meta: { name: 'export', description: 'Write DIR/flows.csv (marked alerts, sampled Normal flows) and DIR/manifest.json' },
  args: {
    db: { type: 'string', required: true, description: 'the aggregator\'s SQLite file or postgres://user@host/db[?schema=NAME]' },
    out: { type: 'string', required: true, description: 'output folder (created if missing)' },
    since: { type: 'string', description: 'rows with ts ≥ this (ms since the epoch or ISO 8601)' },
    until: { type: 'string', description: 'rows with ts < this' },
    site: { type: 'string', description: 'only this site' },
    hub: { type: 'string', description: 'only this hub id' },
    'include-unmarked': { type: 'boolean', description: 'also unmarked alerts, labelled with their model class', default: false },
    model: { type: 'string', description: 'export this model version\'s feature order (default: the order with the most rows)' },
  },
  async run({ args }) {
    const since = timeOption('since', args.since);
    const until = timeOption('until', args.until);
    if (since !== undefined && until !== undefined && since >= until) throw new IdsError('BAD_OPTION', '--since must be before --until');
    const pgUrl = isPostgresUrl(args.db);
    // Opening a missing SQLite file would create an empty database and export nothing, silently.
    if (!pgUrl && !existsSync(args.db)) throw new IdsError('BAD_OPTION', `--db ${args.db}: no such file`);
    const store = await openStore(args.db);
    try {
      const started = performance.now();
      const m = await exportDataset(store, {
        out: args.out, since, until, site: idOption('site', args.site), hub: idOption('hub', args.hub),
        includeUnmarked: args['include-unmarked'], model: args.model || undefined,
        dbLabel: pgUrl ? redact(args.db) : basename(args.db),
      });
      const sec = (performance.now() - started) / 1000;
      const labels = Object.entries(m.rows.byLabel).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
      const skipped = Object.entries(m.skipped.byReason).map(([k, v]) => `${v} ${k}`).join('; ');
      console.log(`dataset: ${m.rows.total} rows (${labels}) of model ${m.model.version} (${m.model.features.length} features) → ${args.out}/flows.csv in ${sec.toFixed(1)} s`);
      if (m.skipped.total) console.log(`dataset: skipped ${m.skipped.total}: ${skipped}`);
      for (const n of m.notes) console.log(`dataset: note: ${n}`);
    } finally {
      await store.close();
    }
  },
});

export default defineCommand({
  meta: { name: 'dataset', description: 'Training data from the fleet: marked alerts and sampled Normal flows' },
  subCommands: { export: datasetExport },
});
