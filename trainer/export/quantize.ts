/**
 * Static int8 quantization of an fp32 ONNX graph in QDQ form (QuantizeLinear → DequantizeLinear pairs), the
 * form onnxruntime's graph optimiser turns into integer kernels (QLinearConv, QLinearMatMul / MatMulIntegerToFloat,
 * QGemm) on any runtime, including onnxruntime-web.
 *
 * - Activations: uint8, asymmetric, one scale per tensor, from calibrated ranges (always including 0, so that
 *   zero padding and ReLU's floor are exact). The output of a Conv (after its ReLU) is quantized too, which is
 *   what lets the optimiser fuse DQ→Conv→Q into QLinearConv and drop the ReLU into the quantization clamp.
 * - Pass-through ops (MaxPool, Transpose, Squeeze, Reshape) reuse their input's scale, so they run on uint8.
 * - Weights: int8, symmetric (zero point 0), per output channel; biases: int32 at scale x_scale·w_scale.
 * - LSTM: 'fp32' keeps it as is; 'int8-weights' stores W and R as int8 with DequantizeLinear (a smaller file,
 *   fp32 compute); 'dynamic' uses com.microsoft DynamicQuantizeLSTM (int8 weights, inputs quantized per step).
 */
import { IdsError } from '../../shared/errors.ts';
import {
  DataType,
  MS_DOMAIN,
  attr,
  decodeModel,
  dimsOf,
  encodeModel,
  tensor,
  tensorValues,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './onnx-model.ts';
import type { RangeTable } from './calibrate.ts';

export type LstmMode = 'fp32' | 'int8-weights' | 'dynamic';

export interface QuantizeOptions {
  ranges: RangeTable;
  lstm?: LstmMode;
  /** Per-output-channel weight scales (default true). */
  perChannel?: boolean;
  /** Names of Conv/MatMul/Gemm nodes to leave in fp32 (e.g. the first conv, whose input is the raw scaled features). */
  keepFp32?: readonly string[];
}

export interface QParams {
  scale: number;
  zeroPoint: number;
}

const PASS_THROUGH = new Set(['MaxPool', 'Transpose', 'Squeeze', 'Reshape', 'Flatten', 'Identity']);
const WEIGHTED = new Set(['Conv', 'MatMul', 'Gemm']);

/** uint8 asymmetric parameters for a range (widened to include 0). */
export function activationParams(r: { min: number; max: number }): QParams {
  const lo = Math.min(0, r.min);
  const hi = Math.max(0, r.max);
  const scale = hi - lo > 0 ? (hi - lo) / 255 : 1;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** int8 symmetric quantization of `w` with `channels` groups along `axis` of `dims` (channels = 1: per tensor). */
export function quantizeWeights(
  w: Float32Array,
  dims: readonly number[],
  axis: number,
  perChannel: boolean,
): { q: Int8Array; scales: Float32Array } {
  const channels = perChannel ? dims[axis] : 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const chanOf = (i: number) => (perChannel ? Math.floor(i / inner) % dims[axis] : 0);
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) {
    const c = chanOf(i);
    const a = Math.abs(w[i]);
    if (a > maxAbs[c]) maxAbs[c] = a;
  }
  const scales = maxAbs.map((m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i] / scales[chanOf(i)])));
  return { q, scales };
}

/** The activation tensors whose ranges quantization needs (calibrate these). */
export function quantizableTensors(model: ModelProto): string[] {
  const g = model.graph!;
  const inits = new Set(g.initializer!.map((t) => t.name!));
  const consumers = consumerMap(g.node!);
  const out = new Set<string>();
  for (const n of g.node!) {
    if (!WEIGHTED.has(n.opType!)) continue;
    if (!inits.has(n.input![0])) out.add(n.input![0]);
    if (n.opType === 'Conv') out.add(convOutputEnd(n, consumers));
  }
  return [...out];
}

function consumerMap(nodes: NodeProto[]): Map<string, NodeProto[]> {
  const m = new Map<string, NodeProto[]>();
  for (const n of nodes) for (const i of n.input ?? []) if (i) m.set(i, [...(m.get(i) ?? []), n]);
  return m;
}

/** A Conv's output, or its ReLU's when the ReLU is its only consumer (the fused QLinearConv clamps at 0). */
function convOutputEnd(conv: NodeProto, consumers: Map<string, NodeProto[]>): string {
  const c = consumers.get(conv.output![0]) ?? [];
  return c.length === 1 && c[0].opType === 'Relu' ? c[0].output![0] : conv.output![0];
}

export function quantizeQdq(fp32: ModelProto, opts: QuantizeOptions): ModelProto {
  const model = decodeModel(encodeModel(fp32));
  const g = model.graph!;
  const perChannel = opts.perChannel ?? true;
  const lstmMode = opts.lstm ?? 'fp32';
  const keep = new Set(opts.keepFp32 ?? []);
  const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
  const consumers = consumerMap(g.node!);
  const graphOutputs = new Set(g.output!.map((o) => o.name!));
  const newInits: TensorProto[] = [];
  const used = new Set<string>([...g.node!.flatMap((n) => [...(n.input ?? []), ...(n.output ?? [])]), ...inits.keys()]);
  const fresh = (base: string) => {
    let n = base;
    for (let i = 1; used.has(n); i++) n = `${base}_${i}`;
    used.add(n);
    return n;
  };
  const init = (base: string, dims: number[], data: Float32Array | Int8Array | Uint8Array | Int32Array) => {
    const name = fresh(base);
    newInits.push(tensor(name, dims, data));
    return name;
  };
  const weightOf = (name: string, node: NodeProto): Float32Array => {
    const t = inits.get(name);
    if (!t || t.dataType !== DataType.FLOAT) throw new IdsError('BAD_MODEL', `quantize: ${node.name}: ${name} is not an fp32 initializer`);
    return tensorValues(t) as Float32Array;
  };
  const range = (t: string): QParams => {
    const r = opts.ranges[t];
    if (!r) throw new IdsError('BAD_MODEL', `quantize: no calibrated range for tensor ${t}`);
    return activationParams(r);
  };

  // 1. Which activation tensors get a Q/DQ pair, and with which parameters (topological order).
  const qp = new Map<string, QParams>();
  for (const n of g.node!) {
    const op = n.opType!;
    if (PASS_THROUGH.has(op) && qp.has(n.input![0]) && !graphOutputs.has(n.output![0])) {
      qp.set(n.output![0], qp.get(n.input![0])!);
    } else if (WEIGHTED.has(op) && !keep.has(n.name!)) {
      const x = n.input![0];
      if (!inits.has(x) && !qp.has(x)) qp.set(x, range(x));
      if (op === 'Conv') {
        const end = convOutputEnd(n, consumers);
        if (!graphOutputs.has(end)) qp.set(end, range(end));
      }
    }
  }

  // 2. Rewrite: weights to int8 + DequantizeLinear, activations followed by Q/DQ, consumers read the DQ output.
  const rename = new Map<string, string>(); // activation → its DQ output
  const pairs = new Map<string, NodeProto[]>(); // tensor → [Q, DQ] to insert after its producer
  const scaleInits = new Map<string, [string, string]>();
  const qpInits = (p: QParams): [string, string] => {
    const key = `${p.scale}/${p.zeroPoint}`;
    let v = scaleInits.get(key);
    if (!v) {
      v = [init('q_scale', [], new Float32Array([p.scale])), init('q_zp', [], new Uint8Array([p.zeroPoint]))];
      scaleInits.set(key, v);
    }
    return v;
  };
  for (const [t, p] of qp) {
    const [s, z] = qpInits(p);
    const q = fresh(`${t}_q`);
    const dq = fresh(`${t}_dq`);
    pairs.set(t, [
      { opType: 'QuantizeLinear', name: fresh(`${t}_QuantizeLinear`), input: [t, s, z], output: [q] },
      { opType: 'DequantizeLinear', name: fresh(`${t}_DequantizeLinear`), input: [q, s, z], output: [dq] },
    ]);
    rename.set(t, dq);
  }

  const dqWeight = (name: string, node: NodeProto, axis: number, pre: NodeProto[]): { out: string; scales: Float32Array } => {
    const t = inits.get(name)!;
    const dims = dimsOf(t);
    const { q, scales } = quantizeWeights(weightOf(name, node), dims, axis, perChannel);
    const qn = init(`${name}_int8`, dims, q);
    const sn = init(`${name}_scale`, perChannel ? [scales.length] : [], scales);
    const zn = init(`${name}_zp`, perChannel ? [scales.length] : [], new Int8Array(scales.length));
    const out = fresh(`${name}_dq`);
    pre.push({
      opType: 'DequantizeLinear',
      name: fresh(`${name}_DequantizeLinear`),
      input: [qn, sn, zn],
      output: [out],
      attribute: perChannel ? [attr('axis', axis)] : [],
    });
    return { out, scales };
  };
  const dqBias = (name: string, node: NodeProto, xScale: number, wScales: Float32Array, pre: NodeProto[]): string => {
    const b = weightOf(name, node);
    const n = b.length;
    const scales = Float32Array.from({ length: n }, (_, c) => xScale * wScales[wScales.length === 1 ? 0 : c]);
    const q = Int32Array.from(b, (v, c) => Math.max(-(2 ** 31) + 1, Math.min(2 ** 31 - 1, Math.round(v / scales[c]))));
    const qn = init(`${name}_int32`, [n], q);
    const perC = wScales.length > 1;
    const sn = init(`${name}_scale`, perC ? [n] : [], perC ? scales : scales.subarray(0, 1));
    const zn = init(`${name}_zp`, perC ? [n] : [], new Int32Array(perC ? n : 1));
    const out = fresh(`${name}_dq`);
    pre.push({
      opType: 'DequantizeLinear',
      name: fresh(`${name}_DequantizeLinear`),
      input: [qn, sn, zn],
      output: [out],
      attribute: perC ? [attr('axis', 0)] : [],
    });
    return out;
  };

  const nodes: NodeProto[] = [];
  let needsMs = false;
  for (const t of g.input!) if (pairs.has(t.name!)) nodes.push(...pairs.get(t.name!)!);
  for (const n0 of g.node!) {
    const n: NodeProto = { ...n0, input: (n0.input ?? []).map((i) => rename.get(i) ?? i) };
    const pre: NodeProto[] = [];
    const op = n.opType!;
    if ((op === 'Conv' || op === 'MatMul' || op === 'Gemm') && !keep.has(n0.name!)) {
      const xq = qp.get(n0.input![0]);
      const wName = n0.input![1];
      if (!inits.has(wName)) throw new IdsError('BAD_MODEL', `quantize: ${n.name}: weight ${wName} is not a constant`);
      if (op === 'Gemm' && n.attribute?.some((a) => (a.name === 'transA' || a.name === 'transB') && Number(a.i) !== 0)) {
        throw new IdsError('BAD_MODEL', `quantize: ${n.name}: transposed Gemm inputs are not handled`);
      }
      // Conv weights [out, in, k] scale per axis 0; MatMul/Gemm weights [in, out] per axis 1.
      const { out, scales } = dqWeight(wName, n0, op === 'Conv' ? 0 : 1, pre);
      n.input![1] = out;
      const bIdx = op === 'Conv' ? 2 : op === 'Gemm' ? 2 : -1;
      if (bIdx > 0 && n0.input![bIdx] && xq) n.input![bIdx] = dqBias(n0.input![bIdx], n0, xq.scale, scales, pre);
    } else if (op === 'LSTM' && lstmMode !== 'fp32') {
      if (lstmMode === 'int8-weights') {
        // W [1, 4H, in], R [1, 4H, H]: one scale per gate row (axis 1).
        n.input![1] = dqWeight(n0.input![1], n0, 1, pre).out;
        n.input![2] = dqWeight(n0.input![2], n0, 1, pre).out;
      } else {
        nodes.push(...pre);
        nodes.push(dynamicLstm(n, inits, init, weightOf, perChannel));
        needsMs = true;
        continue;
      }
    }
    nodes.push(...pre, n);
    for (const o of n.output ?? []) if (pairs.has(o)) nodes.push(...pairs.get(o)!);
  }

  // Drop fp32 initializers nothing reads any more.
  const read = new Set(nodes.flatMap((n) => n.input ?? []));
  g.initializer = [...g.initializer!.filter((t) => read.has(t.name!)), ...newInits];
  g.node = nodes;
  if (needsMs && !model.opsetImport!.some((o) => o.domain === MS_DOMAIN)) model.opsetImport!.push({ domain: MS_DOMAIN, version: 1 });
  model.docString = `${model.docString ?? ''} | int8 QDQ (uint8 activations, int8 ${perChannel ? 'per-channel' : 'per-tensor'} weights, LSTM ${lstmMode})`;
  return model;
}

/**
 * com.microsoft DynamicQuantizeLSTM: weights int8 with layout [D, in, 4H] / [D, H, 4H] (transposed relative to
 * ONNX LSTM), scales per gate column, zero points 0; X stays float and is quantized per step by the kernel.
 */
function dynamicLstm(
  n: NodeProto,
  inits: Map<string, TensorProto>,
  init: (base: string, dims: number[], data: Float32Array | Int8Array) => string,
  weightOf: (name: string, node: NodeProto) => Float32Array,
  perChannel: boolean,
): NodeProto {
  const conv = (name: string) => {
    const [d, rows4, cols] = dimsOf(inits.get(name)!);
    if (d !== 1) throw new IdsError('BAD_MODEL', `quantize: ${n.name}: only forward LSTMs are handled`);
    const w = weightOf(name, n);
    const t = new Float32Array(w.length); // [rows4, cols] → [cols, rows4]
    for (let r = 0; r < rows4; r++) for (let c = 0; c < cols; c++) t[c * rows4 + r] = w[r * cols + c];
    const { q, scales } = quantizeWeights(t, [1, cols, rows4], 2, perChannel);
    return {
      q: init(`${name}_int8t`, [1, cols, rows4], q),
      s: init(`${name}_scale`, perChannel ? [1, rows4] : [1], scales),
      z: init(`${name}_zp`, perChannel ? [1, rows4] : [1], new Int8Array(scales.length)),
    };
  };
  const W = conv(n.input![1]);
  const R = conv(n.input![2]);
  const ins = n.input!;
  return {
    ...n,
    opType: 'DynamicQuantizeLSTM',
    domain: MS_DOMAIN,
    input: [ins[0], W.q, R.q, ins[3] ?? '', ins[4] ?? '', ins[5] ?? '', ins[6] ?? '', ins[7] ?? '', W.s, W.z, R.s, R.z],
  };
}

export const quantizedBytes = (m: ModelProto): Uint8Array => encodeModel(m);
