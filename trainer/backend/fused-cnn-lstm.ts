/**
 * The paper's CNN-LSTM trained without the tfjs engine: forward and backward written out by hand over typed
 * views of the wasm heap, the matrix products done by the backend's XNNPACK (wasm-gemm.ts), Adam in JS.
 * Through the engine one step is ~2,300 tiny kernels; here it is ~55 matmuls plus JS loops.
 *
 * The math is the model's exactly (test/trainer/backend-fused.test.ts compares outputs with model.predict and
 * gradients with tf.grad on the cpu backend). Layouts: activations are [batch·length, channels] row-major;
 * from the second pooling on, rows are time-major (t·n + b) so each LSTM step is one contiguous block.
 * Dropout masks come from a seeded Rng per step (the tape path reuses tfjs's fixed-seed masks instead).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../shared/random.ts';
import { Adam, type AdamState } from './adam.ts';
import type { Stepper, StepResult } from './stepper.ts';
import { WasmHeap, type HeapBuf } from './wasm-gemm.ts';
import { describeCnnLstm, type CnnLstmShape } from './fused-shape.ts';
import {
  im2colHeap, im2colTHeap, reluBackwardSum, transpose, sumRows, poolDropout, poolDropoutBackward,
} from './fused-ops.ts';

export { fillDropoutMask } from './fused-ops.ts';


/** Names of the trainable weights in model order, with the heap buffers that hold them. */
interface Param {
  v: tf.Variable;
  buf: HeapBuf;
  /** Gradient of the chunk just run, and the sum over the chunks of the batch. */
  grad: Float32Array;
  acc: Float32Array;
}

/**
 * Rows per forward/backward pass. Larger batches run as several chunks whose gradients add up (the model has no
 * batch statistics, so this is exact); it keeps the working set (~1 MB at 32 rows) in cache, where a 256-row
 * pass would stream ~8 MB column matrices through memory and run ~2× slower per sample.
 */
export const CHUNK_ROWS = 32;

/** Batches of at least this many rows are computed as two halves (see step); smaller ones in one piece. */
export const MIN_SPLIT_ROWS = 16;

/** The dropout seed of a batch's second half. */
export const splitSeed = (seed: number): number => (seed ^ 0x5bd1e995) >>> 0;

export class FusedCnnLstmStepper implements Stepper {
  readonly name = 'fused-wasm';
  private readonly h = new WasmHeap();
  private readonly chunk: number;
  private half: Float32Array | null = null;
  private readonly adam: Adam;
  private readonly p: Param[];
  // Scratch: heap buffers are matmul operands; JS arrays are touched by loops only.
  private readonly x0cols; private readonly A1; private readonly cols1; private readonly A2;
  private readonly cols2; private readonly A3; private readonly cols3; private readonly A4;
  private readonly D2; private readonly H; private readonly XP; private readonly hs; private readonly rec;
  private readonly dZ; private readonly dhRec; private readonly HprevT; private readonly HT; private readonly dH;
  private readonly D2T; private readonly dD2; private readonly dA; private readonly colsT; private readonly dWT;
  private readonly dCols; private readonly WT; private readonly WkT; private readonly UrT; private readonly WdT;
  private readonly dW; private readonly X0; private readonly srcT; private readonly D1; private readonly dD1; private readonly idx1: Int32Array; private readonly mask1: Float32Array;
  private readonly idx2: Int32Array; private readonly mask2: Float32Array; private readonly gates; private readonly zs; private readonly c2;
  private readonly cs: Float32Array; private readonly tcs: Float32Array; private readonly probs: Float32Array;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly s: CnnLstmShape,
    private readonly maxBatch: number,
    chunkRows = CHUNK_ROWS,
  ) {
    const { F, K, k, L1, L2, T, U1, U, C } = s;
    const Bm = Math.max(1, Math.min(maxBatch, chunkRows));
    this.chunk = Bm;
    const h = this.h;
    this.p = model.trainableWeights.map((w) => {
      const v = w.read() as tf.Variable;
      const buf = h.alloc(v.size);
      return { v, buf, grad: new Float32Array(v.size), acc: new Float32Array(v.size) };
    });
    this.adam = new Adam(this.p.map((q) => q.v.size));
    this.x0cols = h.alloc(Bm * F * k);
    this.A1 = h.alloc(Bm * L1 * K);
    this.cols1 = h.alloc(Bm * L1 * k * K);
    this.A2 = h.alloc(Bm * L1 * K);
    this.cols2 = h.alloc(Bm * L2 * k * K);
    this.A3 = h.alloc(Bm * L2 * K);
    this.cols3 = h.alloc(Bm * L2 * k * K);
    this.A4 = h.alloc(Bm * L2 * K);
    this.D2 = h.alloc(T * Bm * K);
    this.H = h.alloc(T * Bm * U1);
    this.XP = h.alloc(T * Bm * 4 * U);
    this.hs = h.alloc(T * Bm * U);
    this.rec = h.alloc(Bm * 4 * U);
    this.dZ = h.alloc(T * Bm * 4 * U);
    this.dhRec = h.alloc(Bm * U);
    this.HprevT = h.alloc(U * T * Bm);
    this.HT = h.alloc(U1 * T * Bm);
    this.dH = h.alloc(T * Bm * U1);
    this.D2T = h.alloc(K * T * Bm);
    this.dD2 = h.alloc(T * Bm * K);
    this.dA = h.alloc(Bm * L1 * K);
    this.colsT = h.alloc(Bm * L1 * k * K);
    this.dWT = h.alloc(K * k * K);
    this.dCols = h.alloc(Bm * L1 * k * K);
    this.WT = h.alloc(K * k * K);
    this.WkT = h.alloc(4 * U * U1);
    this.UrT = h.alloc(4 * U * U);
    this.WdT = h.alloc(U1 * K);
    this.dW = h.alloc(Math.max(U * 4 * U, U1 * 4 * U, K * U1));
    this.X0 = h.alloc(Bm * F);
    this.srcT = h.alloc(Bm * L1 * K);
    this.D1 = h.alloc(Bm * s.P1 * K);
    this.dD1 = h.alloc(Bm * s.P1 * K);
    this.idx1 = new Int32Array(Bm * s.P1 * K);
    this.mask1 = new Float32Array(Bm * s.P1 * K);
    this.idx2 = new Int32Array(T * Bm * K);
    this.mask2 = new Float32Array(T * Bm * K);
    this.gates = h.alloc(T * Bm * 4 * U);
    this.zs = h.alloc(Bm * 4 * U);
    this.c2 = h.alloc(Bm * U);
    this.cs = new Float32Array(T * Bm * U);
    this.tcs = new Float32Array(T * Bm * U);
    this.probs = new Float32Array(Bm * C);
    this.setWeights(this.p.map((q) => q.v.dataSync() as Float32Array));
  }

  /** Weight views in model order: conv1_1 k,b, conv1_2 k,b, conv2_1 k,b, conv2_2 k,b, dense k,b, lstm k,r,b, out k,b. */
  private w(i: number): Float32Array {
    return this.p[i].buf.v;
  }

  /**
   * One Adam step. A batch of ≥ MIN_SPLIT_ROWS rows is computed as two halves — rows [0, n−⌊n/2⌋) with `seed`,
   * the rest with splitSeed(seed) — summed as first + second: exactly what the two-thread step does with the
   * second half on a worker, so one and two threads give the same bits and may be switched freely.
   */
  step(x: Float32Array, y: Int32Array, w: Float32Array | null, n: number, lr: number, seed: number): StepResult {
    if (n > this.maxBatch) throw new Error(`fused step: batch of ${n} exceeds the ${this.maxBatch} it was sized for`);
    if (n < MIN_SPLIT_ROWS) {
      const r = this.accumulate(x, y, w, n, seed);
      this.applyGradients(null, lr);
      return r;
    }
    const F = this.s.F;
    const nm = n - (n >> 1);
    const second = this.accumulate(x.subarray(nm * F, n * F), y.subarray(nm, n), w ? w.subarray(nm, n) : null, n - nm, splitSeed(seed), n);
    if (!this.half || this.half.length !== this.size) this.half = new Float32Array(this.size);
    this.copyFlat('acc', this.half);
    const first = this.accumulate(x, y, w, nm, seed, n);
    this.applyGradients(this.half, lr);
    return { lossSum: first.lossSum + second.lossSum, correct: first.correct + second.correct };
  }

  /** Loss and gradients (model order, copies) without updating: what the tests compare with tf.grad. */
  lossAndGradients(x: Float32Array, y: Int32Array, w: Float32Array | null, n: number, seed: number): StepResult & { grads: Float32Array[] } {
    if (n > this.maxBatch) throw new Error(`fused step: batch of ${n} exceeds the ${this.maxBatch} it was sized for`);
    const r = this.accumulate(x, y, w, n, seed);
    return { ...r, grads: this.p.map((q) => q.acc.slice()) };
  }

  /**
   * For data-parallel steps: loss and gradient contribution of n rows of a batch of batchRows (the gradient is
   * scaled by 1/batchRows), left in the accumulators; applyGradients adds the other part and steps Adam.
   */
  partialGradients(x: Float32Array, y: Int32Array, w: Float32Array | null, n: number, batchRows: number, seed: number): StepResult {
    if (n > this.maxBatch) throw new Error(`fused step: batch of ${n} exceeds the ${this.maxBatch} it was sized for`);
    return this.accumulate(x, y, w, n, seed, batchRows);
  }

  /** acc += other (flat, model order) when given, then one Adam step with acc. */
  applyGradients(other: Float32Array | null, lr: number): void {
    if (other) {
      let at = 0;
      for (const q of this.p) {
        for (let i = 0; i < q.acc.length; i++) q.acc[i] += other[at + i];
        at += q.acc.length;
      }
    }
    this.h.refresh();
    this.adam.update(this.p.map((q) => q.buf.v), this.p.map((q) => q.acc), lr);
  }

  /** Number of trainable values (all weight arrays together). */
  get size(): number {
    return this.p.reduce((n, q) => n + q.acc.length, 0);
  }

  /** Copy weights to / from, or accumulated gradients to, one flat array in model order. */
  copyFlat(what: 'weights' | 'acc', dst: Float32Array): void {
    this.h.refresh();
    let at = 0;
    for (const q of this.p) {
      const src = what === 'weights' ? q.buf.v : q.acc;
      dst.set(src, at);
      at += src.length;
    }
  }

  setWeightsFlat(src: Float32Array): void {
    this.h.refresh();
    let at = 0;
    for (const q of this.p) {
      q.buf.v.set(src.subarray(at, at + q.buf.v.length));
      at += q.buf.v.length;
    }
  }

  /** Loss and gradient of mean_i w_i·CE_i over n rows, chunk by chunk; the sum lands in each param's acc. */
  private accumulate(x: Float32Array, y: Int32Array, w: Float32Array | null, n: number, seed: number, batchRows = n): StepResult {
    const F = this.s.F;
    let lossSum = 0;
    let correct = 0;
    for (let at = 0, chunk = 0; at < n; at += this.chunk, chunk++) {
      const m = Math.min(this.chunk, n - at);
      const r = this.forwardBackward(
        x.subarray(at * F, (at + m) * F), y.subarray(at, at + m), w ? w.subarray(at, at + m) : null, m, batchRows,
        chunk === 0 ? seed : (seed ^ Math.imul(chunk, 0x9e3779b1)) >>> 0,
      );
      lossSum += r.lossSum;
      correct += r.correct;
      for (const q of this.p) {
        if (chunk === 0) q.acc.set(q.grad);
        else for (let i = 0; i < q.acc.length; i++) q.acc[i] += q.grad[i];
      }
    }
    return { lossSum, correct };
  }

  /** Forward pass through the LSTM for n rows (dropout at `rate`; 0 at inference): fills A1 … hs. */
  private forward(x: Float32Array, n: number, rate: number, rng: Rng): void {
    const { s, h } = this;
    const { F, K, k, pad, L1, L2, T, U1, U, denseRelu } = s;
    const G = 4 * U;
    const kK = k * K;
    const P = this.p;
    h.refresh();
    // ---- forward ----
    const at = (b: HeapBuf) => b.ptr >> 2;
    this.X0.v.set(x.subarray(0, n * F));
    im2colHeap(h.f32, at(this.X0), at(this.x0cols), n, F, 1, k, pad);
    h.matmul(this.x0cols, 0, n * L1, k, P[0].buf, 0, K, this.A1, 0, P[1].buf, 1);
    im2colHeap(h.f32, at(this.A1), at(this.cols1), n, L1, K, k, pad);
    h.matmul(this.cols1, 0, n * L1, kK, P[2].buf, 0, K, this.A2, 0, P[3].buf, 1);
    poolDropout(this.A2.v, n, L1, K, this.D1.v, this.idx1, this.mask1, rate, rng, false);
    im2colHeap(h.f32, at(this.D1), at(this.cols2), n, L2, K, k, pad);
    h.matmul(this.cols2, 0, n * L2, kK, P[4].buf, 0, K, this.A3, 0, P[5].buf, 1);
    im2colHeap(h.f32, at(this.A3), at(this.cols3), n, L2, K, k, pad);
    h.matmul(this.cols3, 0, n * L2, kK, P[6].buf, 0, K, this.A4, 0, P[7].buf, 1);
    poolDropout(this.A4.v, n, L2, K, this.D2.v, this.idx2, this.mask2, rate, rng, true);
    h.matmul(this.D2, 0, T * n, K, P[8].buf, 0, U1, this.H, 0, P[9].buf, denseRelu ? 1 : 0);
    h.matmul(this.H, 0, T * n, U1, P[10].buf, 0, G, this.XP, 0, P[12].buf, 0);
    // Gate activations run through the backend's vectorised sigmoid (XNNPACK; ~8× JS Math.exp), with
    // tanh(x) = 2σ(2x) − 1 for the candidate and the cell output.
    const cs = this.cs;
    const tcs = this.tcs;
    const urId = h.pin(P[11].buf, U * G);
    for (let t = 0; t < T; t++) {
      if (t > 0) h.matmul(this.hs, (t - 1) * n * U, n, U, P[11].buf, 0, G, this.rec, 0, null, 0, urId);
      const XP = this.XP.v;
      const rec = this.rec.v;
      const zs = this.zs.v;
      const x0 = t * n * G;
      for (let b = 0; b < n; b++) {
        const zr = x0 + b * G;
        const rr = b * G;
        for (let j = 0; j < G; j++) zs[rr + j] = t > 0 ? XP[zr + j] + rec[rr + j] : XP[zr + j];
        for (let j = 2 * U; j < 3 * U; j++) zs[rr + j] *= 2;
      }
      h.sigmoid(this.zs, 0, this.gates, x0, n * G);
      const gates = this.gates.v;
      const c2 = this.c2.v;
      for (let b = 0; b < n; b++) {
        const zr = x0 + b * G;
        const cr = (t * n + b) * U;
        const pr = cr - n * U;
        for (let u = 0; u < U; u++) {
          const g = 2 * gates[zr + 2 * U + u] - 1;
          gates[zr + 2 * U + u] = g;
          const c = gates[zr + U + u] * (t > 0 ? cs[pr + u] : 0) + gates[zr + u] * g;
          cs[cr + u] = c;
          c2[b * U + u] = 2 * c;
        }
      }
      h.sigmoid(this.c2, 0, this.c2, 0, n * U);
      const sc = this.c2.v;
      const hs = this.hs.v;
      const gv = this.gates.v;
      for (let b = 0; b < n; b++) {
        const zr = x0 + b * G;
        const cr = (t * n + b) * U;
        for (let u = 0; u < U; u++) {
          const tc = 2 * sc[b * U + u] - 1;
          tcs[cr + u] = tc;
          hs[cr + u] = gv[zr + 3 * U + u] * tc;
        }
      }
    }
    h.unpin(urId);
  }

  /**
   * Class probabilities (rows×classes) with the stepper's current weights and no dropout: what model.predict
   * gives, without the engine (validation every epoch would otherwise cost a sizeable share of training).
   */
  predict(X: Float32Array, rows: number, out: Float32Array): void {
    const { F, U, C, T } = this.s;
    const noDropout = new Rng(1);
    for (let at = 0; at < rows; at += this.chunk) {
      const n = Math.min(this.chunk, rows - at);
      this.forward(X.subarray(at * F, (at + n) * F), n, 0, noDropout);
      const Wo = this.w(13);
      const bo = this.w(14);
      const hs = this.hs.v;
      const last = (T - 1) * n * U;
      for (let b = 0; b < n; b++) {
        const o = (at + b) * C;
        let mx = -Infinity;
        for (let c = 0; c < C; c++) {
          let z = bo[c];
          for (let u = 0; u < U; u++) z += hs[last + b * U + u] * Wo[u * C + c];
          out[o + c] = z;
          if (z > mx) mx = z;
        }
        let sum = 0;
        for (let c = 0; c < C; c++) sum += out[o + c] = Math.exp(out[o + c] - mx);
        for (let c = 0; c < C; c++) out[o + c] /= sum;
      }
    }
  }

  /** One chunk of n rows; the loss gradient is scaled by 1/batchRows (the whole batch's mean). */
  private forwardBackward(x: Float32Array, y: Int32Array, wts: Float32Array | null, n: number, batchRows: number, seed: number): StepResult {
    const { s, h } = this;
    const { F, K, k, pad, L1, L2, P1, T, U1, U, C, rate, denseRelu } = s;
    const G = 4 * U;
    const kK = k * K;
    const rng = new Rng(seed);
    const P = this.p;
    h.refresh();

    this.forward(x, n, rate, rng);
    const cs = this.cs;
    const tcs = this.tcs;
    // Output layer, softmax, loss and its gradient dlogits = w/n · (p − onehot).
    const Wo = this.w(13);
    const bo = this.w(14);
    const hs = this.hs.v;
    const last = (T - 1) * n * U;
    const probs = this.probs;
    const dlog = probs; // overwritten in place after the loss is read
    let lossSum = 0;
    let correct = 0;
    for (let b = 0; b < n; b++) {
      let mx = -Infinity;
      for (let c = 0; c < C; c++) {
        let z = bo[c];
        for (let u = 0; u < U; u++) z += hs[last + b * U + u] * Wo[u * C + c];
        probs[b * C + c] = z;
        if (z > mx) mx = z;
      }
      let sum = 0;
      for (let c = 0; c < C; c++) sum += probs[b * C + c] = Math.exp(probs[b * C + c] - mx);
      let arg = 0;
      for (let c = 0; c < C; c++) {
        probs[b * C + c] /= sum;
        if (probs[b * C + c] > probs[b * C + arg]) arg = c;
      }
      const yb = y[b];
      if (arg === yb) correct++;
      const wb = wts ? wts[b] : 1;
      lossSum -= wb * Math.log(Math.min(1, Math.max(1e-7, probs[b * C + yb])));
      for (let c = 0; c < C; c++) dlog[b * C + c] = (wb / batchRows) * (probs[b * C + c] - (c === yb ? 1 : 0));
    }

    // ---- backward ----
    const gWo = P[13].grad;
    const gbo = P[14].grad;
    gWo.fill(0);
    sumRows(dlog, n, C, gbo);
    const dh = this.dhRec.v;
    for (let b = 0; b < n; b++) {
      for (let u = 0; u < U; u++) {
        const hv = hs[last + b * U + u];
        let acc = 0;
        for (let c = 0; c < C; c++) {
          const d = dlog[b * C + c];
          gWo[u * C + c] += hv * d;
          acc += d * Wo[u * C + c];
        }
        dh[b * U + u] = acc;
      }
    }
    transpose(this.w(11), U, G, this.UrT.v);
    const urtId = h.pin(this.UrT, G * U);
    const dcNext = new Float32Array(n * U);
    for (let t = T - 1; t >= 0; t--) {
      const dZ = this.dZ.v;
      const dhv = this.dhRec.v;
      const hsv = this.hs.v;
      for (let b = 0; b < n; b++) {
        const zr = (t * n + b) * G;
        const cr = (t * n + b) * U;
        for (let u = 0; u < U; u++) {
          const gates = this.gates.v;
          const i = gates[zr + u];
          const f = gates[zr + U + u];
          const g = gates[zr + 2 * U + u];
          const o = gates[zr + 3 * U + u];
          const tc = tcs[cr + u];
          const dhu = dhv[b * U + u];
          const dc = dcNext[b * U + u] + dhu * o * (1 - tc * tc);
          const cPrev = t > 0 ? cs[cr - n * U + u] : 0;
          dZ[zr + u] = dc * g * i * (1 - i);
          dZ[zr + U + u] = dc * cPrev * f * (1 - f);
          dZ[zr + 2 * U + u] = dc * i * (1 - g * g);
          dZ[zr + 3 * U + u] = dhu * tc * o * (1 - o);
          dcNext[b * U + u] = dc * f;
        }
      }
      void hsv;
      if (t > 0) h.matmul(this.dZ, t * n * G, n, G, this.UrT, 0, U, this.dhRec, 0, null, 0, urtId);
    }
    h.unpin(urtId);
    // Recurrent kernel: Σ_t h_{t−1}ᵀ dZ_t over t ≥ 1; input kernel: Hᵀ dZ; bias: Σ dZ.
    const TN = T * n;
    if (T > 1) {
      transpose(this.hs.v, (T - 1) * n, U, this.HprevT.v);
      h.matmul(this.HprevT, 0, U, (T - 1) * n, this.dZ, n * G, G, this.dW, 0);
      P[11].grad.set(this.dW.v.subarray(0, U * G));
    } else {
      P[11].grad.fill(0);
    }
    transpose(this.H.v, TN, U1, this.HT.v);
    h.matmul(this.HT, 0, U1, TN, this.dZ, 0, G, this.dW, 0);
    P[10].grad.set(this.dW.v.subarray(0, U1 * G));
    sumRows(this.dZ.v, TN, G, P[12].grad);
    transpose(this.w(10), U1, G, this.WkT.v);
    h.matmul(this.dZ, 0, TN, G, this.WkT, 0, U1, this.dH, 0);
    if (denseRelu) reluBackwardSum(this.dH.v, this.H.v, TN, U1, P[9].grad);
    else sumRows(this.dH.v, TN, U1, P[9].grad);
    transpose(this.D2.v, TN, K, this.D2T.v);
    h.matmul(this.D2T, 0, K, TN, this.dH, 0, U1, this.dW, 0);
    P[8].grad.set(this.dW.v.subarray(0, K * U1));
    transpose(this.w(8), K, U1, this.WdT.v);
    h.matmul(this.dH, 0, TN, U1, this.WdT, 0, K, this.dD2, 0);
    // Second block: pool/dropout back, then conv2_2 and conv2_1.
    poolDropoutBackward(this.dD2.v, TN * K, this.idx2, this.mask2, this.dA.v, n * L2 * K);
    this.convBackward(this.A3, this.A4, n, L2, 6, 7, K, this.dA);
    this.convBackward(this.D1, this.A3, n, L2, 4, 5, K, this.dD1);
    // First block.
    poolDropoutBackward(this.dD1.v, n * P1 * K, this.idx1, this.mask1, this.dA.v, n * L1 * K);
    this.convBackward(this.A1, this.A2, n, L1, 2, 3, K, this.dA);
    this.convBackward(this.X0, this.A1, n, L1, 0, 1, 1, null);

    return { lossSum, correct };
  }

  /**
   * Backward through one conv layer (input `src` [n·L, cin], post-relu output `out`), with dL/dout in this.dA:
   * relu', bias and kernel gradients (dW = colsᵀ · dA, colsᵀ as the many-row operand: XNNPACK is slow when
   * the packed operand is the big one), and unless dx is null, dL/dinput = im2col(dA) · W flipped, into dx.
   */
  private convBackward(src: HeapBuf, out: HeapBuf, n: number, L: number, wi: number, bi: number, cin: number, dx: HeapBuf | null): void {
    const { h } = this;
    const { K, k, pad } = this.s;
    const M = n * L;
    const kC = k * cin;
    const at = (b: HeapBuf) => b.ptr >> 2;
    reluBackwardSum(this.dA.v, out.v, M, K, this.p[bi].grad);
    let srcT = src;
    if (cin > 1) {
      transpose(src.v, M, cin, this.srcT.v);
      srcT = this.srcT;
    }
    im2colTHeap(h.f32, at(srcT), at(this.colsT), n, L, cin, k, pad);
    h.matmul(this.colsT, 0, kC, M, this.dA, 0, K, this.dWT, 0);
    this.p[wi].grad.set(this.dWT.v.subarray(0, kC * K));
    if (!dx) return;
    // W is [k, cin, K]; the flipped filter is [(j, co), ci] = W[k−1−j, ci, co].
    const W = this.w(wi);
    const Wf = this.WT.v;
    for (let j = 0; j < k; j++) {
      for (let co = 0; co < K; co++) {
        const row = (j * K + co) * cin;
        const src0 = (k - 1 - j) * cin * K + co;
        for (let ci = 0; ci < cin; ci++) Wf[row + ci] = W[src0 + ci * K];
      }
    }
    im2colHeap(h.f32, at(this.dA), at(this.dCols), n, L, K, k, pad);
    h.matmul(this.dCols, 0, M, k * K, this.WT, 0, cin, dx, 0);
  }

  syncToModel(): void {
    this.h.refresh();
    tf.tidy(() => this.p.forEach((q) => q.v.assign(tf.tensor(q.buf.v.slice(), q.v.shape))));
  }

  getWeights(): Float32Array[] {
    this.h.refresh();
    return this.p.map((q) => q.buf.v.slice());
  }

  setWeights(ws: readonly Float32Array[]): void {
    this.h.refresh();
    this.p.forEach((q, i) => q.buf.v.set(ws[i]));
  }

  getOptimizerState(): AdamState {
    return this.adam.getState();
  }

  setOptimizerState(st: AdamState): void {
    this.adam.setState(st);
  }

  dispose(): void {
    this.h.dispose();
  }
}

/** The fused stepper when the model is buildCnnLstm's architecture and the wasm backend is active, else null. */
export function createFusedStepper(model: tf.LayersModel, features: number, classes: number, batchSize: number): Stepper | null {
  if (tf.getBackend() !== 'wasm') return null;
  const shape = describeCnnLstm(model, features, classes);
  if (!shape) return null;
  return new FusedCnnLstmStepper(model, shape, batchSize);
}
