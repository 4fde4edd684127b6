/**
 * Kernels the tfjs wasm backend lacks or runs slowly for training the CNN-LSTM, registered over the stock ones.
 * They work on the wasm heap directly (typed views) and hand the heavy part to the backend's own XNNPACK
 * matmul, so a Conv1D backward pass becomes one im2col/col2im loop plus one matmul.
 *
 * Every fill is checked against the cpu backend in test/trainer/backend-kernels.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';

/** The slice of the wasm backend's class that the fills use (it is not exported with types we can import). */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

type Args = { inputs: NamedTensorInfoMap; backend: unknown; attrs?: Record<string, unknown> };

/** The stock wasm kernels we call from inside the fills, captured before anything is replaced. */
interface Stock {
  batchMatMul: KernelFunc;
  transpose: KernelFunc;
}
let stock: Stock | null = null;

const f32 = (b: WasmBackendLike, t: TensorInfo): Float32Array => b.typedArrayFromHeap(t) as Float32Array;

/** C[M,N] = A[M,K] · B[K,N] through the backend's matmul; A and B are freshly made heap tensors we own. */
function matmul(backend: WasmBackendLike, a: TensorInfo, b: TensorInfo): TensorInfo {
  const out = stock!.batchMatMul({
    inputs: { a, b },
    backend: backend as never,
    attrs: { transposeA: false, transposeB: false },
  }) as TensorInfo;
  return out;
}

function conv2DInfo(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
): tf.backend_util.Conv2DInfo {
  const dataFormat = (attrs.dataFormat as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC';
  if (dataFormat !== 'NHWC') throw new Error(`wasm conv fill: only NHWC is supported, got ${dataFormat}`);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as [number, number] | number,
    1,
    attrs.pad as 'same' | 'valid' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
}

/**
 * dW = im2col(x)ᵀ · dy. The im2col is written already transposed ([fh·fw·C, N·oh·ow]) so the matmul needs no
 * transpose flag (the wasm backend's transposed matmul is slow).
 */
function conv2DBackpropFilter({ inputs, backend, attrs }: Args): TensorInfo {
  const b = backend as WasmBackendLike;
  const x = inputs.x as TensorInfo;
  const dy = inputs.dy as TensorInfo;
  const filterShape = attrs!.filterShape as number[];
  const ci = conv2DInfo(x.shape, filterShape, attrs!);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = ci;
  const padT = ci.padInfo.top;
  const padL = ci.padInfo.left;
  const M = N * OH * OW;
  const K = FH * FW * C;
  const cols = b.makeOutput([K, M], 'float32');
  const dy2 = { dataId: dy.dataId, shape: [M, ci.outChannels], dtype: 'float32' as const };
  const colsV = f32(b, cols);
  const xV = f32(b, x);
  // Row k = (i, j, c) of the transposed im2col holds x[n, oh*SH-padT+i, ow*SW-padL+j, c] for every output m.
  for (let i = 0; i < FH; i++) {
    for (let j = 0; j < FW; j++) {
      for (let c = 0; c < C; c++) {
        const row = ((i * FW + j) * C + c) * M;
        let m = 0;
        for (let n = 0; n < N; n++) {
          for (let oh = 0; oh < OH; oh++) {
            const ih = oh * SH - padT + i;
            if (ih < 0 || ih >= H) {
              colsV.fill(0, row + m, row + m + OW);
              m += OW;
              continue;
            }
            const base = (n * H + ih) * W;
            for (let ow = 0; ow < OW; ow++, m++) {
              const iw = ow * SW - padL + j;
              colsV[row + m] = iw < 0 || iw >= W ? 0 : xV[(base + iw) * C + c];
            }
          }
        }
      }
    }
  }
  const out = matmul(b, cols, dy2);
  b.disposeData(cols.dataId);
  return { dataId: out.dataId, shape: filterShape, dtype: 'float32' };
}

/** dx = col2im(dy · Wᵀ): one matmul to the column gradients, then a scatter-add back onto the input grid. */
function conv2DBackpropInput({ inputs, backend, attrs }: Args): TensorInfo {
  const b = backend as WasmBackendLike;
  const dy = inputs.dy as TensorInfo;
  const filter = inputs.filter as TensorInfo;
  const inputShape = attrs!.inputShape as number[];
  const ci = conv2DInfo(inputShape, filter.shape, attrs!);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW, outChannels: CO } = ci;
  const padT = ci.padInfo.top;
  const padL = ci.padInfo.left;
  const M = N * OH * OW;
  const K = FH * FW * C;
  // Wᵀ as [CO, K] (the filter is [FH, FW, C, CO] = [K, CO] row-major); small, so transposed in JS.
  const wT = b.makeOutput([CO, K], 'float32');
  {
    const wV = f32(b, filter);
    const tV = f32(b, wT);
    for (let k = 0; k < K; k++) for (let o = 0; o < CO; o++) tV[o * K + k] = wV[k * CO + o];
  }
  const dy2 = { dataId: dy.dataId, shape: [M, CO], dtype: 'float32' as const };
  const dcols = matmul(b, dy2, wT); // [M, K]
  b.disposeData(wT.dataId);
  const dx = b.makeOutput(inputShape, 'float32');
  const dxV = f32(b, dx);
  const dcV = f32(b, dcols);
  dxV.fill(0);
  let m = 0;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, m++) {
        const src = m * K;
        for (let i = 0; i < FH; i++) {
          const ih = oh * SH - padT + i;
          if (ih < 0 || ih >= H) continue;
          for (let j = 0; j < FW; j++) {
            const iw = ow * SW - padL + j;
            if (iw < 0 || iw >= W) continue;
            const dst = ((n * H + ih) * W + iw) * C;
            const s = src + (i * FW + j) * C;
            for (let c = 0; c < C; c++) dxV[dst + c] += dcV[s + c];
          }
        }
      }
    }
  }
  b.disposeData(dcols.dataId);
  return dx;
}

/** Gradient of max pooling: each output's gradient goes to the first strictly largest input of its window (as on cpu). */
function maxPoolGrad({ inputs, backend, attrs }: Args): TensorInfo {
  const b = backend as WasmBackendLike;
  const dy = inputs.dy as TensorInfo;
  const x = inputs.input as TensorInfo;
  const ci = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs!.filterSize as [number, number] | number,
    attrs!.strides as [number, number] | number,
    1,
    attrs!.pad as 'same' | 'valid' | number,
    attrs!.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = ci;
  const padT = ci.padInfo.top;
  const padL = ci.padInfo.left;
  const dx = b.makeOutput(x.shape, 'float32');
  const dxV = f32(b, dx);
  const xV = f32(b, x);
  const dyV = f32(b, dy);
  dxV.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      const h0 = Math.max(0, oh * SH - padT);
      const h1 = Math.min(H, oh * SH - padT + FH);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = Math.max(0, ow * SW - padL);
        const w1 = Math.min(W, ow * SW - padL + FW);
        const dyBase = ((n * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let at = -1;
          for (let ih = h0; ih < h1; ih++) {
            for (let iw = w0; iw < w1; iw++) {
              const p = ((n * H + ih) * W + iw) * C + c;
              if (xV[p] > best) {
                best = xV[p];
                at = p;
              }
            }
          }
          if (at >= 0) dxV[at] += dyV[dyBase + c];
        }
      }
    }
  }
  return dx;
}

/**
 * The wasm BatchMatMul runs XNNPACK only for untransposed operands with one batch; with a transpose flag it falls
 * back to a naive strided loop. Transposing first (one cheap copy) keeps every matmul of a backward pass fast.
 */
function batchMatMul({ inputs, backend, attrs }: Args): TensorInfo {
  const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
  let a = inputs.a as TensorInfo;
  let b = inputs.b as TensorInfo;
  if (!transposeA && !transposeB) {
    return stock!.batchMatMul({ inputs: { a, b }, backend: backend as never, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
  }
  const swapLast = (t: TensorInfo): TensorInfo => {
    const r = t.shape.length;
    const perm = [...Array(r).keys()];
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return stock!.transpose({ inputs: { x: t }, backend: backend as never, attrs: { perm } }) as TensorInfo;
  };
  const made: TensorInfo[] = [];
  if (transposeA) made.push((a = swapLast(a)));
  if (transposeB) made.push((b = swapLast(b)));
  const out = stock!.batchMatMul({ inputs: { a, b }, backend: backend as never, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
  for (const t of made) (backend as WasmBackendLike).disposeData(t.dataId);
  return out;
}

/** Kernel names this module registers on 'wasm'. */
export const FILLED_KERNELS = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'BatchMatMul'] as const;

/** Register the fills on the wasm backend (idempotent). Call after the wasm backend is registered. */
export function registerWasmFills(): void {
  if (stock === null) {
    const bmm = tf.getKernel('BatchMatMul', 'wasm');
    if (!bmm) throw new Error('wasm backend kernels are not registered; import @tensorflow/tfjs-backend-wasm first');
    stock = { batchMatMul: bmm.kernelFunc, transpose: tf.getKernel('Transpose', 'wasm')!.kernelFunc };
  }
  const fills: Record<(typeof FILLED_KERNELS)[number], (a: Args) => TensorInfo> = {
    Conv2DBackpropFilter: conv2DBackpropFilter,
    Conv2DBackpropInput: conv2DBackpropInput,
    MaxPoolGrad: maxPoolGrad,
    BatchMatMul: batchMatMul,
  };
  for (const [kernelName, fn] of Object.entries(fills)) {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: fn as unknown as KernelFunc });
  }
}
