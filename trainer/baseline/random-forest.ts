/**
 * A random forest with histogram splits, as the classical baseline beside the CNN-LSTM.
 *
 * Why not ml-random-forest (installed): its CART tries every distinct value as a threshold and re-sorts per
 * node; measured here it took 130 s for 3,000 rows × 78 features × 5 trees, so ~30k rows × 100 trees is out of
 * reach. Binning each feature once into ≤ `bins` quantile bins (as LightGBM and sklearn's
 * HistGradientBoosting do) makes a split search one pass over the node's rows per candidate feature.
 *
 * Trees: bootstrap sample per tree, `maxFeatures` random candidate features per split (sqrt by default, the
 * classic choice for classification), Gini impurity, grown to `maxDepth`/`minLeaf`. Prediction averages the
 * leaves' class distributions (soft voting). Everything is seeded through shared/random.ts.
 */
import { Rng } from '../../shared/random.ts';
import { IdsError } from '../../shared/errors.ts';

export interface ForestOptions {
  trees?: number;
  maxDepth?: number;
  minLeaf?: number;
  /** Candidate features per split: 'sqrt', 'log2', a fraction in (0,1] or a count ≥ 1. */
  maxFeatures?: 'sqrt' | 'log2' | number;
  bins?: number;
  /** Bootstrap sample size as a share of the training rows. */
  sampleFraction?: number;
  seed?: number;
}

export interface Forest {
  features: number;
  classes: number;
  /** Per feature, ascending cut points: bin(v) = number of cuts < v... see binOf. */
  cuts: Float64Array[];
  trees: Tree[];
  options: Required<ForestOptions>;
}

interface Tree {
  /** Internal node: feature ≥ 0; leaf: -1. */
  feature: Int32Array;
  /** Rows with bin ≤ threshold go left. */
  threshold: Int32Array;
  left: Int32Array;
  right: Int32Array;
  /** Leaf class distributions, node-major (classes per node; zeros for internal nodes). */
  dist: Float32Array;
}

export const FOREST_DEFAULTS: Required<ForestOptions> = {
  trees: 100,
  maxDepth: 24,
  minLeaf: 1,
  maxFeatures: 'sqrt',
  bins: 64,
  sampleFraction: 1,
  seed: 1,
};

const clean = (v: number): number => (Number.isNaN(v) ? 0 : v);

/** Quantile cut points of one feature over the training rows (non-finite values: NaN as 0, ±inf clamp to the ends). */
function fitCuts(X: Float32Array, F: number, rows: Uint32Array, j: number, bins: number): Float64Array {
  const step = Math.max(1, Math.floor(rows.length / 50000));
  const vals: number[] = [];
  for (let i = 0; i < rows.length; i += step) {
    const v = clean(X[rows[i] * F + j]);
    if (Number.isFinite(v)) vals.push(v);
  }
  vals.sort((a, b) => a - b);
  const cuts: number[] = [];
  for (let b = 1; b < bins; b++) {
    const q = vals[Math.floor((b * vals.length) / bins)];
    if (q === undefined) break;
    if (cuts.length === 0 || q > cuts[cuts.length - 1]) cuts.push(q);
  }
  // A cut at the minimum separates nothing below it; keep it anyway (harmless) so binary features get one cut.
  return Float64Array.from(cuts);
}

/** The bin of v: the number of cuts strictly below v... i.e. v ≤ cuts[0] → 0. */
function binOf(cuts: Float64Array, v: number): number {
  v = clean(v);
  let lo = 0;
  let hi = cuts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cuts[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function binRows(X: Float32Array, F: number, rows: ArrayLike<number>, cuts: Float64Array[]): Uint8Array {
  const n = rows.length;
  const out = new Uint8Array(n * F);
  for (let i = 0; i < n; i++) {
    const base = rows[i] * F;
    for (let j = 0; j < F; j++) out[i * F + j] = binOf(cuts[j], X[base + j]);
  }
  return out;
}

function mtryOf(opt: ForestOptions['maxFeatures'], F: number): number {
  if (opt === 'sqrt') return Math.max(1, Math.round(Math.sqrt(F)));
  if (opt === 'log2') return Math.max(1, Math.round(Math.log2(F)));
  if (typeof opt === 'number' && opt > 0 && opt <= 1) return Math.max(1, Math.round(opt * F));
  if (typeof opt === 'number' && Number.isInteger(opt) && opt >= 1) return Math.min(F, opt);
  throw new IdsError('BAD_OPTION', `forest maxFeatures ${String(opt)}: expected sqrt, log2, a fraction in (0,1] or a count`);
}

interface Grow {
  B: Uint8Array;
  F: number;
  C: number;
  y: Int32Array;
  bins: number;
  mtry: number;
  maxDepth: number;
  minLeaf: number;
}

function growTree(g: Grow, sample: Int32Array, rng: Rng): Tree {
  const { B, F, C, y, bins, mtry, maxDepth, minLeaf } = g;
  const feature: number[] = [];
  const threshold: number[] = [];
  const left: number[] = [];
  const right: number[] = [];
  const dist: number[] = [];
  const hist = new Float64Array(bins * C);
  const total = new Float64Array(C);
  const cum = new Float64Array(C);
  const order = new Int32Array(F);
  for (let j = 0; j < F; j++) order[j] = j;

  const newNode = (): number => {
    feature.push(-1);
    threshold.push(0);
    left.push(-1);
    right.push(-1);
    for (let c = 0; c < C; c++) dist.push(0);
    return feature.length - 1;
  };
  // Work stack of [node, start, end, depth] over segments of `sample`, partitioned in place.
  const stack: number[][] = [[newNode(), 0, sample.length, 0]];
  while (stack.length) {
    const [node, s, e, depth] = stack.pop()!;
    const n = e - s;
    total.fill(0);
    for (let i = s; i < e; i++) total[y[sample[i]]]++;
    let classesPresent = 0;
    for (let c = 0; c < C; c++) if (total[c] > 0) classesPresent++;
    let bestF = -1;
    let bestT = -1;
    let bestScore = -Infinity;
    if (classesPresent > 1 && depth < maxDepth && n >= 2 * minLeaf) {
      let parentScore = 0;
      for (let c = 0; c < C; c++) parentScore += (total[c] * total[c]) / n;
      rng.shuffle(order);
      // Try mtry features; if none of them can split this node, keep drawing (as sklearn does).
      for (let k = 0; k < F && (k < mtry || bestF < 0); k++) {
        const j = order[k];
        hist.fill(0);
        let maxBin = 0;
        for (let i = s; i < e; i++) {
          const r = sample[i];
          const b = B[r * F + j];
          hist[b * C + y[r]]++;
          if (b > maxBin) maxBin = b;
        }
        cum.fill(0);
        let nl = 0;
        for (let t = 0; t < maxBin; t++) {
          let binCount = 0;
          for (let c = 0; c < C; c++) {
            const h = hist[t * C + c];
            cum[c] += h;
            binCount += h;
          }
          if (binCount === 0) continue;
          nl += binCount;
          const nr = n - nl;
          if (nl < minLeaf || nr < minLeaf) continue;
          let sl = 0;
          let sr = 0;
          for (let c = 0; c < C; c++) {
            const l = cum[c];
            const r = total[c] - l;
            sl += l * l;
            sr += r * r;
          }
          const score = sl / nl + sr / nr;
          if (score > bestScore + 1e-12) {
            bestScore = score;
            bestF = j;
            bestT = t;
          }
        }
      }
      if (bestF >= 0 && bestScore <= parentScore + 1e-12) {
        // No impurity decrease at all (possible with duplicate-heavy data): stop here.
        bestF = -1;
      }
    }
    if (bestF < 0) {
      for (let c = 0; c < C; c++) dist[node * C + c] = total[c] / n;
      continue;
    }
    // Partition [s, e) so rows with bin ≤ bestT come first.
    let a = s;
    let b = e - 1;
    while (a <= b) {
      if (B[sample[a] * F + bestF] <= bestT) a++;
      else {
        const t = sample[a];
        sample[a] = sample[b];
        sample[b] = t;
        b--;
      }
    }
    const l = newNode();
    const r = newNode();
    feature[node] = bestF;
    threshold[node] = bestT;
    left[node] = l;
    right[node] = r;
    stack.push([l, s, a, depth + 1], [r, a, e, depth + 1]);
  }
  return {
    feature: Int32Array.from(feature),
    threshold: Int32Array.from(threshold),
    left: Int32Array.from(left),
    right: Int32Array.from(right),
    dist: Float32Array.from(dist),
  };
}

/**
 * Train on the rows `rows` of a raw rows×F matrix (no scaling needed: trees only compare values).
 * `y` is indexed by dataset row, like X.
 */
export function trainForest(
  X: Float32Array, F: number, y: Int32Array, classes: number, rows: Uint32Array, options: ForestOptions = {},
): Forest {
  const o: Required<ForestOptions> = { ...FOREST_DEFAULTS, ...options };
  if (rows.length === 0) throw new IdsError('EMPTY_INPUT', 'random forest: no training rows');
  if (!(o.trees >= 1) || !(o.maxDepth >= 1) || !(o.minLeaf >= 1) || !(o.bins >= 2 && o.bins <= 256)) {
    throw new IdsError('BAD_OPTION', `random forest: trees ${o.trees}, maxDepth ${o.maxDepth}, minLeaf ${o.minLeaf}, bins ${o.bins} out of range`);
  }
  if (!(o.sampleFraction > 0 && o.sampleFraction <= 1)) {
    throw new IdsError('BAD_OPTION', `random forest: sampleFraction ${o.sampleFraction} must be in (0, 1]`);
  }
  const mtry = mtryOf(o.maxFeatures, F);
  const cuts: Float64Array[] = [];
  for (let j = 0; j < F; j++) cuts.push(fitCuts(X, F, rows, j, o.bins));
  const B = binRows(X, F, rows, cuts);
  // Labels re-indexed to the binned matrix's row order.
  const yl = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) yl[i] = y[rows[i]];
  const g: Grow = { B, F, C: classes, y: yl, bins: o.bins, mtry, maxDepth: o.maxDepth, minLeaf: o.minLeaf };
  const rng = new Rng(o.seed);
  const m = Math.max(1, Math.round(rows.length * o.sampleFraction));
  const trees: Tree[] = [];
  for (let t = 0; t < o.trees; t++) {
    const sample = new Int32Array(m);
    for (let i = 0; i < m; i++) sample[i] = rng.int(0, rows.length);
    trees.push(growTree(g, sample, rng));
  }
  return { features: F, classes, cuts, trees, options: o };
}

/** Class probabilities (rows×classes) for the rows `rows` of a raw matrix with the forest's feature order. */
export function forestProba(f: Forest, X: Float32Array, rows: ArrayLike<number>): Float32Array {
  const { features: F, classes: C } = f;
  const out = new Float32Array(rows.length * C);
  const bins = new Uint8Array(F);
  for (let i = 0; i < rows.length; i++) {
    const base = rows[i] * F;
    for (let j = 0; j < F; j++) bins[j] = binOf(f.cuts[j], X[base + j]);
    for (const t of f.trees) {
      let node = 0;
      while (t.feature[node] >= 0) node = bins[t.feature[node]] <= t.threshold[node] ? t.left[node] : t.right[node];
      for (let c = 0; c < C; c++) out[i * C + c] += t.dist[node * C + c];
    }
    for (let c = 0; c < C; c++) out[i * C + c] /= f.trees.length;
  }
  return out;
}

export function forestDescription(f: Forest): string {
  const o = f.options;
  return `random forest (${o.trees} trees, max depth ${o.maxDepth}, ${String(o.maxFeatures)} features per split, ${o.bins} histogram bins)`;
}
