/**
 * The loops of the fused CNN-LSTM step that are not matrix products: im2col by native heap copies, relu and
 * max-pool backward, transposes, dropout masks. Typed arrays only; no tfjs.
 */
import type { Rng } from '../../shared/random.ts';

/**
 * im2col on the heap with native copies: for 'same' padding each interior row of the column matrix is k·C
 * consecutive floats of the source (rows l−pad … l+pad), so it is one copyWithin; edge rows are assembled per tap.
 */
export function im2colHeap(heap: Float32Array, src: number, dst: number, n: number, L: number, C: number, k: number, pad: number): void {
  const kC = k * C;
  for (let b = 0; b < n; b++) {
    const s0 = src + b * L * C;
    for (let l = 0; l < L; l++) {
      const d = dst + (b * L + l) * kC;
      const lo = l - pad;
      if (lo >= 0 && lo + k <= L) {
        heap.copyWithin(d, s0 + lo * C, s0 + (lo + k) * C);
      } else {
        for (let j = 0; j < k; j++) {
          const sl = lo + j;
          if (sl < 0 || sl >= L) heap.fill(0, d + j * C, d + (j + 1) * C);
          else heap.copyWithin(d + j * C, s0 + sl * C, s0 + (sl + 1) * C);
        }
      }
    }
  }
}

/**
 * The transposed im2col from a transposed source srcT [C, n·L]: row (j, c) is srcT row c shifted by j − pad
 * (one native copy), with the |shift| positions at each sample's edge zeroed.
 */
export function im2colTHeap(heap: Float32Array, srcT: number, dst: number, n: number, L: number, C: number, k: number, pad: number): void {
  const M = n * L;
  for (let j = 0; j < k; j++) {
    const sh = j - pad;
    for (let c = 0; c < C; c++) {
      const row = dst + (j * C + c) * M;
      const from = srcT + c * M;
      if (sh >= 0) heap.copyWithin(row, from + sh, from + M);
      else heap.copyWithin(row - sh, from, from + M + sh);
      if (sh > 0) for (let b = 0; b < n; b++) heap.fill(0, row + b * L + L - sh, row + b * L + L);
      else if (sh < 0) for (let b = 0; b < n; b++) heap.fill(0, row + b * L, row + b * L - sh);
    }
  }
}

/** relu' and the bias gradient in one pass: d ← d·[out > 0], bias = Σ_rows d. */
export function reluBackwardSum(d: Float32Array, out: Float32Array, rows: number, cols: number, bias: Float32Array): void {
  bias.fill(0);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) {
      // Branch-free (+bool is 0 or 1): relu masks are half zeros at random, which a branch mispredicts.
      const v = d[o + c] * +(out[o + c] > 0);
      d[o + c] = v;
      bias[c] += v;
    }
  }
}

/** dst[c, r] = src[r, c] for an R×C matrix. */
export function transpose(src: Float32Array, R: number, C: number, dst: Float32Array, srcOff = 0): void {
  for (let r = 0; r < R; r++) {
    const s = srcOff + r * C;
    for (let c = 0; c < C; c++) dst[c * R + r] = src[s + c];
  }
}

export function sumRows(d: Float32Array, rows: number, cols: number, into: Float32Array): void {
  into.fill(0);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) into[c] += d[o + c];
  }
}

/**
 * Dropout masks, two per Rng draw (16 random bits each): the drop probability is rate rounded to 1/65536
 * (exact for 0.25 and other multiples of 2⁻¹⁶); kept units are scaled by 1/(1−rate) as in tfjs.
 */
export function fillDropoutMask(mask: Float32Array, size: number, rate: number, rng: Rng): void {
  if (rate <= 0) {
    mask.fill(1, 0, size);
    return;
  }
  const thr = Math.round(rate * 65536);
  const keep = 1 / (1 - rate);
  // A local mulberry32 stream seeded from the step's Rng: the same generator, without a method call per draw.
  let st = (rng.next() * 4294967296) >>> 0;
  for (let i = 0; i < size; i += 2) {
    st = (st + 0x6d2b79f5) | 0;
    let t = Math.imul(st ^ (st >>> 15), st | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = (t ^ (t >>> 14)) >>> 0;
    mask[i] = (r & 0xffff) >= thr ? keep : 0;
    if (i + 1 < size) mask[i + 1] = r >>> 16 >= thr ? keep : 0;
  }
}

/**
 * MaxPool1D(2,2) + dropout. Output row for (b, p) is b·P+p, or p·n+b when timeMajor. idx records the winning
 * input position (first strictly greater wins, as in tfjs); mask holds 0 or 1/(1−rate).
 */
export function poolDropout(
  src: Float32Array, n: number, L: number, C: number, dst: Float32Array, idx: Int32Array, mask: Float32Array,
  rate: number, rng: Rng, timeMajor: boolean,
): void {
  const P = L >> 1;
  fillDropoutMask(mask, n * P * C, rate, rng);
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < P; p++) {
      const o = (timeMajor ? p * n + b : b * P + p) * C;
      const i0 = (b * L + 2 * p) * C;
      const i1 = i0 + C;
      for (let c = 0; c < C; c++) {
        const a = src[i0 + c];
        const z = src[i1 + c];
        // Branch-free: the second input wins only when strictly greater.
        idx[o + c] = i0 + c + C * +(z > a);
        dst[o + c] = Math.max(a, z) * mask[o + c];
      }
    }
  }
}

export function poolDropoutBackward(d: Float32Array, size: number, idx: Int32Array, mask: Float32Array, dst: Float32Array, dstSize: number): void {
  dst.fill(0, 0, dstSize);
  for (let i = 0; i < size; i++) dst[idx[i]] += d[i] * mask[i];
}

