/**
 * The inverse of export/onnx-export.ts + export/quantize.ts for the paper's CNN-LSTM: the float weights of a
 * shipped ONNX graph (fp32, or int8 QDQ as bundles carry it) put back into the tfjs layers of the same
 * architecture, so training can continue from the model hubs run.
 *
 * Where each weight is (quantize.ts): Conv W [out, in, k] (int8 per output channel, or fp32 when the first conv
 * is kept in float), bias int32 at x_scale·w_scale; Gemm W [in, out] (int8 per column), bias int32; the LSTM as
 * com.microsoft DynamicQuantizeLSTM with W [1, in, 4H] / R [1, H, 4H] int8 per gate column and the fp32 bias
 * [1, 8H], or as a plain ONNX LSTM with W [1, 4H, in] / R [1, 4H, H] (fp32 or through DequantizeLinear). Gates are
 * in ONNX order i, o, f, c; Keras keeps i, f, c, o. Every int8 value times its scale is exactly the weight the
 * int8 model computes with, so the rebuilt tfjs model differs from the int8 model only by activation rounding.
 */
import * as tf from '@tensorflow/tfjs';
import { IdsError } from '../../shared/errors.ts';
import { buildCnnLstm, type CnnLstmConfig } from '../model/cnn-lstm.ts';
import { decodeModel, dimsOf, tensorValues, type ModelProto, type NodeProto, type TensorProto } from '../export/onnx-model.ts';

/** Keras gate block kg sits at ONNX block ONNX_OF_KERAS[kg] (inverse of onnx-export.ts's KERAS_TO_ONNX_GATES). */
const ONNX_OF_KERAS = [0, 2, 3, 1];

interface Weight {
  dims: number[];
  data: Float32Array;
}

const bad = (what: string) => new IdsError('BAD_MODEL', `ONNX weights: ${what}`);

/** Float values of graph constants: initializers, and DequantizeLinear of initializers, resolved on demand. */
class Constants {
  private readonly inits: Map<string, TensorProto>;
  private readonly producers = new Map<string, NodeProto>();
  constructor(model: ModelProto) {
    const g = model.graph!;
    this.inits = new Map(g.initializer!.map((t) => [t.name!, t]));
    for (const n of g.node!) for (const o of n.output ?? []) this.producers.set(o, n);
  }

  raw(name: string): { dims: number[]; data: ArrayLike<number> } {
    const t = this.inits.get(name);
    if (!t) throw bad(`${name} is not an initializer`);
    const v = tensorValues(t);
    if (v instanceof BigInt64Array) throw bad(`${name} is int64`);
    return { dims: dimsOf(t), data: v };
  }

  /** The float value of `name`: an fp32 initializer or a DequantizeLinear of initializers. */
  float(name: string): Weight {
    if (this.inits.has(name)) {
      const r = this.raw(name);
      if (!(r.data instanceof Float32Array)) throw bad(`${name} is not float (${r.data.constructor.name})`);
      return { dims: r.dims, data: r.data };
    }
    const p = this.producers.get(name);
    if (!p || p.opType !== 'DequantizeLinear') throw bad(`${name} is neither an initializer nor a DequantizeLinear of one`);
    const [x, s, z] = p.input!;
    const axisAttr = p.attribute?.find((a) => a.name === 'axis');
    const q = this.raw(x);
    const scale = this.raw(s).data;
    const zp = z ? this.raw(z).data : undefined;
    return { dims: q.dims, data: dequantize(q.data, q.dims, scale, zp, axisAttr ? Number(axisAttr.i) : 1) };
  }
}

/** (q − zp) · scale, per tensor (one scale) or per channel along `axis`. */
export function dequantize(q: ArrayLike<number>, dims: number[], scale: ArrayLike<number>, zp: ArrayLike<number> | undefined, axis: number): Float32Array {
  const out = new Float32Array(q.length);
  if (scale.length === 1) {
    const z = zp ? zp[0] : 0;
    for (let i = 0; i < q.length; i++) out[i] = (q[i] - z) * scale[0];
    return out;
  }
  const ax = axis < 0 ? axis + dims.length : axis;
  const inner = dims.slice(ax + 1).reduce((a, b) => a * b, 1);
  const n = dims[ax];
  if (scale.length !== n) throw bad(`per-channel scale has ${scale.length} entries, axis ${ax} has ${n}`);
  for (let i = 0; i < q.length; i++) {
    const c = Math.floor(i / inner) % n;
    out[i] = (q[i] - (zp ? zp[c] : 0)) * scale[c];
  }
  return out;
}

/** A DynamicQuantizeLSTM weight [1, rows, 4H] int8 with per-column scales [1, 4H] (or one) → float [rows, 4H]. */
function dynamicLstmWeight(c: Constants, q: string, s: string, z: string | undefined): Weight {
  const w = c.raw(q);
  const scale = c.raw(s).data;
  const zp = z ? c.raw(z).data : undefined;
  const [, rows, cols] = w.dims;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < cols; k++) {
      const j = scale.length === 1 ? 0 : k;
      out[r * cols + k] = (w.data[r * cols + k] - (zp ? zp[j] : 0)) * scale[j];
    }
  }
  return { dims: [rows, cols], data: out };
}

/** [rows, 4H] with ONNX gate blocks along columns → Keras gate order. */
function kerasGatesColumns(w: Float32Array, rows: number, H: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) {
    for (let kg = 0; kg < 4; kg++) {
      const og = ONNX_OF_KERAS[kg];
      for (let h = 0; h < H; h++) out[r * 4 * H + kg * H + h] = w[r * 4 * H + og * H + h];
    }
  }
  return out;
}

/** [1, 4H, cols] (ONNX LSTM layout) → [cols, 4H], still in ONNX gate order. */
function transposeGateRows(w: Weight): Float32Array {
  const [, rows4, cols] = w.dims;
  const out = new Float32Array(rows4 * cols);
  for (let r = 0; r < rows4; r++) for (let c = 0; c < cols; c++) out[c * rows4 + r] = w.data[r * cols + c];
  return out;
}

export interface OnnxCnnLstm {
  config: CnnLstmConfig;
  /** tfjs weight name suffix (layer/role) → values in tfjs layout. */
  weights: Map<string, Float32Array>;
}

const nodeNamed = (nodes: NodeProto[], name: string, ops: string[]): NodeProto => {
  const n = nodes.find((x) => x.name === name && ops.includes(x.opType!));
  if (!n) throw bad(`no ${ops.join('/')} node named ${name} (not a CNN-LSTM exported by iot-ids?)`);
  return n;
};

/** Reads the CNN-LSTM's weights and shape parameters out of an exported ONNX graph. */
export function readCnnLstmWeights(bytes: Uint8Array): OnnxCnnLstm {
  let model: ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (e) {
    throw new IdsError('BAD_MODEL', `ONNX weights: cannot decode the model (${(e as Error).message})`, { cause: e });
  }
  const g = model.graph!;
  const nodes = g.node!;
  const c = new Constants(model);
  const weights = new Map<string, Float32Array>();
  const input = g.input![0];
  const inDims = input.type?.tensorType?.shape?.dim ?? [];
  const features = Number(inDims[1]?.dimValue ?? NaN);
  if (!(features >= 4)) throw bad(`input ${input.name} has no static feature dimension`);

  let filters = 0;
  let kernelSize = 0;
  for (const layer of ['conv1_1', 'conv1_2', 'conv2_1', 'conv2_2']) {
    const n = nodeNamed(nodes, layer, ['Conv']);
    const W = c.float(n.input![1]);
    const [cout, cin, k] = W.dims;
    // Keras K[t][i][o] = ONNX W[o][i][t].
    const K = new Float32Array(W.data.length);
    for (let t = 0; t < k; t++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) K[(t * cin + i) * cout + o] = W.data[(o * cin + i) * k + t];
    weights.set(`${layer}/kernel`, K);
    weights.set(`${layer}/bias`, n.input![2] ? c.float(n.input![2]).data : new Float32Array(cout));
    filters = cout;
    kernelSize = k;
  }

  const dense = nodeNamed(nodes, 'dense', ['Gemm', 'MatMul']);
  const dW = c.float(dense.input![1]);
  const denseUnits = dW.dims[1];
  weights.set('dense/kernel', dW.data);
  weights.set('dense/bias', dense.input![2] ? c.float(dense.input![2]).data : new Float32Array(denseUnits));
  // The exporter names the activation node after the layer; quantization turns a Relu into a Max of bytes.
  const denseActivation = nodes.some((n) => n.name === 'dense_relu') ? 'relu' : 'linear';

  const lstm = nodeNamed(nodes, 'lstm', ['LSTM', 'DynamicQuantizeLSTM']);
  const H = Number(lstm.attribute?.find((a) => a.name === 'hidden_size')?.i ?? NaN);
  if (!(H > 0)) throw bad('the LSTM has no hidden_size');
  let kernel: Float32Array;
  let rec: Float32Array;
  let cin: number;
  if (lstm.opType === 'DynamicQuantizeLSTM') {
    const ins = lstm.input!;
    const Wq = dynamicLstmWeight(c, ins[1], ins[8], ins[9]);
    const Rq = dynamicLstmWeight(c, ins[2], ins[10], ins[11]);
    cin = Wq.dims[0];
    kernel = Wq.data;
    rec = Rq.data;
  } else {
    const Wf = c.float(lstm.input![1]);
    cin = Wf.dims[2];
    kernel = transposeGateRows(Wf);
    rec = transposeGateRows(c.float(lstm.input![2]));
  }
  weights.set('lstm/kernel', kerasGatesColumns(kernel, cin, H));
  weights.set('lstm/recurrent_kernel', kerasGatesColumns(rec, H, H));
  const B = lstm.input![3] ? c.float(lstm.input![3]).data : new Float32Array(8 * H);
  const bias = new Float32Array(4 * H);
  for (let kg = 0; kg < 4; kg++) {
    const og = ONNX_OF_KERAS[kg];
    for (let h = 0; h < H; h++) bias[kg * H + h] = B[og * H + h] + B[4 * H + og * H + h];
  }
  weights.set('lstm/bias', bias);

  const out = nodeNamed(nodes, 'probabilities', ['Gemm', 'MatMul']);
  const oW = c.float(out.input![1]);
  const classes = oW.dims[1];
  weights.set('probabilities/kernel', oW.data);
  let oB: Float32Array | undefined;
  if (out.input![2]) oB = c.float(out.input![2]).data;
  else {
    const add = nodes.find((n) => n.name === 'probabilities_bias' && n.opType === 'Add');
    if (add) oB = c.float(add.input![1]).data;
  }
  weights.set('probabilities/bias', oB ?? new Float32Array(classes));

  return { config: { features, classes, filters, kernelSize, denseUnits, denseActivation, lstmUnits: H }, weights };
}

/** A tfjs CNN-LSTM carrying the ONNX graph's weights (dequantized when the graph is int8). */
export function cnnLstmFromOnnx(bytes: Uint8Array, seed = 1): tf.LayersModel {
  const { config, weights } = readCnnLstmWeights(bytes);
  const model = buildCnnLstm({ ...config, seed });
  const values = model.weights.map((w) => {
    const key = w.name.split('/').slice(-2).join('/').replace(/_\d+$/, '');
    const v = weights.get(key);
    if (!v) throw bad(`no value for tfjs weight ${w.name}`);
    const n = (w.shape as number[]).reduce((a, b) => a * b, 1);
    if (v.length !== n) throw bad(`tfjs weight ${w.name} [${w.shape}] needs ${n} values, the ONNX graph gives ${v.length}`);
    return tf.tensor(v, w.shape as number[]);
  });
  model.setWeights(values);
  values.forEach((t) => t.dispose());
  return model;
}
