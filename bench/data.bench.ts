/**
 * Loader throughput on the real CIC-IDS2017 sample (17 files, 43,419 rows × 91 columns): loadDataset rows/s
 * (wall and CPU time), with csv-parse reading the same files in the same run as the reference.
 * `npm run bench -- data`.
 */
import { createReadStream, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { parse } from 'csv-parse';
import { emit, median } from './report.ts';
import { CICIDS2017_GROUPS } from '../shared/labels.ts';
import { loadDataset, expandFiles } from '../trainer/data/dataset.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const DATA = resolve(process.env.IOT_IDS_SHARED_DATA ?? resolve(ROOT, '..', 'shared', 'data'), 'cicids2017-improved-sample');
const RUNS = 3;

const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

export async function run(): Promise<void> {
  if (!existsSync(DATA)) {
    process.stderr.write(`data bench skipped: ${DATA} not found (see ../shared/data/README.md)\n`);
    return;
  }
  // One unmeasured pass so that both readers are compiled and the files are in the page cache.
  await loadDataset({ files: [DATA], labelColumn: 'Label', labelMap: CICIDS2017_GROUPS });
  const wall: number[] = [];
  const cpu: number[] = [];
  const ref: number[] = [];
  let rows = 0;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const ds = await loadDataset({ files: [DATA], labelColumn: 'Label', labelMap: CICIDS2017_GROUPS });
    const c = cpuSeconds(process.cpuUsage(c0));
    rows = ds.report.rowsRead;
    wall.push(rows / ((performance.now() - t0) / 1000));
    cpu.push(rows / c);

    const t1 = performance.now();
    let n = 0;
    for (const f of expandFiles([DATA])) {
      for await (const _ of createReadStream(f.path).pipe(parse({ relax_column_count: true, from_line: 2 }))) n++;
    }
    ref.push(n / ((performance.now() - t1) / 1000));
  }
  const reference = { 'csv-parse records/s (same files, same run, records only)': Math.round(median(ref)), rows, runs: RUNS, loadavg1: loadavg()[0] };
  emit({ bench: 'data', metric: 'loadDataset rows/s (wall)', value: Math.round(median(wall)), unit: 'rows/s', reference });
  emit({ bench: 'data', metric: 'loadDataset rows/s (CPU time)', value: Math.round(median(cpu)), unit: 'rows/s', reference });
}

