/**
 * The rollout's pre-flight check, before anything is sent to a canary: the new and the previous bundle score the
 * fleet's own labelled rows from the database, as a hub would (shared/score.ts), and a bundle that catches fewer of
 * the attacks operators confirmed, or alerts on more of the flows they called Normal, is refused. The canaries'
 * alert rate cannot see this: a bundle that misses an attack class alerts less, which the rate rule reads as healthy.
 *
 * Rows: alerts with stored features whose effective mark is `confirmed` (label: the mark's class, an IoTID20
 * sub-category counted as its category, the level models predict) or
 * `false-positive` (label Normal), newest mark first, read in pages, at most `maxRows`; plus up to `samples` of the
 * hubs' Normal samples drawn at random. A row's values are named by the `models` table (its model's feature order)
 * and taken by name for each bundle; a row naming too few features for either bundle, or of an unknown model, or
 * with a broken vector, is skipped and counted.
 *
 * Refuse when, for any attack class with at least `minSupport` confirmed rows, recall(previous) − recall(new) >
 * `maxRecallDrop` (recall: the share of its rows the bundle gives exactly that class), or, with at least
 * `minSupport` Normal rows, alerted(new) − alerted(previous) > `maxFalseAlertRise` (alerted: the share of Normal
 * rows given any class but Normal, the hub's alert condition). Without such rows there is nothing to compare: pass.
 */
import { modelFileFor } from '../../shared/bundle-verify.ts';
import { decodeFeatures } from '../../shared/feature-vector.ts';
import { NORMAL_LABEL, categoryOf } from '../../shared/labels.ts';
import { openScorer, type Scorer } from '../../shared/score.ts';
import type { RolloutBundle } from './bundle.ts';
import type { LabelledRows } from './store.ts';

export interface PreflightLimits {
  maxRecallDrop: number;
  maxFalseAlertRise: number;
  minSupport: number;
  /** Most marked alerts read. */
  maxRows: number;
  /** Most Normal samples read. */
  samples: number;
}

export const DEFAULT_PREFLIGHT: PreflightLimits = { maxRecallDrop: 0.05, maxFalseAlertRise: 0.05, minSupport: 10, maxRows: 20_000, samples: 2_000 };

export interface ClassFigures {
  class: string;
  support: number;
  /** Rows given exactly this class, by the previous and the new bundle. */
  caughtOld: number;
  caughtNew: number;
  recallOld: number;
  recallNew: number;
  /** support ≥ minSupport: the class takes part in the decision. */
  counted: boolean;
}

export interface PreflightResult {
  action: 'pass' | 'refuse';
  reasons: string[];
  previous: string;
  next: string;
  limits: PreflightLimits;
  rows: { confirmed: number; falsePositive: number; samples: number };
  skipped: { unknownModel: number; otherFeatures: number; badVector: number };
  classes: ClassFigures[];
  /** False-positive-marked alerts, alerts confirmed as Normal and the samples. */
  normal: { rows: number; alertedOld: number; alertedNew: number; rateOld: number; rateNew: number; counted: boolean };
  ms: number;
}

const PAGE = 1000;
const r4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/** A page of rows ready for both scorers: values in each bundle's feature order, and their labels. */
class Page {
  readonly labels: string[] = [];
  private readonly bufs: [number[], number[]] = [[], []];
  add(values: Float32Array, maps: [Int32Array, Int32Array], label: string): void {
    for (let b = 0; b < 2; b++) for (const j of maps[b]) this.bufs[b].push(values[j]);
    this.labels.push(label);
  }
  values(b: 0 | 1): Float32Array {
    return Float32Array.from(this.bufs[b]);
  }
}

/** Scores pages with both bundles and keeps the counts. */
class Tally {
  readonly support = new Map<string, { n: number; old: number; new: number }>();
  readonly normal = { rows: 0, old: 0, new: 0 };
  constructor(private readonly scorers: [Scorer, Scorer]) {}

  async add(p: Page): Promise<void> {
    const n = p.labels.length;
    if (!n) return;
    // One after the other: both sessions share onnxruntime's single wasm instance.
    const o = await this.scorers[0].classify(p.values(0), n);
    const w = await this.scorers[1].classify(p.values(1), n);
    const alerts = (s: Scorer, k: number) => k >= 0 && k !== s.normal;
    for (let i = 0; i < n; i++) {
      const label = p.labels[i];
      if (label === NORMAL_LABEL) {
        this.normal.rows++;
        if (alerts(this.scorers[0], o[i])) this.normal.old++;
        if (alerts(this.scorers[1], w[i])) this.normal.new++;
        continue;
      }
      const c = this.support.get(label) ?? { n: 0, old: 0, new: 0 };
      c.n++;
      if (o[i] >= 0 && this.scorers[0].labels[o[i]] === label) c.old++;
      if (w[i] >= 0 && this.scorers[1].labels[w[i]] === label) c.new++;
      this.support.set(label, c);
    }
  }
}

/** Column maps (bundle feature j ← row value map[j]) per model version, or null when the row lacks a feature. */
function columnMaps(models: Map<string, string[]>, scorers: [Scorer, Scorer]) {
  const cache = new Map<string, [Int32Array, Int32Array] | null>();
  return (model: string): [Int32Array, Int32Array] | null | undefined => {
    if (cache.has(model)) return cache.get(model);
    const names = models.get(model);
    if (!names) return undefined;
    const at = new Map(names.map((x, i) => [x, i]));
    const map = (s: Scorer) => (s.features.every((x) => at.has(x)) ? Int32Array.from(s.features, (x) => at.get(x)!) : null);
    const a = map(scorers[0]);
    const b = map(scorers[1]);
    const v: [Int32Array, Int32Array] | null = a && b ? [a, b] : null;
    cache.set(model, v);
    return v;
  };
}

export async function preflight(rows: LabelledRows, previous: RolloutBundle, next: RolloutBundle, limits: PreflightLimits): Promise<PreflightResult> {
  const t0 = performance.now();
  const result: PreflightResult = {
    action: 'pass', reasons: [], previous: previous.version, next: next.version, limits,
    rows: { confirmed: 0, falsePositive: 0, samples: 0 }, skipped: { unknownModel: 0, otherFeatures: 0, badVector: 0 },
    classes: [], normal: { rows: 0, alertedOld: 0, alertedNew: 0, rateOld: 0, rateNew: 0, counted: false }, ms: 0,
  };
  const missing = await rows.missingTables();
  if (missing.length) {
    result.reasons.push(`no labelled rows to compare on (no ${missing.join(', ')} table in the database): nothing to compare, passed`);
    result.ms = Math.round(performance.now() - t0);
    return result;
  }
  const open = (b: RolloutBundle) => openScorer(b.manifest, b.files[modelFileFor(b.manifest)]);
  const scorers: [Scorer, Scorer] = [await open(previous), await open(next)];
  try {
    const mapFor = columnMaps(await rows.modelFeatures(), scorers);
    const tally = new Tally(scorers);
    const take = (page: Page, model: string, b64: string, label: string): boolean => {
      const maps = mapFor(model);
      if (maps === undefined) return (result.skipped.unknownModel++, false);
      if (maps === null) return (result.skipped.otherFeatures++, false);
      let v: Float32Array;
      try {
        v = decodeFeatures(b64);
      } catch {
        return (result.skipped.badVector++, false);
      }
      const need = Math.max(...maps[0], ...maps[1]);
      if (v.length <= need) return (result.skipped.badVector++, false);
      page.add(v, maps, label);
      return true;
    };
    let before = Number.MAX_SAFE_INTEGER;
    for (let read = 0; read < limits.maxRows;) {
      const got = await rows.markedPage(before, Math.min(PAGE, limits.maxRows - read));
      if (!got.length) break;
      read += got.length;
      before = got[got.length - 1].markId;
      const page = new Page();
      for (const r of got) {
        const fp = r.verdict === 'false-positive';
        if (take(page, r.model, r.features, fp ? NORMAL_LABEL : categoryOf(r.label))) fp ? result.rows.falsePositive++ : result.rows.confirmed++;
      }
      await tally.add(page);
    }
    if (limits.samples > 0) {
      const page = new Page();
      for (const s of await rows.randomSamples(limits.samples)) if (take(page, s.model, s.features, NORMAL_LABEL)) result.rows.samples++;
      await tally.add(page);
    }
    decide(result, tally, limits);
  } finally {
    await Promise.all(scorers.map((s) => s.release()));
  }
  result.ms = Math.round(performance.now() - t0);
  return result;
}

function decide(result: PreflightResult, tally: Tally, limits: PreflightLimits): void {
  for (const [cls, c] of [...tally.support].sort((a, b) => b[1].n - a[1].n)) {
    const f: ClassFigures = {
      class: cls, support: c.n, caughtOld: c.old, caughtNew: c.new, recallOld: r4(c.old / c.n), recallNew: r4(c.new / c.n),
      counted: c.n >= limits.minSupport,
    };
    result.classes.push(f);
    if (f.counted && c.old / c.n - c.new / c.n > limits.maxRecallDrop) {
      result.reasons.push(`${cls}: recall ${f.recallNew} on ${c.n} confirmed rows, ${f.recallOld} with ${result.previous} ` +
        `(drop ${r4(c.old / c.n - c.new / c.n)} > ${limits.maxRecallDrop})`);
    }
  }
  const n = tally.normal;
  const rate = (x: number) => (n.rows ? x / n.rows : 0);
  result.normal = {
    rows: n.rows, alertedOld: n.old, alertedNew: n.new, rateOld: r4(rate(n.old)), rateNew: r4(rate(n.new)),
    counted: n.rows >= limits.minSupport,
  };
  if (result.normal.counted && rate(n.new) - rate(n.old) > limits.maxFalseAlertRise) {
    result.reasons.push(`Normal: alerts on ${n.new} of ${n.rows} rows marked false positive or sampled, ${n.old} with ${result.previous} ` +
      `(rise ${r4(rate(n.new) - rate(n.old))} > ${limits.maxFalseAlertRise})`);
  }
  if (result.reasons.length) {
    result.action = 'refuse';
  } else if (!result.classes.some((c) => c.counted) && !result.normal.counted) {
    result.reasons.push(`too few labelled rows to compare on (no class with ${limits.minSupport}): nothing to compare, passed`);
  } else {
    result.reasons.push('no confirmed class caught less, no more alerts on Normal rows');
  }
}

/** The figures as lines for stderr. */
export function preflightLines(p: PreflightResult): string[] {
  const s = p.skipped;
  const out = [
    `pre-flight: ${p.action === 'pass' ? 'passed' : 'REFUSED'} (${p.ms} ms): ${p.reasons.join('; ')}`,
    `  rows: ${p.rows.confirmed} confirmed, ${p.rows.falsePositive} false positive, ${p.rows.samples} sampled Normal; ` +
      `skipped ${s.unknownModel} of unknown models, ${s.otherFeatures} lacking the bundles' features, ${s.badVector} broken`,
  ];
  for (const c of p.classes) {
    out.push(`  ${c.class}: ${c.support} rows, recall ${c.recallOld} (${p.previous}) → ${c.recallNew} (${p.next})${c.counted ? '' : ' (too few to count)'}`);
  }
  const n = p.normal;
  out.push(`  Normal: ${n.rows} rows, alerted ${n.alertedOld} (${p.previous}) → ${n.alertedNew} (${p.next})${n.counted ? '' : ' (too few to count)'}`);
  return out;
}
