/**
 * Small helpers over the ONNX protobuf schema (onnx-proto's generated protobufjs code): tensors, attributes,
 * value infos, a graph builder that names things uniquely, and encode/decode of ModelProto.
 */
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;

export const DataType = onnx.TensorProto.DataType;
/** Opset 17 is the newest the ONNX 1.12 reference checker (Debian's python3-onnx) knows; it needs IR version 8. */
export const OPSET = 17;
export const IR_VERSION = 8;
export const MS_DOMAIN = 'com.microsoft';

export type TensorData = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

function dataTypeOf(data: TensorData): number {
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof Int8Array) return DataType.INT8;
  if (data instanceof Uint8Array) return DataType.UINT8;
  if (data instanceof Int32Array) return DataType.INT32;
  return DataType.INT64;
}

/** A tensor with its values in raw_data (little-endian, which every platform we run on is). */
export function tensor(name: string, dims: readonly number[], data: TensorData): TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new Error(`tensor ${name}: dims [${dims}] hold ${n} values, got ${data.length}`);
  return onnx.TensorProto.create({
    name,
    dims: [...dims],
    dataType: dataTypeOf(data),
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
  });
}

/** The values of an initializer as a typed array (raw_data or the typed repeated fields). */
export function tensorValues(t: TensorProto): TensorData {
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const copy = (bytes: Uint8Array) => {
    const b = new Uint8Array(bytes.byteLength);
    b.set(bytes);
    return b.buffer;
  };
  switch (t.dataType) {
    case DataType.FLOAT:
      return raw ? new Float32Array(copy(raw)) : Float32Array.from(t.floatData ?? []);
    case DataType.INT8:
      return raw ? new Int8Array(copy(raw)) : Int8Array.from((t.int32Data ?? []) as number[]);
    case DataType.UINT8:
      return raw ? new Uint8Array(copy(raw)) : Uint8Array.from((t.int32Data ?? []) as number[]);
    case DataType.INT32:
      return raw ? new Int32Array(copy(raw)) : Int32Array.from((t.int32Data ?? []) as number[]);
    case DataType.INT64:
      return raw
        ? new BigInt64Array(copy(raw))
        : BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(v.toString())));
    default:
      throw new Error(`tensor ${t.name}: data type ${t.dataType} not handled`);
  }
}

export const dimsOf = (t: TensorProto): number[] => (t.dims ?? []).map((d) => Number(d));

type AttrValue = number | string | number[] | string[] | { float: number } | { floats: number[] };

/** Integers become INT(S); pass {float} / {floats} for FLOAT(S) (a JS number cannot say which it is). */
export function attr(name: string, v: AttrValue): AttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: A.INT, i: v };
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) {
      return { name, type: A.STRINGS, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) };
    }
    return { name, type: A.INTS, ints: v as number[] };
  }
  if ('float' in v) return { name, type: A.FLOAT, f: v.float };
  return { name, type: A.FLOATS, floats: v.floats };
}

/** A float tensor value info; a string dim is symbolic (dim_param), e.g. the dynamic batch. */
export function valueInfo(name: string, dims?: readonly (number | string)[], elemType: number = DataType.FLOAT): ValueInfoProto {
  const shape = dims
    ? { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) }
    : undefined;
  return { name, type: { tensorType: { elemType, shape } } };
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private used = new Set<string>();

  constructor(readonly name: string) {}

  /** A name not used before in this graph: `base`, then `base_1`, `base_2`, ... */
  unique(base: string): string {
    let n = base;
    for (let i = 1; this.used.has(n); i++) n = `${base}_${i}`;
    this.used.add(n);
    return n;
  }

  input(name: string, dims: readonly (number | string)[]): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, dims));
    return name;
  }

  output(name: string, dims?: readonly (number | string)[]): void {
    this.outputs.push(valueInfo(name, dims));
  }

  init(base: string, dims: readonly number[], data: TensorData): string {
    const name = this.unique(base);
    this.initializers.push(tensor(name, dims, data));
    return name;
  }

  /** Adds a node; returns its output names (fresh unique names from `outBase` unless `outputs` are given). */
  node(
    op: string,
    inputs: string[],
    opts: { name?: string; outputs?: string[]; nOut?: number; attrs?: AttributeProto[]; domain?: string } = {},
  ): string[] {
    const nodeName = this.unique(opts.name ?? op);
    const outs = opts.outputs ?? Array.from({ length: opts.nOut ?? 1 }, (_, i) => this.unique(`${nodeName}_out${i === 0 ? '' : i}`));
    for (const o of outs) this.used.add(o);
    this.nodes.push({ opType: op, name: nodeName, input: inputs, output: outs, attribute: opts.attrs ?? [], domain: opts.domain });
    return outs;
  }

  /** Single-output shorthand. */
  op(op: string, inputs: string[], opts: Parameters<GraphBuilder['node']>[2] = {}): string {
    return this.node(op, inputs, opts)[0];
  }

  graph(): GraphProto {
    return { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs };
  }
}

export function modelProto(
  graph: GraphProto,
  opts: { producer?: string; docString?: string; msOpset?: number; metadata?: Record<string, string> } = {},
): ModelProto {
  const opsetImport = [{ domain: '', version: OPSET }];
  if (opts.msOpset) opsetImport.push({ domain: MS_DOMAIN, version: opts.msOpset });
  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport,
    producerName: opts.producer ?? 'iot-ids',
    producerVersion: '0.1.0',
    docString: opts.docString,
    graph,
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
}

export const encodeModel = (m: ModelProto): Uint8Array => onnx.ModelProto.encode(m).finish();
export const decodeModel = (bytes: Uint8Array): ModelProto => onnx.ModelProto.decode(bytes);

/** A short summary for tests and reports: op type → count. */
export function opCounts(m: ModelProto): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of m.graph?.node ?? []) {
    const k = (n.domain ? n.domain + ':' : '') + n.opType;
    c[k] = (c[k] ?? 0) + 1;
  }
  return c;
}
