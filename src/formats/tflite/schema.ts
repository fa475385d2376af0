// The TFLite (LiteRT) flatbuffer schema, as much of it as this writer uses: tensorflow/lite/schema/
// schema.fbs, schema version 3 (file identifier "TFL3"), the version every TFLite and LiteRT runtime
// reads. flatc is not at hand, so the tables are built by hand with flatbuffers' Builder: a field's
// slot is its position in the table's declaration (a union takes two: its type, then its value),
// and a default value is not written. Enum codes are copied from schema.fbs.

import { Builder } from 'flatbuffers';

export const FILE_IDENTIFIER = 'TFL3';
export const SCHEMA_VERSION = 3;

export const TensorType = { FLOAT32: 0, FLOAT16: 1, INT32: 2, UINT8: 3, INT64: 4, INT8: 9 } as const;
export type TensorTypeCode = (typeof TensorType)[keyof typeof TensorType];

/** BuiltinOperator codes used by the writer. */
export const Op = {
  ADD: 0,
  AVERAGE_POOL_2D: 1,
  CONCATENATION: 2,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  DEQUANTIZE: 6,
  FULLY_CONNECTED: 9,
  LOGISTIC: 14,
  MUL: 18,
  RELU: 19,
  RESHAPE: 22,
  SOFTMAX: 25,
  TANH: 28,
  PAD: 34,
  TRANSPOSE: 39,
  MEAN: 40,
  SUB: 41,
  DIV: 42,
  EXP: 47,
  LOG_SOFTMAX: 50,
  MAXIMUM: 55,
  MINIMUM: 57,
  NEG: 59,
  LOG: 73,
  SUM: 74,
  SQRT: 75,
  RSQRT: 76,
  POW: 78,
  REDUCE_PROD: 81,
  REDUCE_MAX: 82,
  REDUCE_MIN: 89,
  SQUARE: 92,
  QUANTIZE: 114,
  ABS: 101,
  BATCH_MATMUL: 126,
  GELU: 150,
} as const;
export type OpName = keyof typeof Op;

/** BuiltinOptions union members: their type code (position in the union, NONE = 0) and fields in slot order. */
export const Options = {
  Conv2DOptions: { code: 1, fields: ['padding:i8', 'stride_w:i32', 'stride_h:i32', 'fused_activation_function:i8', 'dilation_w_factor:i32=1', 'dilation_h_factor:i32=1'] },
  DepthwiseConv2DOptions: { code: 2, fields: ['padding:i8', 'stride_w:i32', 'stride_h:i32', 'depth_multiplier:i32', 'fused_activation_function:i8', 'dilation_w_factor:i32=1', 'dilation_h_factor:i32=1'] },
  Pool2DOptions: { code: 5, fields: ['padding:i8', 'stride_w:i32', 'stride_h:i32', 'filter_width:i32', 'filter_height:i32', 'fused_activation_function:i8'] },
  FullyConnectedOptions: { code: 8, fields: ['fused_activation_function:i8', 'weights_format:i8', 'keep_num_dims:i8', 'asymmetric_quantize_inputs:i8'] },
  SoftmaxOptions: { code: 9, fields: ['beta:f32'] },
  ConcatenationOptions: { code: 10, fields: ['axis:i32', 'fused_activation_function:i8'] },
  AddOptions: { code: 11, fields: ['fused_activation_function:i8', 'pot_scale_int16:i8=1'] },
  MulOptions: { code: 21, fields: ['fused_activation_function:i8'] },
  ReducerOptions: { code: 27, fields: ['keep_dims:i8'] },
  SubOptions: { code: 28, fields: ['fused_activation_function:i8', 'pot_scale_int16:i8=1'] },
  DivOptions: { code: 29, fields: ['fused_activation_function:i8'] },
  BatchMatMulOptions: { code: 101, fields: ['adj_x:i8', 'adj_y:i8', 'asymmetric_quantize_inputs:i8'] },
  GeluOptions: { code: 116, fields: ['approximate:i8'] },
} as const;
export type OptionsName = keyof typeof Options;

export const Padding = { SAME: 0, VALID: 1 } as const;

export interface QuantizationSpec {
  readonly scale: Float32Array;
  /** One per scale; symmetric int8 weights have all zeros. */
  readonly zeroPoint: readonly number[];
  readonly quantizedDimension: number;
}

export interface TensorSpec {
  /** Optional in schema.fbs; the writer leaves internal tensors unnamed unless asked to keep names. */
  readonly name?: string;
  readonly type: TensorTypeCode;
  readonly shape: readonly number[];
  /** The shape with −1 for sizes known only at run time (the batch); omitted when all are known. */
  readonly shapeSignature?: readonly number[];
  /** Index into the model's buffers; 0 (the empty sentinel) for activations. */
  readonly buffer: number;
  readonly quantization?: QuantizationSpec;
}

export interface OperatorSpec {
  readonly opcode: number;
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
  readonly options?: { readonly name: OptionsName; readonly values: Readonly<Record<string, number>> };
}

export interface OperatorCodeSpec {
  readonly builtin: number;
  readonly version: number;
}

export interface ModelSpec {
  readonly description: string;
  readonly operatorCodes: readonly OperatorCodeSpec[];
  readonly tensors: readonly TensorSpec[];
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
  readonly operators: readonly OperatorSpec[];
  /** buffers[0] must be empty (the sentinel activations point at). */
  readonly buffers: readonly Uint8Array[];
  readonly metadata: readonly { readonly name: string; readonly buffer: number }[];
  /** The serving signature: public names of the inputs and outputs, in order. */
  readonly signature: { readonly key: string; readonly inputs: readonly string[]; readonly outputs: readonly string[] };
}

// --- helpers over the Builder ------------------------------------------------------------------

export function int32Vector(b: Builder, values: readonly number[]): number {
  b.startVector(4, values.length, 4);
  for (let i = values.length - 1; i >= 0; i--) b.addInt32(values[i]);
  return b.endVector();
}

export function offsetVector(b: Builder, offsets: readonly number[]): number {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]);
  return b.endVector();
}

/** An options table from the field list in `Options` (all scalars). */
function optionsTable(b: Builder, name: OptionsName, values: Readonly<Record<string, number>>): number {
  const fields = Options[name].fields as readonly string[];
  b.startObject(fields.length);
  fields.forEach((f, slot) => {
    const [key, rest] = f.split(':');
    const [kind, dflt] = rest.split('=');
    const v = values[key];
    const d = Number(dflt ?? 0);
    if (v === undefined) return;
    if (kind === 'i8') b.addFieldInt8(slot, v, d);
    else if (kind === 'i32') b.addFieldInt32(slot, v, d);
    else b.addFieldFloat32(slot, v, d);
  });
  for (const key of Object.keys(values)) if (!fields.some((f) => f.startsWith(`${key}:`))) throw new Error(`internal: ${name} has no field ${key}`);
  return b.endObject();
}

/**
 * Vectors and options tables by content. A flatbuffer reaches a vector or table by offset, so every
 * table holding equal ones can point at one copy (the verifier follows offsets, it does not count
 * owners). What repeats: per-channel zero points (int64 zeros, one vector per channel count: TFLite
 * wants as many zero points as scales), scales of layers with equal weights' ranges, shapes (a
 * DEQUANTIZE'd weight and its float32 form; every activation of a stage), and options such as ADD's
 * empty AddOptions. Keys are the bytes, so −0 and 0, or two NaNs of different bits, stay apart.
 */
class SharedVectors {
  private readonly seen = new Map<string, number>();
  constructor(private readonly b: Builder) {}

  int32s(values: readonly number[]): number {
    return this.once(`i32 ${values.join(',')}`, () => int32Vector(this.b, values));
  }

  float32s(values: Float32Array): number {
    return this.once(`f32 ${Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('latin1')}`, () => {
      this.b.startVector(4, values.length, 4);
      for (let i = values.length - 1; i >= 0; i--) this.b.addFloat32(values[i]);
      return this.b.endVector();
    });
  }

  int64s(values: readonly number[]): number {
    return this.once(`i64 ${values.join(',')}`, () => {
      this.b.startVector(8, values.length, 8);
      for (let i = values.length - 1; i >= 0; i--) this.b.addInt64(BigInt(values[i]));
      return this.b.endVector();
    });
  }

  options(name: OptionsName, values: Readonly<Record<string, number>>): number {
    const key = Object.keys(values).sort().map((k) => `${k}=${values[k]}`).join(',');
    return this.once(`${name} ${key}`, () => optionsTable(this.b, name, values));
  }

  private once(key: string, make: () => number): number {
    let offset = this.seen.get(key);
    if (offset === undefined) this.seen.set(key, (offset = make()));
    return offset;
  }
}

function quantization(b: Builder, v: SharedVectors, q: QuantizationSpec): number {
  const scale = v.float32s(q.scale);
  const zero = v.int64s(q.zeroPoint);
  b.startObject(7);
  b.addFieldOffset(2, scale, 0);
  b.addFieldOffset(3, zero, 0);
  b.addFieldInt32(6, q.quantizedDimension, 0);
  return b.endObject();
}

function tensorTable(b: Builder, v: SharedVectors, t: TensorSpec): number {
  const shape = v.int32s(t.shape);
  const name = t.name === undefined ? 0 : b.createString(t.name);
  const q = t.quantization ? quantization(b, v, t.quantization) : 0;
  const signature = t.shapeSignature ? v.int32s(t.shapeSignature) : 0;
  b.startObject(9);
  b.addFieldOffset(0, shape, 0);
  b.addFieldInt8(1, t.type, 0);
  b.addFieldInt32(2, t.buffer, 0);
  if (name) b.addFieldOffset(3, name, 0);
  if (q) b.addFieldOffset(4, q, 0);
  if (signature) b.addFieldOffset(7, signature, 0);
  // has_rank tells a scalar (rank 0) from a tensor of unknown rank; a non-empty shape says its rank itself
  if (t.shape.length === 0) b.addFieldInt8(8, 1, 0);
  return b.endObject();
}

function operatorTable(b: Builder, v: SharedVectors, o: OperatorSpec): number {
  const inputs = v.int32s(o.inputs);
  const outputs = v.int32s(o.outputs);
  const options = o.options ? v.options(o.options.name, o.options.values) : 0;
  b.startObject(5);
  b.addFieldInt32(0, o.opcode, 0);
  b.addFieldOffset(1, inputs, 0);
  b.addFieldOffset(2, outputs, 0);
  if (o.options) {
    b.addFieldInt8(3, Options[o.options.name].code, 0);
    b.addFieldOffset(4, options, 0);
  }
  return b.endObject();
}

function operatorCodeTable(b: Builder, c: OperatorCodeSpec): number {
  b.startObject(4);
  // readers before 2.4 look only at the byte-sized code; codes beyond 127 live in builtin_code
  b.addFieldInt8(0, Math.min(c.builtin, 127), 0);
  b.addFieldInt32(2, c.version, 1);
  b.addFieldInt32(3, c.builtin, 0);
  return b.endObject();
}

function bufferTable(b: Builder, data: Uint8Array): number {
  let vec = 0;
  if (data.byteLength) {
    b.prep(16, data.byteLength); // schema.fbs: data (force_align: 16), for mmap-friendly kernels
    vec = b.createByteVector(data);
  }
  b.startObject(1);
  if (vec) b.addFieldOffset(0, vec, 0);
  return b.endObject();
}

// A vector of (name, index) tables, the shape of both TensorMap (a signature's tensor) and Metadata
// (a metadata entry's buffer): field 0 the name, field 1 the index.
function namedIndices(b: Builder, names: readonly string[], indices: readonly number[]): number {
  const maps = names.map((n, i) => {
    const name = b.createString(n);
    b.startObject(2);
    b.addFieldOffset(0, name, 0);
    b.addFieldInt32(1, indices[i], 0);
    return b.endObject();
  });
  return offsetVector(b, maps);
}

/** Serialises a model: one subgraph, its buffers, metadata entries and serving signature. */
export function buildModel(m: ModelSpec): Uint8Array {
  const dataBytes = m.buffers.reduce((n, d) => n + d.byteLength + 16, 0);
  if (dataBytes > 2 ** 31 - 2 ** 26) throw new RangeError('over 2 GiB');
  const b = new Builder(dataBytes + 1024 * 1024);
  // buffers first: the largest part, written at the end of the file, with the tables before them
  const buffers = offsetVector(b, m.buffers.map((d) => bufferTable(b, d)));
  // children before parents: flatbuffers cannot nest one object's construction in another's
  const shared = new SharedVectors(b);
  const tensors = offsetVector(b, m.tensors.map((t) => tensorTable(b, shared, t)));
  const inputs = int32Vector(b, m.inputs);
  const outputs = int32Vector(b, m.outputs);
  const operators = offsetVector(b, m.operators.map((o) => operatorTable(b, shared, o)));
  const graphName = b.createString('main');
  b.startObject(5);
  b.addFieldOffset(0, tensors, 0);
  b.addFieldOffset(1, inputs, 0);
  b.addFieldOffset(2, outputs, 0);
  b.addFieldOffset(3, operators, 0);
  b.addFieldOffset(4, graphName, 0);
  const subgraph = b.endObject();
  const codes = offsetVector(b, m.operatorCodes.map((c) => operatorCodeTable(b, c)));
  const metadata = namedIndices(b, m.metadata.map((e) => e.name), m.metadata.map((e) => e.buffer));
  const sigInputs = namedIndices(b, m.signature.inputs, m.inputs);
  const sigOutputs = namedIndices(b, m.signature.outputs, m.outputs);
  const sigKey = b.createString(m.signature.key);
  b.startObject(5);
  b.addFieldOffset(0, sigInputs, 0);
  b.addFieldOffset(1, sigOutputs, 0);
  b.addFieldOffset(2, sigKey, 0);
  const signature = b.endObject();
  const signatures = offsetVector(b, [signature]);
  const subgraphs = offsetVector(b, [subgraph]);
  const description = b.createString(m.description);
  b.startObject(8);
  b.addFieldInt32(0, SCHEMA_VERSION, 0);
  b.addFieldOffset(1, codes, 0);
  b.addFieldOffset(2, subgraphs, 0);
  b.addFieldOffset(3, description, 0);
  b.addFieldOffset(4, buffers, 0);
  b.addFieldOffset(6, metadata, 0);
  b.addFieldOffset(7, signatures, 0);
  b.finish(b.endObject(), FILE_IDENTIFIER);
  return b.asUint8Array();
}
