/**
 * TensorFlow.js LayersModel → ONNX (opset 17). No maintained converter exists for tfjs, so this walks the
 * layers of a linear model and emits the equivalent ONNX ops, with weights converted to ONNX layouts.
 *
 * Layout: tfjs 1-D data is NWC (batch, steps, channels). ONNX Conv/MaxPool want NCW and ONNX LSTM wants
 * WNC (steps, batch, channels). Rather than transposing back to NWC after every layer, the exporter tracks the
 * current physical axis order and inserts a Transpose only when the next op needs another one. A per-step
 * Dense is a Gemm over the rows of the last axis, so it runs in whatever layout has channels last (WNC before
 * an LSTM).
 */
import type * as tf from '@tensorflow/tfjs';
import { IdsError } from '../../shared/errors.ts';
import { GraphBuilder, attr, encodeModel, modelProto, OPSET, type ModelProto } from './onnx-model.ts';

export interface OnnxExportOptions {
  inputName?: string;
  outputName?: string;
  /** Symbolic name of the dynamic batch dimension. */
  batchDim?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export interface OnnxExport {
  model: ModelProto;
  bytes: Uint8Array;
  inputName: string;
  outputName: string;
  /** [-1, steps, channels] as the bundle manifest records it. */
  inputShape: [number, number, number];
  outputShape: [number, number];
  opset: number;
}

/** Physical axis order as logical axes: 0 = batch N, 1 = steps W, 2 = channels C. */
type Layout = readonly [number, number, number];
const NWC: Layout = [0, 1, 2];
const NCW: Layout = [0, 2, 1];
const WNC: Layout = [1, 0, 2];

/** A tensor flowing through the export: its name, its rank (2 or 3), its layout and its static logical shape. */
interface Flow {
  name: string;
  rank: 2 | 3;
  layout: Layout;
  /** Logical static shape without batch: [steps, channels] for rank 3, [features] for rank 2. */
  shape: number[];
}

const sameLayout = (a: Layout, b: Layout) => a[0] === b[0] && a[1] === b[1] && a[2] === b[2];

interface LayerWeights {
  [role: string]: { shape: number[]; data: Float32Array };
}

function weightsOf(layer: tf.layers.Layer): LayerWeights {
  const out: LayerWeights = {};
  for (const w of layer.weights) {
    // Names look like "conv1_1/kernel", "lstm/recurrent_kernel"; the role is the last segment (tfjs may add "_1").
    const role = w.name.split('/').pop()!.replace(/_\d+$/, '');
    out[role] = { shape: [...w.shape] as number[], data: w.read().dataSync() as Float32Array };
  }
  return out;
}

const need = (layer: tf.layers.Layer, w: LayerWeights, role: string) => {
  const v = w[role];
  if (!v) throw new IdsError('BAD_MODEL', `layer ${layer.name} (${layer.getClassName()}): no ${role} weight`);
  return v;
};

const bad = (layer: tf.layers.Layer, what: string) =>
  new IdsError('BAD_MODEL', `layer ${layer.name} (${layer.getClassName()}): ${what} is not supported by the ONNX exporter`);

/** Transposes [rows, cols] (row-major) to [cols, rows]. */
function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/** Keras gate blocks i, f, c, o (each H wide along `axisLen`-strided rows) → ONNX i, o, f, c. */
const KERAS_TO_ONNX_GATES = [0, 3, 1, 2];

class Exporter {
  readonly g: GraphBuilder;
  constructor(name: string) {
    this.g = new GraphBuilder(name);
  }

  /** int64 initializer. */
  i64(base: string, values: number[]): string {
    return this.g.init(base, [values.length], BigInt64Array.from(values, (v) => BigInt(v)));
  }

  toLayout(x: Flow, target: Layout): Flow {
    if (x.rank !== 3 || sameLayout(x.layout, target)) return x;
    const perm = target.map((axis) => x.layout.indexOf(axis));
    const name = this.g.op('Transpose', [x.name], { name: `to_${layoutName(target)}`, attrs: [attr('perm', perm)] });
    return { ...x, name, layout: target };
  }

  activation(layer: tf.layers.Layer, x: string, act: string | undefined, rank: number): string {
    const base = layer.name;
    switch (act ?? 'linear') {
      case 'linear':
        return x;
      case 'relu':
        return this.g.op('Relu', [x], { name: `${base}_relu` });
      case 'sigmoid':
        return this.g.op('Sigmoid', [x], { name: `${base}_sigmoid` });
      case 'tanh':
        return this.g.op('Tanh', [x], { name: `${base}_tanh` });
      case 'softmax':
        return this.g.op('Softmax', [x], { name: `${base}_softmax`, attrs: [attr('axis', rank - 1)] });
      case 'hardSigmoid':
        // tfjs' hardSigmoid is clip(0.2x + 0.5, 0, 1), which is ONNX HardSigmoid with these constants.
        return this.g.op('HardSigmoid', [x], {
          name: `${base}_hardsigmoid`,
          attrs: [attr('alpha', { float: 0.2 }), attr('beta', { float: 0.5 })],
        });
      default:
        throw bad(layer, `activation "${act}"`);
    }
  }

  conv1d(layer: tf.layers.Layer, x: Flow): Flow {
    const c = layer.getConfig() as Record<string, any>;
    if (x.rank !== 3) throw bad(layer, 'a rank-2 input');
    if (c.dataFormat && c.dataFormat !== 'channelsLast') throw bad(layer, `dataFormat ${c.dataFormat}`);
    const w = weightsOf(layer);
    const kernel = need(layer, w, 'kernel');
    const [k, cin, cout] = kernel.shape;
    const stride = arr(c.strides)[0] ?? 1;
    const dil = arr(c.dilationRate)[0] ?? 1;
    const steps = x.shape[0];
    // ONNX W[o][i][t] = Keras K[t][i][o].
    const W = new Float32Array(cout * cin * k);
    for (let t = 0; t < k; t++)
      for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) W[(o * cin + i) * k + t] = kernel.data[(t * cin + i) * cout + o];
    const span = (k - 1) * dil + 1;
    let pads: [number, number];
    let outSteps: number;
    if (c.padding === 'valid') {
      pads = [0, 0];
      outSteps = Math.floor((steps - span) / stride) + 1;
    } else if (c.padding === 'same') {
      outSteps = Math.ceil(steps / stride);
      const total = Math.max((outSteps - 1) * stride + span - steps, 0);
      pads = [Math.floor(total / 2), total - Math.floor(total / 2)]; // TF puts the odd one at the end
    } else if (c.padding === 'causal') {
      pads = [span - 1, 0];
      outSteps = Math.floor((steps + span - 1 - span) / stride) + 1;
    } else throw bad(layer, `padding ${c.padding}`);
    const inp = this.toLayout(x, NCW);
    const inputs = [inp.name, this.g.init(`${layer.name}.W`, [cout, cin, k], W)];
    if (c.useBias !== false) inputs.push(this.g.init(`${layer.name}.B`, [cout], need(layer, w, 'bias').data));
    let y = this.g.op('Conv', inputs, {
      name: layer.name,
      attrs: [attr('kernel_shape', [k]), attr('strides', [stride]), attr('dilations', [dil]), attr('pads', pads), attr('group', 1)],
    });
    y = this.activation(layer, y, c.activation, 3);
    return { name: y, rank: 3, layout: NCW, shape: [outSteps, cout] };
  }

  /**
   * A [.., in] → [.., out] layer applied to every row of a rank-3 tensor, as Reshape → Gemm (+bias) → activation →
   * Reshape: Gemm carries its bias, so onnxruntime fuses the int8 form into one QGemm with a uint8 output (a
   * MatMul + Add becomes MatMulIntegerToFloat plus a float Add, ReLU and QuantizeLinear, each a pass over memory).
   */
  rowGemm(
    layer: tf.layers.Layer,
    x: string,
    W: Float32Array,
    cin: number,
    units: number,
    bias: Float32Array | undefined,
    act: string | undefined,
    outShape: number[],
  ): string {
    const rows = this.g.op('Reshape', [x, this.i64(`${layer.name}.rows`, [-1, cin])], { name: `${layer.name}_rows` });
    const ins = [rows, this.g.init(`${layer.name}.W`, [cin, units], W)];
    if (bias) ins.push(this.g.init(`${layer.name}.B`, [units], bias));
    const y = this.activation(layer, this.g.op('Gemm', ins, { name: layer.name }), act, 2);
    return this.g.op('Reshape', [y, this.i64(`${layer.name}.shape`, outShape)], { name: `${layer.name}_steps` });
  }

  pool1d(layer: tf.layers.Layer, x: Flow, op: 'MaxPool' | 'AveragePool'): Flow {
    const c = layer.getConfig() as Record<string, any>;
    if (x.rank !== 3) throw bad(layer, 'a rank-2 input');
    const k = arr(c.poolSize)[0];
    const s = arr(c.strides)[0] ?? k;
    const steps = x.shape[0];
    let pads: [number, number] = [0, 0];
    let outSteps = Math.floor((steps - k) / s) + 1;
    if (c.padding === 'same') {
      outSteps = Math.ceil(steps / s);
      const total = Math.max((outSteps - 1) * s + k - steps, 0);
      pads = [Math.floor(total / 2), total - Math.floor(total / 2)];
      // TF's same-padded average pooling excludes the padding from the mean; ONNX's default does too.
    } else if (c.padding !== 'valid') throw bad(layer, `padding ${c.padding}`);
    const inp = this.toLayout(x, NCW);
    const y = this.g.op(op, [inp.name], {
      name: layer.name,
      attrs: [attr('kernel_shape', [k]), attr('strides', [s]), attr('pads', pads)],
    });
    return { name: y, rank: 3, layout: NCW, shape: [outSteps, x.shape[1]] };
  }

  dense(layer: tf.layers.Layer, x: Flow): Flow {
    const c = layer.getConfig() as Record<string, any>;
    const w = weightsOf(layer);
    const kernel = need(layer, w, 'kernel');
    const [cin, units] = kernel.shape;
    if (x.rank === 2) {
      const B = c.useBias !== false ? this.g.init(`${layer.name}.B`, [units], need(layer, w, 'bias').data) : undefined;
      // Gemm computes A·B + C in one op.
      const Wn = this.g.init(`${layer.name}.W`, [cin, units], kernel.data);
      let y = this.g.op(B ? 'Gemm' : 'MatMul', B ? [x.name, Wn, B] : [x.name, Wn], { name: layer.name });
      y = this.activation(layer, y, c.activation, 2);
      return { name: y, rank: 2, layout: NWC, shape: [units] };
    }
    // Per time step: a product on the last axis, so any layout with channels last will do.
    const inp = x.layout[2] === 2 ? x : this.toLayout(x, WNC);
    if (c.activation !== 'softmax') {
      const stepsAxis = inp.layout.indexOf(1);
      const outShape = stepsAxis === 1 ? [-1, x.shape[0], units] : [x.shape[0], -1, units];
      const bias = c.useBias !== false ? need(layer, w, 'bias').data : undefined;
      const y = this.rowGemm(layer, inp.name, kernel.data, cin, units, bias, c.activation, outShape);
      return { name: y, rank: 3, layout: inp.layout, shape: [x.shape[0], units] };
    }
    const B = c.useBias !== false ? this.g.init(`${layer.name}.B`, [units], need(layer, w, 'bias').data) : undefined;
    const Wn = this.g.init(`${layer.name}.W`, [cin, units], kernel.data);
    let y = this.g.op('MatMul', [inp.name, Wn], { name: `${layer.name}_matmul` });
    if (B) y = this.g.op('Add', [y, B], { name: `${layer.name}_bias` });
    if (c.activation === 'softmax') y = this.g.op('Softmax', [y], { name: `${layer.name}_softmax`, attrs: [attr('axis', 2)] });
    else y = this.activation(layer, y, c.activation, 3);
    return { name: y, rank: 3, layout: inp.layout, shape: [x.shape[0], units] };
  }

  lstm(layer: tf.layers.Layer, x: Flow): Flow {
    const c = layer.getConfig() as Record<string, any>;
    if (x.rank !== 3) throw bad(layer, 'a rank-2 input');
    if (c.stateful) throw bad(layer, 'stateful: true');
    if (c.goBackwards) throw bad(layer, 'goBackwards: true');
    if ((c.activation ?? 'tanh') !== 'tanh') throw bad(layer, `activation "${c.activation}" (only tanh)`);
    // ONNX LSTM's HardSigmoid defaults (0.2, 0.5) equal tfjs', but activation_alpha/beta are positional over all
    // three activations and runtimes disagree on defaults; refuse rather than risk a silent mismatch.
    if ((c.recurrentActivation ?? 'hardSigmoid') !== 'sigmoid') {
      throw bad(layer, `recurrentActivation "${c.recurrentActivation ?? 'hardSigmoid'}" (set recurrentActivation: 'sigmoid')`);
    }
    const w = weightsOf(layer);
    const kernel = need(layer, w, 'kernel'); // [in, 4H]
    const rec = need(layer, w, 'recurrent_kernel'); // [H, 4H]
    const H = c.units as number;
    const cin = kernel.shape[0];
    const reorder = (src: Float32Array, rows: number): Float32Array => {
      // src is [rows, 4H] (Keras); result is [4H, rows] with gate blocks in ONNX order.
      const t = transpose2d(src, rows, 4 * H);
      const out = new Float32Array(t.length);
      KERAS_TO_ONNX_GATES.forEach((kg, og) => out.set(t.subarray(kg * H * rows, (kg + 1) * H * rows), og * H * rows));
      return out;
    };
    const Bk = new Float32Array(8 * H);
    if (c.useBias !== false) {
      const b = need(layer, w, 'bias').data;
      KERAS_TO_ONNX_GATES.forEach((kg, og) => Bk.set(b.subarray(kg * H, (kg + 1) * H), og * H));
    }
    const inp = this.toLayout(x, WNC);
    const outs = this.g.node(
      'LSTM',
      [
        inp.name,
        this.g.init(`${layer.name}.W`, [1, 4 * H, cin], reorder(kernel.data, cin)),
        this.g.init(`${layer.name}.R`, [1, 4 * H, H], reorder(rec.data, H)),
        this.g.init(`${layer.name}.B`, [1, 8 * H], Bk),
      ],
      {
        name: layer.name,
        nOut: 2,
        attrs: [
          attr('hidden_size', H),
          attr('direction', 'forward'),
          attr('activations', ['Sigmoid', 'Tanh', 'Tanh']),
        ],
      },
    );
    const [Y, Yh] = outs;
    if (c.returnSequences) {
      // Y is [T, 1, N, H]: drop the direction axis → WNC.
      const axes = this.g.init(`${layer.name}.axes`, [1], new BigInt64Array([1n]));
      const y = this.g.op('Squeeze', [Y, axes], { name: `${layer.name}_seq` });
      return { name: y, rank: 3, layout: WNC, shape: [x.shape[0], H] };
    }
    const axes = this.g.init(`${layer.name}.axes`, [1], new BigInt64Array([0n]));
    const y = this.g.op('Squeeze', [Yh, axes], { name: `${layer.name}_last` });
    return { name: y, rank: 2, layout: NWC, shape: [H] };
  }

  flatten(layer: tf.layers.Layer, x: Flow): Flow {
    if (x.rank === 2) return x;
    const inp = this.toLayout(x, NWC);
    const shape = this.g.init(`${layer.name}.shape`, [2], new BigInt64Array([0n, -1n]));
    const y = this.g.op('Reshape', [inp.name, shape], { name: layer.name });
    return { name: y, rank: 2, layout: NWC, shape: [x.shape[0] * x.shape[1]] };
  }
}

const arr = (v: unknown): number[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v as number]);
const layoutName = (l: Layout) => (sameLayout(l, NCW) ? 'ncw' : sameLayout(l, WNC) ? 'wnc' : 'nwc');

/** The model's layers in order, checking it is a single chain (each layer fed by the one before). */
function chain(model: tf.LayersModel): tf.layers.Layer[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new IdsError('BAD_MODEL', `model ${model.name}: the exporter handles one input and one output`);
  }
  const layers = model.layers;
  for (let i = 1; i < layers.length; i++) {
    const from = layers[i].inboundNodes.flatMap((n) => n.inboundLayers);
    if (from.length !== 1 || from[0] !== layers[i - 1]) {
      throw new IdsError('BAD_MODEL', `layer ${layers[i].name}: the exporter handles a single chain of layers only`);
    }
  }
  return layers;
}

/** Exports a tfjs model with input [batch, steps, channels] to an ONNX ModelProto (and its bytes). */
export function exportOnnx(model: tf.LayersModel, opts: OnnxExportOptions = {}): OnnxExport {
  const inputName = opts.inputName ?? 'flow_features';
  const outputName = opts.outputName ?? 'probabilities';
  const batch = opts.batchDim ?? 'N';
  const layers = chain(model);
  const inShape = model.inputs[0].shape;
  if (inShape.length !== 3 || typeof inShape[1] !== 'number' || typeof inShape[2] !== 'number') {
    throw new IdsError('BAD_MODEL', `model ${model.name}: input shape [${inShape}] is not [batch, steps, channels]`);
  }
  const [, steps, channels] = inShape as [null, number, number];
  const ex = new Exporter(model.name);
  let x: Flow = { name: ex.g.input(inputName, [batch, steps, channels]), rank: 3, layout: NWC, shape: [steps, channels] };

  for (const layer of layers) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as Record<string, any>;
    switch (cls) {
      case 'InputLayer':
        break;
      case 'Dropout':
      case 'SpatialDropout1D':
      case 'GaussianNoise':
      case 'GaussianDropout':
      case 'AlphaDropout':
        break; // identity at inference
      case 'Conv1D':
        x = ex.conv1d(layer, x);
        break;
      case 'MaxPooling1D':
        x = ex.pool1d(layer, x, 'MaxPool');
        break;
      case 'AveragePooling1D':
        x = ex.pool1d(layer, x, 'AveragePool');
        break;
      case 'Dense':
        x = ex.dense(layer, x);
        break;
      case 'LSTM':
        x = ex.lstm(layer, x);
        break;
      case 'Flatten':
        x = ex.flatten(layer, x);
        break;
      case 'Activation': {
        const y = ex.activation(layer, x.name, cfg.activation, x.rank);
        x = { ...x, name: y };
        if (cfg.activation === 'softmax' && x.rank === 3 && x.layout[2] !== 2) throw bad(layer, 'softmax over a non-channel axis');
        break;
      }
      default:
        throw new IdsError('BAD_MODEL', `layer ${layer.name}: layer type ${cls} is not supported by the ONNX exporter`);
    }
  }
  x = ex.toLayout(x, NWC);
  // Name the final tensor as the graph output: an Identity keeps the name stable whatever the last op was.
  ex.g.node('Identity', [x.name], { name: 'output', outputs: [outputName] });
  const outDims = x.rank === 2 ? [batch, x.shape[0]] : [batch, x.shape[0], x.shape[1]];
  ex.g.output(outputName, outDims);
  const m = modelProto(ex.g.graph(), {
    docString: opts.docString ?? `Exported from TensorFlow.js model "${model.name}" by iot-ids`,
    metadata: opts.metadata,
  });
  if (x.rank !== 2) throw new IdsError('BAD_MODEL', `model ${model.name}: expected a [batch, classes] output, got rank ${x.rank}`);
  return {
    model: m,
    bytes: encodeModel(m),
    inputName,
    outputName,
    inputShape: [-1, steps, channels],
    outputShape: [-1, x.shape[0]],
    opset: OPSET,
  };
}
