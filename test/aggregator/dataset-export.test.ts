/**
 * `dataset export` (aggregator/dataset-export.ts) on every store: rows read back by the trainer's own CSV reader
 * (trainer/data) give the float32 values the hubs sent and the labels the marks say; undone marks are ignored;
 * unmarked alerts only on request; one feature order exported, the others skipped and counted in the manifest.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeFeatures } from '../../shared/feature-vector.ts';
import { Rng } from '../../shared/random.ts';
import type { Store } from '../../aggregator/store/store.ts';
import { SqliteStore } from '../../aggregator/store/sqlite.ts';
import { exportDataset, type ExportManifest } from '../../aggregator/dataset-export.ts';
import { float32Text } from '../../aggregator/dataset-csv.ts';
import { loadDataset } from '../../trainer/data/dataset.ts';
import { LABEL, parseRecord, type ParsedRecord } from '../../trainer/data/row-parse.ts';
import { row, storeMakers, tempDir, type StoreMaker } from './fixtures.ts';
import { insertMark } from './fleet-fixtures.ts';

const T0 = Date.UTC(2026, 11, 1, 8, 0, 0);
const PROJECT_ROOT = join(import.meta.dirname, '..', '..');
/** A model's names in a CICFlowMeter dialect: the export writes IoTID20's (Flow Bytes/s → Flow_Byts/s). */
const NAMES = ['Dst_Port', 'Protocol', 'Flow_Duration', 'Flow Bytes/s', 'Fwd_Pkt_Len_Mean', 'Idle_Std'];
const COLUMNS = ['Dst_Port', 'Protocol', 'Flow_Duration', 'Flow_Byts/s', 'Fwd_Pkt_Len_Mean', 'Idle_Std'];
/** Values that a careless writer would not bring back: non-finite, -0, subnormal, 17-digit, huge. */
const AWKWARD = [0.1, 1 / 3, -0, NaN, Infinity, -Infinity, 1e-40, 3.4e38, 16777217, 1e21, 1e-7, 123456.789, -2.5, 443, 6, 0];

function vector(rng: Rng, k: number): number[] {
  return NAMES.map((_, j) => Math.fround(k * NAMES.length + j < AWKWARD.length ? AWKWARD[k * NAMES.length + j] : (rng.next() - 0.3) * 10 ** Math.floor(rng.next() * 12 - 4)));
}

const sample = (hub: string, n: number, values: number[]) => ({
  site: 's1', hub, id: n.toString(16).padStart(16, '0'), ts: T0 + 1000 + n, model: 'm-1', class: 'Normal', confidence: 0.99,
  src: null, dst: null, sport: null, dport: null, proto: null, features: encodeFeatures(values), receivedAt: T0 + 1000 + n,
});

/** Writes the scenario; returns the expected rows of the default export, in file order. */
async function fill(store: Store): Promise<{ label: string; cls: string; values: number[] }[]> {
  const rng = new Rng(7);
  const v = Array.from({ length: 12 }, (_, k) => vector(rng, k));
  await store.writeBatch([], [], {
    models: [
      { version: 'm-1', release: 1, features: JSON.stringify(NAMES), firstSeen: T0 },
      { version: 'm-1b', release: 2, features: JSON.stringify(NAMES), firstSeen: T0 + 1 }, // same order, rows go together
      { version: 'm-2', release: 3, features: JSON.stringify(NAMES.slice(0, 3)), firstSeen: T0 + 2 },
    ],
  });
  const alert = (seq: number, cls: string, values: number[] | string, model = 'm-1', hub = 'h1') =>
    ({ ...row('s1', hub, seq, T0 + seq, cls), model, features: typeof values === 'string' ? values : encodeFeatures(values) });
  await store.writeBatch([
    alert(1, 'Scan', v[0]), alert(2, 'mirai', v[1]), alert(3, 'Mirai', v[2]), alert(4, 'Scan', v[3]),
    alert(5, 'Scan', v[4]), alert(6, 'DoS', v[5]), alert(7, 'Scan', v[6].slice(0, 5)), alert(8, 'Scan', v[7], 'm-1b'),
    alert(9, 'Scan', v[8].slice(0, 3), 'm-2'), alert(10, 'Scan', v[9], 'ghost'), alert(1, 'Scan', v[10], 'm-1', 'h2'),
  ], [], { samples: [sample('h1', 1, v[11]), sample('h2', 2, v[0])] });
  const mark = (seq: number, verdict: 'false-positive' | 'confirmed', cls: string, undoneAt?: number, hub = 'h1') =>
    insertMark(store, { site: 's1', hub, seq, verdict, class: cls, at: T0 + 100, undoneAt });
  await mark(1, 'false-positive', 'Normal');
  await mark(2, 'confirmed', 'mirai'); // the alert's class in another case: IoTID20's spelling comes out
  await mark(3, 'confirmed', 'DoS'); // corrected
  await mark(4, 'false-positive', 'Normal');
  await mark(4, 'confirmed', 'Scan', T0 + 200); // newer, undone: the false positive stands
  await mark(5, 'false-positive', 'Normal', T0 + 200); // undone: unmarked
  await mark(7, 'false-positive', 'Normal'); // 5 values for 6 features: skipped
  await mark(8, 'confirmed', 'Scan'); // m-1b shares m-1's order
  await mark(9, 'false-positive', 'Normal'); // m-2: another order
  await mark(10, 'false-positive', 'Normal'); // no order known
  await mark(1, 'confirmed', 'MITM ARP Spoofing', undefined, 'h2');
  return [
    { label: 'Normal', cls: 'Normal', values: v[0] }, { label: 'Anomaly', cls: 'Mirai', values: v[1] },
    { label: 'Anomaly', cls: 'DoS', values: v[2] }, { label: 'Normal', cls: 'Normal', values: v[3] },
    { label: 'Anomaly', cls: 'Scan', values: v[7] }, { label: 'Anomaly', cls: 'MITM ARP Spoofing', values: v[10] },
    { label: 'Normal', cls: 'Normal', values: v[11] }, { label: 'Normal', cls: 'Normal', values: v[0] },
  ];
}

/** The trainer's reader on the exported file: every column kept, as a bundle evaluation would. */
async function readBack(dir: string, labelColumn: string) {
  const ds = await loadDataset({ files: [join(dir, 'flows.csv')], labelColumn, ports: 'both', keepProtocol: true, keepConstant: true });
  const rows = [];
  for (let r = 0; r < ds.rows; r++) {
    const byName = new Map(ds.features.map((f, j) => [f, ds.X[r * ds.features.length + j]]));
    rows.push({ label: ds.labels[ds.y[r]], values: COLUMNS.map((c) => byName.get(c)!) });
  }
  return { ds, rows };
}

const sameFloat32 = (a: number, b: number) => (Number.isNaN(a) && Number.isNaN(b)) || Object.is(a, b);

function suite(name: string, make: StoreMaker) {
  describe(`${name}: dataset export`, () => {
    let store: Store;
    let done: (() => Promise<void>) | undefined;
    let skip: string | undefined;
    let expected: Awaited<ReturnType<typeof fill>>;
    const tmp = tempDir('iot-ids-export-');
    before(async () => {
      const r = await make();
      if (typeof r === 'string') skip = r;
      else {
        ({ store, done } = r);
        expected = await fill(store);
      }
    });
    after(async () => {
      await done?.();
      tmp.cleanup();
    });

    it('writes marked alerts and samples that the trainer reads back as the same float32 values and labels', async (t) => {
      if (skip) return t.skip(skip);
      const out = join(tmp.dir, 'marked');
      const m = await exportDataset(store, { out, pageRows: 3 }); // small pages: the keyset paging is exercised
      const header = readFileSync(join(out, 'flows.csv'), 'utf8').split('\n')[0];
      assert.equal(header, [...COLUMNS, 'Label', 'Cat', 'Sub_Cat'].join(','));
      for (const labelColumn of ['Cat', 'Label']) {
        const { ds, rows } = await readBack(out, labelColumn);
        assert.equal(ds.report.skipped.wrongCellCount + ds.report.skipped.badNumber + ds.report.skipped.emptyLabel, 0);
        assert.equal(rows.length, expected.length);
        rows.forEach((r, i) => {
          assert.equal(r.label, labelColumn === 'Cat' ? expected[i].cls : expected[i].label, `row ${i} label`);
          r.values.forEach((x, j) => assert.ok(sameFloat32(x, expected[i].values[j]), `row ${i} ${COLUMNS[j]}: read ${x}, sent ${expected[i].values[j]}`));
        });
      }
      assert.deepEqual(m.rows.bySource, { 'mark-fp': 2, 'mark-confirmed': 4, unmarked: 0, sample: 2 });
      assert.deepEqual(m.rows.byLabel, { Normal: 4, Anomaly: 4 });
      assert.deepEqual(m.rows.byHub, { 's1/h1': 6, 's1/h2': 2 });
      assert.deepEqual(m.model.versions.sort(), ['m-1', 'm-1b']);
      assert.deepEqual(m.model.features, NAMES);
      assert.deepEqual(m.skipped.byReason, {
        'vector length differs from the model\'s feature count': 1,
        'feature order differs from the exported model\'s': 1,
        'model feature order unknown': 1,
      });
      assert.equal(m.models.find((x) => x.version === 'm-2')?.exported, false);
      assert.ok(m.notes.some((n) => n.includes('several feature orders')));
      assert.deepEqual(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as ExportManifest, m);
    });

    it('adds unmarked alerts with their model class only when asked, and filters by hub and time', async (t) => {
      if (skip) return t.skip(skip);
      const all = await exportDataset(store, { out: join(tmp.dir, 'all'), includeUnmarked: true });
      assert.equal(all.rows.bySource.unmarked, 2); // seq 5 (its mark undone) and 6
      assert.equal(all.rows.byClass.DoS, 2); // seq 3 corrected + seq 6 unmarked
      const { rows } = await readBack(join(tmp.dir, 'all'), 'Cat');
      assert.equal(rows.length, 10);
      const h2 = await exportDataset(store, { out: join(tmp.dir, 'h2'), hub: 'h2' });
      assert.deepEqual(h2.rows.bySource, { 'mark-fp': 0, 'mark-confirmed': 1, unmarked: 0, sample: 1 });
      const early = await exportDataset(store, { out: join(tmp.dir, 'early'), since: T0 + 2, until: T0 + 4 });
      assert.deepEqual(early.rows.byClass, { Mirai: 1, DoS: 1 });
      assert.equal(early.timeRange?.first, new Date(T0 + 2).toISOString());
      const m2 = await exportDataset(store, { out: join(tmp.dir, 'm2'), model: 'm-2' });
      assert.equal(m2.rows.total, 1);
      assert.deepEqual(m2.columns, ['Dst_Port', 'Protocol', 'Flow_Duration', 'Label', 'Cat', 'Sub_Cat']);
      await assert.rejects(exportDataset(store, { out: join(tmp.dir, 'x'), model: 'nope' }), /no feature order known/);
    });
  });
}

for (const [name, make] of storeMakers('export')) suite(name, make);

describe('float32Text', () => {
  it('reads back bit-exactly through the trainer\'s record parser for 20,000 random float32 bit patterns', () => {
    const rng = new Rng(11);
    const bits = new Uint32Array(1);
    const f = new Float32Array(bits.buffer);
    const values: number[] = [];
    while (values.length < 20_000) {
      bits[0] = Math.floor(rng.next() * 2 ** 32);
      values.push(f[0]);
    }
    const slots = new Int32Array(values.length + 1).map((_, i) => (i < values.length ? i : LABEL));
    const read = new Float64Array(values.length);
    const parsed: ParsedRecord = { cells: 0, badCell: -1, label: '' };
    parseRecord(values.map(float32Text).join(',') + ',Normal', slots, read, parsed);
    assert.equal(parsed.badCell, -1);
    const back = Float32Array.from(read);
    values.forEach((v, i) => assert.ok(sameFloat32(back[i], v), `${v} written ${float32Text(v)} read ${back[i]}`));
    assert.equal(float32Text(Math.fround(0.1)), '0.1');
    assert.equal(float32Text(443), '443');
  });
});

describe('iot-ids dataset export', () => {
  it('runs as a command and refuses a missing database file', async () => {
    const tmp = tempDir('iot-ids-export-cli-');
    try {
      const db = join(tmp.dir, 'a.db');
      const store = new SqliteStore(db);
      await store.open();
      await fill(store);
      await store.close();
      const cli = (...a: string[]) => spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'dataset', 'export', ...a], { encoding: 'utf8', timeout: 60_000 });
      const ok = cli('--db', db, '--out', join(tmp.dir, 'out'), '--since', new Date(T0).toISOString());
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /dataset: 8 rows \(Normal 4, Anomaly 4\) of model m-1/);
      const missing = cli('--db', join(tmp.dir, 'none.db'), '--out', join(tmp.dir, 'o2'));
      assert.notEqual(missing.status, 0);
      assert.match(missing.stderr + missing.stdout, /no such file/);
    } finally {
      tmp.cleanup();
    }
  });
});
