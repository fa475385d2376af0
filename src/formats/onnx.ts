// ONNX ModelProto ⇄ Graph. The writer is a direct mapping (our Graph follows ONNX semantics); it is
// deterministic: the same Graph gives the same bytes (no timestamps, metadata in sorted order).
// Models whose weights would pass protobuf's 2 GiB limit keep their initializers in a side file
// (ONNX external data), which is also available on request.

import type OnnxProto from 'onnx-proto';
import { onnxProto } from './onnx-proto.js';
import { InputError, UnsupportedError } from '../errors.js';
import type { Attr, Dim, Graph, Node, ValueInfo } from '../graph/graph.js';
import { BYTES_PER_ELEMENT, byteSize, numel, tensor, tensorBytes, type DType, type Tensor, type TensorData } from '../graph/tensor.js';
import { dtypeFromOnnx, onnxDataType } from '../graph/dtypes.js';

const { onnx } = onnxProto;

export const IR_VERSION = 8; // the IR that opset 17 models use

export interface ExternalDataPlan {
  /** File name of the side file, relative to the model (ONNX `location`). */
  readonly location: string;
  /** Tensors of at least this many bytes go to the side file. */
  readonly minBytes: number;
}

export interface EncodedModel {
  /** The model file's bytes, in order. Large tensors are views of the graph's own data, not copies. */
  readonly model: Uint8Array[];
  /** The external-data side file, in order, when the plan asked for one. */
  readonly externalData?: Uint8Array[];
}

/** Above this total, initializers must leave the protobuf (limit 2 GiB, with room for the graph). */
export const EXTERNAL_DATA_THRESHOLD = 1.8 * 1024 ** 3;

export function initializerBytes(graph: Graph): number {
  let total = 0;
  for (const t of graph.initializers.values()) total += byteSize(t);
  return total;
}

// protobuf wire format for the few fields written by hand (see encodeOnnx)
const LEN = 2;
const GRAPH_FIELD = 7; // ModelProto.graph
const INITIALIZER_FIELD = 5; // GraphProto.initializer
const RAW_DATA_FIELD = 9; // TensorProto.raw_data

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

const concatLength = (parts: readonly Uint8Array[]) => parts.reduce((n, p) => n + p.byteLength, 0);

/** A length-delimited field: tag, length, then the parts. */
function lengthDelimited(field: number, parts: Uint8Array[]): Uint8Array[] {
  return [varint((field << 3) | LEN), varint(concatLength(parts)), ...parts];
}

/**
 * Serialises a graph as an ONNX ModelProto. protobufjs encodes everything but the initializers'
 * raw bytes, which are spliced in as views of the tensors (protobuf allows fields in any order), so
 * a 100 MB model is never copied into one output buffer: peak memory stays near the weights' size.
 */
export function encodeOnnx(graph: Graph, options: { producerVersion: string; external?: ExternalDataPlan }): EncodedModel {
  const sideFile: Uint8Array[] = [];
  let offset = 0;
  const initializerParts: Uint8Array[] = [];
  for (const [name, t] of graph.initializers) {
    const bytes = tensorBytes(t);
    const header: OnnxProto.onnx.ITensorProto = { name, dims: [...t.shape], dataType: onnxDataType(t.dtype) };
    let body: Uint8Array[];
    if (!options.external || bytes.byteLength < options.external.minBytes) {
      body = [onnx.TensorProto.encode(header).finish(), ...lengthDelimited(RAW_DATA_FIELD, [bytes])];
    } else {
      // 64-byte alignment lets a runtime map the file and use the tensors in place.
      const pad = (64 - (offset % 64)) % 64;
      if (pad) sideFile.push(new Uint8Array(pad));
      offset += pad;
      sideFile.push(bytes);
      header.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      header.externalData = [
        { key: 'location', value: options.external.location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.byteLength) },
      ];
      offset += bytes.byteLength;
      body = [onnx.TensorProto.encode(header).finish()];
    }
    initializerParts.push(...lengthDelimited(INITIALIZER_FIELD, body));
  }
  const graphHead = onnx.GraphProto.encode({
    name: graph.name,
    node: graph.nodes.map(encodeNode),
    input: graph.inputs.map(encodeValueInfo),
    output: graph.outputs.map(encodeValueInfo),
  }).finish();
  const modelHead = onnx.ModelProto.encode({
    irVersion: IR_VERSION,
    producerName: 'convnext-toolchain',
    producerVersion: options.producerVersion,
    opsetImport: Object.keys(graph.opsets)
      .sort()
      .map((domain) => ({ domain, version: graph.opsets[domain] })),
    metadataProps: Object.keys(graph.metadata)
      .sort()
      .map((key) => ({ key, value: graph.metadata[key] })),
  }).finish();
  const model = [modelHead, ...lengthDelimited(GRAPH_FIELD, [graphHead, ...initializerParts])];
  return options.external ? { model, externalData: sideFile } : { model };
}

/** The serialised model as one buffer, for in-memory sessions. */
export function onnxBytes(graph: Graph, producerVersion = ''): Uint8Array {
  return joinChunks(encodeOnnx(graph, { producerVersion }).model);
}

/** The size of the serialised model, without assembling it. */
export function onnxSize(graph: Graph): number {
  return encodeOnnx(graph, { producerVersion: '' }).model.reduce((n, c) => n + c.byteLength, 0);
}

/** Concatenates chunks into one buffer. */
export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(concatLength(chunks));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function encodeNode(n: Node): OnnxProto.onnx.INodeProto {
  return {
    name: n.name || undefined,
    opType: n.op,
    domain: n.domain || undefined,
    input: [...n.inputs],
    output: [...n.outputs],
    attribute: Object.keys(n.attrs).map((name) => encodeAttr(name, n.attrs[name])),
  };
}

function encodeAttr(name: string, a: Attr): OnnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: [...a.value] };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor':
      return { name, type: T.TENSOR, t: { dims: [...a.value.shape], dataType: onnxDataType(a.value.dtype), rawData: tensorBytes(a.value) } };
  }
}

function encodeValueInfo(v: ValueInfo): OnnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: onnxDataType(v.dtype),
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface DecodeOptions {
  /** Where the model came from, for messages. */
  readonly source: string;
  /**
   * An external-data file named by a tensor (relative to the model's folder): its bytes, or a
   * ranged reader, so that a side file over 2 GiB is read tensor by tensor, never whole.
   */
  readonly readExternal?: (location: string) => Uint8Array | ExternalFile;
}

/** A side file read by ranges. */
export interface ExternalFile {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
}

export function decodeOnnx(bytes: Uint8Array, options: DecodeOptions): Graph {
  let model: OnnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new InputError(`not a valid ONNX model (${(e as Error).message})`, options.source);
  }
  const g = model.graph;
  if (!g || !g.node) throw new InputError('not an ONNX model: it has no graph', options.source);
  const initializers = new Map<string, Tensor>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', decodeTensor(t, options));
  const opsets: Record<string, number> = {};
  for (const o of model.opsetImport ?? []) opsets[o.domain ?? ''] = Number(o.version ?? 0);
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) metadata[p.key ?? ''] = p.value ?? '';
  return {
    name: g.name ?? '',
    inputs: (g.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map((v) => decodeValueInfo(v, options)),
    outputs: (g.output ?? []).map((v) => decodeValueInfo(v, options)),
    nodes: g.node.map((n, i) => decodeNode(n, i, options)),
    initializers,
    opsets,
    metadata,
  };
}

function decodeNode(n: OnnxProto.onnx.INodeProto, index: number, options: DecodeOptions): Node {
  const attrs: Record<string, Attr> = {};
  for (const a of n.attribute ?? []) attrs[a.name ?? ''] = decodeAttr(a, n, options);
  return {
    name: n.name || `${n.opType}_${index}`,
    op: n.opType ?? '',
    domain: n.domain === 'ai.onnx' ? '' : n.domain ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attrs,
  };
}

function decodeAttr(a: OnnxProto.onnx.IAttributeProto, n: OnnxProto.onnx.INodeProto, options: DecodeOptions): Attr {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case T.INT:
      return { kind: 'int', value: Number(a.i ?? 0) };
    case T.FLOAT:
      return { kind: 'float', value: a.f ?? 0 };
    case T.INTS:
      return { kind: 'ints', value: (a.ints ?? []).map(Number) };
    case T.FLOATS:
      return { kind: 'floats', value: [...(a.floats ?? [])] };
    case T.STRING:
      return { kind: 'string', value: new TextDecoder().decode(a.s ?? new Uint8Array()) };
    case T.TENSOR:
      return { kind: 'tensor', value: decodeTensor(a.t ?? {}, options) };
    default:
      throw new UnsupportedError(`attribute ${a.name} of node ${n.name || n.opType} has unsupported type ${a.type}`, options.source, 'onnx-attribute');
  }
}

export function decodeValueInfo(v: OnnxProto.onnx.IValueInfoProto, options: Pick<DecodeOptions, 'source'>): ValueInfo {
  const t = v.type?.tensorType;
  const dtype = dtypeFromOnnx(t?.elemType ?? 0);
  if (!dtype) throw new UnsupportedError(`value ${v.name} has unsupported element type ${t?.elemType}`, options.source, 'dtype');
  const shape: Dim[] = (t?.shape?.dim ?? []).map((d, i) =>
    d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : `${v.name}_dim${i}`,
  );
  return { name: v.name ?? '', dtype, shape };
}

function decodeTensor(t: OnnxProto.onnx.ITensorProto, options: DecodeOptions): Tensor {
  const dtype = dtypeFromOnnx(t.dataType ?? 0);
  if (!dtype) throw new UnsupportedError(`tensor ${t.name} has unsupported data type ${t.dataType}`, options.source, 'dtype');
  const shape = (t.dims ?? []).map(Number);
  const n = numel(shape);
  let raw: Uint8Array | undefined = t.rawData && t.rawData.length ? t.rawData : undefined;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) raw = readExternalTensor(t, options);
  if (raw) {
    const size = BYTES_PER_ELEMENT[dtype];
    if (raw.byteLength !== n * size) {
      throw new InputError(`tensor ${t.name} holds ${raw.byteLength} bytes, its shape [${shape.join(', ')}] needs ${n * size}`, options.source);
    }
    return tensor(dtype, shape, viewAs(dtype, raw));
  }
  return tensor(dtype, shape, typedFields(t, dtype, n, options));
}

function readExternalTensor(t: OnnxProto.onnx.ITensorProto, options: DecodeOptions): Uint8Array {
  const info = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = info.get('location');
  if (!location || !options.readExternal) throw new InputError(`tensor ${t.name} has external data but no location`, options.source);
  const file = options.readExternal(location);
  const size = file instanceof Uint8Array ? file.byteLength : file.size;
  const offset = Number(info.get('offset') ?? 0);
  const length = info.has('length') ? Number(info.get('length')) : size - offset;
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= size)) {
    throw new InputError(`tensor ${t.name}: external data range ${offset}+${length} lies outside ${location} (${size} bytes)`, options.source);
  }
  return file instanceof Uint8Array ? file.subarray(offset, offset + length) : file.read(offset, length);
}

/** A typed view over little-endian bytes, copied only when the bytes are misaligned. */
export function viewAs(dtype: DType, raw: Uint8Array): TensorData {
  const size = BYTES_PER_ELEMENT[dtype];
  // new Uint8Array(view) copies (Buffer.slice would not)
  const bytes = raw.byteOffset % size === 0 ? raw : new Uint8Array(raw);
  const count = bytes.byteLength / size;
  switch (dtype) {
    case 'float32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    case 'int8':
      return new Int8Array(bytes.buffer, bytes.byteOffset, count);
    case 'uint8':
    case 'bool':
      return new Uint8Array(bytes.buffer, bytes.byteOffset, count);
    case 'int32':
      return new Int32Array(bytes.buffer, bytes.byteOffset, count);
    case 'int64':
      return new BigInt64Array(bytes.buffer, bytes.byteOffset, count);
  }
}

// Tensors written without raw_data keep values in the typed repeated fields.
function typedFields(t: OnnxProto.onnx.ITensorProto, dtype: DType, n: number, options: DecodeOptions): TensorData {
  let out: TensorData;
  switch (dtype) {
    case 'float32':
      out = Float32Array.from(t.floatData ?? []);
      break;
    case 'int64':
      out = BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(String(v))));
      break;
    case 'float16':
    case 'bfloat16':
      out = Uint16Array.from(t.int32Data ?? []);
      break;
    case 'int32':
      out = Int32Array.from(t.int32Data ?? []);
      break;
    case 'int8':
      out = Int8Array.from(t.int32Data ?? []);
      break;
    default:
      out = Uint8Array.from(t.int32Data ?? []);
  }
  if (out.length !== n) throw new InputError(`tensor ${t.name} has ${out.length} values, its shape needs ${n}`, options.source);
  return out;
}
