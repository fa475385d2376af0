// TF ops (from the shared NHWC lowering, formats/tfjs/lower.ts) → TFLite builtins. Op support is
// data: TFLITE_OPS maps each TF op the lowering writes to a handler that reads its inputs as TFLite
// tensors, adds one builtin (two with a dequantized weight) and records the output's shape. A size
// unknown when writing is −1: the file's `shape` holds 1 there and `shape_signature` the −1.

import { UnsupportedError } from '../../errors.js';
import { numel, tensor, toFloat32, type Tensor } from '../../graph/tensor.js';
import type { TfAttr, TfNode } from '../tfjs/emit.js';
import { broadcastShapes, transposeTensor } from '../tfjs/layout.js';
import { encodeFloat16, encodeInt8PerChannel } from '../tfjs/weights.js';
import { activationQuantization, quantizeBias, type Range } from './int8.js';
import { Op, Padding, TensorType, type OperatorSpec, type OptionsName, type QuantizationSpec, type TensorSpec, type TensorTypeCode } from './schema.js';

import type { TfliteWeights } from './precisions.js';
export { TFLITE_WEIGHTS, type TfliteWeights } from './precisions.js';

type OpName = keyof typeof Op;

/** While the model is built every tensor has a name: the int8 forms and --exclude's layers are found by it. */
export type NamedTensor = TensorSpec & { readonly name: string };

/** The model being written: tensors, their data, operators, and where each TF node's output lives. */
export class TfliteBuilder {
  readonly tensors: NamedTensor[] = [];
  readonly buffers: Uint8Array[] = [new Uint8Array(0)];
  readonly operators: OperatorSpec[] = [];
  readonly codes: { builtin: number; version: number }[] = [];
  /** TF node name → tensor index (activations, and constants once materialised). */
  readonly refs = new Map<string, number>();
  private readonly shapes: number[][] = [];
  private readonly bySize = new Map<number, number[]>();
  /** float32 activation → its int8 form, so a layer reading another's output reuses the int8 tensor. */
  private readonly int8Of = new Map<number, number>();

  /**
   * `ranges` (by TF node name): calibrated activations, for full-integer layers where both ends have
   * one; `keepFloat`: the layers (by name) that stay float32, weights included.
   */
  constructor(
    readonly consts: ReadonlyMap<string, Tensor>,
    readonly weights: TfliteWeights,
    readonly ranges?: ReadonlyMap<string, Range>,
    readonly keepFloat: (layer: string) => boolean = () => false,
  ) {}

  addTensor(name: string, type: TensorTypeCode, shape: readonly number[], data?: Uint8Array, quantization?: QuantizationSpec): number {
    const dynamic = shape.includes(-1);
    const buffer = data ? this.bufferFor(data) : 0;
    this.tensors.push({ name, type, shape: shape.map((d) => (d === -1 ? 1 : d)), shapeSignature: dynamic ? [...shape] : undefined, buffer, quantization });
    this.shapes.push([...shape]);
    return this.tensors.length - 1;
  }

  /** A buffer index for `data`: an existing buffer of the same bytes (LayerNorm axes, equal biases) or a new one. */
  private bufferFor(data: Uint8Array): number {
    const same = this.bySize.get(data.byteLength) ?? [];
    const found = same.find((i) => Buffer.compare(this.buffers[i], data) === 0);
    if (found !== undefined) return found;
    this.bySize.set(data.byteLength, [...same, this.buffers.length]);
    return this.buffers.push(data) - 1;
  }

  shape(index: number): readonly number[] {
    return this.shapes[index];
  }

  op(name: OpName, inputs: readonly number[], outputs: readonly number[], options?: OperatorSpec['options'], version = 1): void {
    const builtin = Op[name];
    let opcode = this.codes.findIndex((c) => c.builtin === builtin && c.version === version);
    if (opcode < 0) opcode = this.codes.push({ builtin, version }) - 1;
    this.operators.push({ opcode, inputs, outputs, options });
  }

  /** The constant a TF input names, if it is one. */
  constant(ref: string): Tensor | undefined {
    return this.consts.get(ref);
  }

  /** The tensor for a TF input: an activation, or a constant stored as it is (float32 or int32). */
  input(ref: string): number {
    const known = this.refs.get(ref);
    if (known !== undefined) return known;
    const c = this.consts.get(ref);
    if (!c) throw new Error(`internal: ${ref} read before it was produced`);
    const int = c.dtype === 'int32';
    const index = this.addTensor(ref, int ? TensorType.INT32 : TensorType.FLOAT32, c.shape, bytesOf(int ? c.data : toFloat32(c)));
    this.refs.set(ref, index);
    return index;
  }

  /** An int32 vector constant (axes, shapes, paddings, perms). */
  ints(name: string, values: readonly number[], shape = [values.length]): number {
    return this.addTensor(name, TensorType.INT32, shape, bytesOf(Int32Array.from(values)));
  }

  /**
   * A layer weight in the model's storage. `t` is in TFLite's layout; per-channel int8 scales run
   * along `axis`. float16 and int8 weights are DEQUANTIZE'd to float32 in the graph: LiteRT's
   * delegates (XNNPACK, GPU) fold a DEQUANTIZE of a constant at load, the reference kernels run it once.
   */
  weight(name: string, t: Tensor, axis: number, layer?: string): number {
    const values = toFloat32(t);
    if (this.weights === 'float32' || (layer !== undefined && this.keepFloat(layer))) return this.addTensor(name, TensorType.FLOAT32, t.shape, bytesOf(values));
    if (this.weights === 'int8-hybrid') return this.int8Weight(name, t, axis);
    let stored: number;
    if (this.weights === 'float16') {
      stored = this.addTensor(`${name}/float16`, TensorType.FLOAT16, t.shape, encodeFloat16(name, values, t.shape).bytes);
    } else {
      stored = this.int8Weight(name, t, axis);
    }
    const out = this.addTensor(name, TensorType.FLOAT32, t.shape);
    this.op('DEQUANTIZE', [stored], [out], undefined, this.weights === 'float16' ? 3 : 5);
    return out;
  }

  /** A float layer on a weight from `weight`: in hybrid mode at the op version of LiteRT's hybrid kernel. */
  floatLayer(name: keyof typeof HYBRID_VERSIONS, inputs: readonly number[], outputs: readonly number[], options: NonNullable<OperatorSpec['options']>): void {
    if (this.weights !== 'int8-hybrid') return this.op(name, inputs, outputs, options);
    // per batch row asymmetric input quantization: GELU's outputs and the LayerNorm'd stream are skewed
    const values = name === 'FULLY_CONNECTED' ? { ...options.values, asymmetric_quantize_inputs: 1 } : options.values;
    this.op(name, inputs, outputs, { ...options, values }, HYBRID_VERSIONS[name]);
  }

  /** Symmetric per-channel int8 along `axis` (the scales are computed with the channel axis last, as TF.js's). */
  private int8Weight(name: string, t: Tensor, axis: number): number {
    const last = transposeTensor(t, moveLast(t.shape.length, axis));
    const q = encodeInt8PerChannel(name, toFloat32(last), last.shape, 1);
    const signed = tensor('int8', last.shape, Int8Array.from(q.weight.bytes, (u) => u - 128));
    const back = transposeTensor(signed, moveBack(t.shape.length, axis));
    const quantization = { scale: q.scales, zeroPoint: Array.from(q.scales, () => 0), quantizedDimension: axis };
    return this.addTensor(`${name}/int8`, TensorType.INT8, t.shape, bytesOf(back.data), quantization);
  }

  /**
   * Writes layer `n` as a full-integer `op` when its input and output were calibrated: QUANTIZE in
   * (or the int8 tensor a previous layer made), int8 weights and int32 bias, DEQUANTIZE out. Returns
   * false, adding nothing, for a layer to be written in float.
   */
  int8Layer(n: TfNode, op: 'CONV_2D' | 'DEPTHWISE_CONV_2D' | 'FULLY_CONNECTED', layer: Int8Layer): boolean {
    const [rin, rout] = [this.ranges?.get(n.input[0]), this.ranges?.get(n.name)];
    if (!rin || !rout || this.keepFloat(n.name)) return false;
    const xq = this.int8Form(this.input(n.input[0]), rin);
    const w = this.int8Weight(n.input[1], layer.weight, layer.axis);
    const channels = layer.weight.shape[layer.axis];
    const b = quantizeBias(layer.bias ? toFloat32(layer.bias) : new Float32Array(channels), this.tensors[xq].quantization!.scale[0], this.tensors[w].quantization!.scale);
    const bias = this.addTensor(`${n.name}/bias/int32`, TensorType.INT32, [channels], bytesOf(b.data), b.quantization);
    const yq = this.addTensor(`${n.name}/int8`, TensorType.INT8, layer.shape, undefined, activationQuantization(rout));
    this.op(op, [xq, w, bias], [yq], layer.options, INT8_VERSIONS[op]);
    const y = this.output(n, layer.shape);
    this.op('DEQUANTIZE', [yq], [y], undefined, 2);
    this.int8Of.set(y, yq);
    return true;
  }

  /** The int8 form of float activation `x`: the one a layer already made, or a QUANTIZE at range `r`. */
  int8Form(x: number, r: Range): number {
    let xq = this.int8Of.get(x);
    if (xq === undefined) {
      xq = this.addTensor(`${this.tensors[x].name}/int8`, TensorType.INT8, this.shape(x), undefined, activationQuantization(r));
      this.op('QUANTIZE', [x], [xq], undefined, 2);
      this.int8Of.set(x, xq);
    }
    return xq;
  }

  /** Drops ops none of whose outputs is read (a DEQUANTIZE between two int8 layers). */
  pruneUnread(graphOutputs: readonly number[]): void {
    for (let changed = true; changed; ) {
      const read = new Set([...graphOutputs, ...this.operators.flatMap((o) => o.inputs)]);
      const before = this.operators.length;
      const kept = this.operators.filter((o) => o.outputs.some((t) => read.has(t)));
      this.operators.splice(0, before, ...kept);
      changed = kept.length !== before;
    }
  }

  /** Defines the TF node's output as a new float32 activation of `shape`. */
  output(n: TfNode, shape: readonly number[]): number {
    const index = this.addTensor(n.name, TensorType.FLOAT32, shape);
    this.refs.set(n.name, index);
    return index;
  }
}

/** A layer for int8Layer: its weight in TFLite's layout with the output channels on `axis`. */
interface Int8Layer {
  readonly weight: Tensor;
  readonly axis: number;
  readonly bias?: Tensor;
  readonly shape: readonly number[];
  readonly options: OperatorSpec['options'];
}

// the op versions (tensorflow/lite/tools/versioning/op_version.cc) of int8 with per-channel weights,
// and of float input on per-channel int8 weights (hybrid)
const INT8_VERSIONS = { CONV_2D: 3, DEPTHWISE_CONV_2D: 3, FULLY_CONNECTED: 4 } as const;
const HYBRID_VERSIONS = { CONV_2D: 5, DEPTHWISE_CONV_2D: 6, FULLY_CONNECTED: 12 } as const;

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const moveLast = (rank: number, axis: number) => [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis), axis];
const moveBack = (rank: number, axis: number) => {
  const p = moveLast(rank, axis);
  return p.map((_, i) => p.indexOf(i));
};

// --- attributes ----------------------------------------------------------------------------------

const ints = (a: TfAttr | undefined): number[] => (a && 'list' in a ? (a.list.i ?? []).map(Number) : []);
const str = (a: TfAttr | undefined): string => (a && 's' in a ? Buffer.from(a.s, 'base64').toString('utf8') : '');
const bool = (a: TfAttr | undefined): boolean => !!a && 'b' in a && a.b;
const strs = (a: TfAttr | undefined): string[] => (a && 'list' in a ? (a.list.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8')) : []);

const unsupported = (n: TfNode, why: string) => new UnsupportedError(`TFLite export: ${n.op} ${why}`, n.name, 'tflite-op');

function padding(n: TfNode): number {
  const p = str(n.attr.padding);
  if (p !== 'SAME' && p !== 'VALID') throw unsupported(n, `with padding ${p}`);
  return Padding[p];
}

/** Output size of a window along one axis (TF's SAME and VALID). */
function windowed(size: number, k: number, stride: number, dilation: number, pad: number): number {
  if (size === -1) return -1;
  return pad === Padding.SAME ? Math.ceil(size / stride) : Math.floor((size - ((k - 1) * dilation + 1)) / stride) + 1;
}

// --- handlers ------------------------------------------------------------------------------------

type Handler = (n: TfNode, m: TfliteBuilder) => void;

/** A bias: the fused BiasAdd's constant, or zeros (TFLite's kernels all take one). */
function bias(n: TfNode, m: TfliteBuilder, channels: number): number {
  const ref = biasRef(n);
  // float16 storage halves the biases too (DEQUANTIZE'd like the weights); int8 leaves them float32, as LiteRT's converter does
  if (ref !== undefined && m.weights === 'float16' && m.constant(ref)) return m.weight(ref, m.constant(ref)!, 0, n.name);
  if (ref !== undefined) return m.input(ref);
  return m.addTensor(`${n.name}/bias`, TensorType.FLOAT32, [channels], new Uint8Array(channels * 4));
}

function biasRef(n: TfNode): string | undefined {
  const fused = strs(n.attr.fused_ops);
  if (fused.length > 1 || (fused.length === 1 && fused[0] !== 'BiasAdd')) throw unsupported(n, `with fused ops ${fused.join(', ')}`);
  return fused.length === 1 ? n.input[n.input.length - 1] : undefined;
}

/** The fused bias as a constant, for an int8 layer (which stores it int32 at its own scale). */
function biasConst(n: TfNode, m: TfliteBuilder): Tensor | undefined {
  const ref = biasRef(n);
  if (ref === undefined) return undefined;
  const c = m.constant(ref);
  if (!c) throw unsupported(n, 'with a bias that is not a constant');
  return c;
}

function filterOf(n: TfNode, m: TfliteBuilder): Tensor {
  const w = m.constant(n.input[1]);
  if (!w) throw unsupported(n, 'with a filter that is not a constant');
  return w;
}

const conv: Handler = (n, m) => {
  const w = filterOf(n, m); // HWIO
  const [kh, kw, , cout] = w.shape;
  const [, sh, sw] = ints(n.attr.strides);
  const [, dh, dw] = ints(n.attr.dilations).length ? ints(n.attr.dilations) : [1, 1, 1];
  const pad = padding(n);
  const x = m.input(n.input[0]);
  const ohwi = transposeTensor(w, [3, 0, 1, 2]);
  const [b, h, wd] = m.shape(x);
  const shape = [b, windowed(h, kh, sh, dh, pad), windowed(wd, kw, sw, dw, pad), cout];
  const options = { name: 'Conv2DOptions', values: { padding: pad, stride_h: sh, stride_w: sw, dilation_h_factor: dh, dilation_w_factor: dw } } as const;
  if (m.int8Layer(n, 'CONV_2D', { weight: ohwi, axis: 0, bias: biasConst(n, m), shape, options })) return;
  const filter = m.weight(n.input[1], ohwi, 0, n.name);
  const y = m.output(n, shape);
  m.floatLayer('CONV_2D', [x, filter, bias(n, m, cout)], [y], options);
};

const depthwise: Handler = (n, m) => {
  const w = filterOf(n, m); // [kh, kw, C, multiplier]: output channel c·m + j, TFLite's [1, kh, kw, C·m] order
  const [kh, kw, c, mult] = w.shape;
  const [, sh, sw] = ints(n.attr.strides);
  const [, dh, dw] = ints(n.attr.dilations).length ? ints(n.attr.dilations) : [1, 1, 1];
  const pad = padding(n);
  const x = m.input(n.input[0]);
  const weight = tensor(w.dtype, [1, kh, kw, c * mult], w.data);
  const [b, h, wd] = m.shape(x);
  const shape = [b, windowed(h, kh, sh, dh, pad), windowed(wd, kw, sw, dw, pad), c * mult];
  const values = { padding: pad, stride_h: sh, stride_w: sw, depth_multiplier: mult, dilation_h_factor: dh, dilation_w_factor: dw };
  const options = { name: 'DepthwiseConv2DOptions', values } as const;
  if (m.int8Layer(n, 'DEPTHWISE_CONV_2D', { weight, axis: 3, bias: biasConst(n, m), shape, options })) return;
  const filter = m.weight(n.input[1], weight, 3, n.name);
  const y = m.output(n, shape);
  m.floatLayer('DEPTHWISE_CONV_2D', [x, filter, bias(n, m, c * mult)], [y], options);
};

/** MatMul by a constant [K, N] matrix is FULLY_CONNECTED on [N, K] weights; otherwise BATCH_MATMUL. */
const matmul: Handler = (n, m) => {
  if (bool(n.attr.transpose_a)) throw unsupported(n, 'with transpose_a');
  const w = m.constant(n.input[1]);
  const x = m.input(n.input[0]);
  const xs = m.shape(x);
  if (!w) {
    const y = m.input(n.input[1]);
    const out = m.output(n, [...broadcastShapes(xs.slice(0, -2), m.shape(y).slice(0, -2)), xs[xs.length - 2], m.shape(y)[m.shape(y).length - (bool(n.attr.transpose_b) ? 2 : 1)]]);
    return m.op('BATCH_MATMUL', [x, y], [out], { name: 'BatchMatMulOptions', values: { adj_y: bool(n.attr.transpose_b) ? 1 : 0 } });
  }
  const nk = bool(n.attr.transpose_b) ? w : transposeTensor(w, [1, 0]);
  const units = nk.shape[0];
  const options = { name: 'FullyConnectedOptions', values: {} } as const;
  if (m.int8Layer(n, 'FULLY_CONNECTED', { weight: nk, axis: 0, bias: biasConst(n, m), shape: [xs[0], units], options })) return;
  const out = m.output(n, [xs[0], units]);
  m.floatLayer('FULLY_CONNECTED', [x, m.weight(n.input[1], nk, 0, n.name), bias(n, m, units)], [out], options);
};

const batchMatMul: Handler = (n, m) => {
  const [a, b] = [m.input(n.input[0]), m.input(n.input[1])];
  const [sa, sb] = [m.shape(a), m.shape(b)];
  const out = m.output(n, [...broadcastShapes(sa.slice(0, -2), sb.slice(0, -2)), sa[sa.length - 2], sb[sb.length - 1]]);
  m.op('BATCH_MATMUL', [a, b], [out], { name: 'BatchMatMulOptions', values: {} });
};

const avgPool: Handler = (n, m) => {
  const [, kh, kw] = ints(n.attr.ksize);
  const [, sh, sw] = ints(n.attr.strides);
  const pad = padding(n);
  const x = m.input(n.input[0]);
  const [b, h, w, c] = m.shape(x);
  const y = m.output(n, [b, windowed(h, kh, sh, 1, pad), windowed(w, kw, sw, 1, pad), c]);
  m.op('AVERAGE_POOL_2D', [x], [y], { name: 'Pool2DOptions', values: { padding: pad, stride_h: sh, stride_w: sw, filter_height: kh, filter_width: kw } });
};

const reduce = (op: OpName): Handler => (n, m) => {
  const axes = m.constant(n.input[1]);
  if (!axes) throw unsupported(n, 'with axes that are not a constant');
  const x = m.input(n.input[0]);
  const rank = m.shape(x).length;
  const list = Array.from(toFloat32(axes), (a) => (a < 0 ? a + rank : a));
  const keep = bool(n.attr.keep_dims);
  const shape = m.shape(x).flatMap((d, i) => (list.includes(i) ? (keep ? [1] : []) : [d]));
  m.op(op, [x, m.input(n.input[1])], [m.output(n, shape)], { name: 'ReducerOptions', values: { keep_dims: keep ? 1 : 0 } });
};

const noFused = (op: 'ADD' | 'SUB' | 'MUL' | 'DIV'): OperatorSpec['options'] =>
  ({ ADD: { name: 'AddOptions', values: {} }, SUB: { name: 'SubOptions', values: {} }, MUL: { name: 'MulOptions', values: {} }, DIV: { name: 'DivOptions', values: {} } } as const)[op];

const binary = (op: OpName): Handler => (n, m) => {
  const [a, b] = [m.input(n.input[0]), m.input(n.input[1])];
  const options = op === 'ADD' || op === 'SUB' || op === 'MUL' || op === 'DIV' ? noFused(op) : undefined;
  m.op(op, [a, b], [m.output(n, broadcastShapes(m.shape(a), m.shape(b)))], options);
};

const unary = (op: OpName, options?: (n: TfNode) => OperatorSpec['options']): Handler => (n, m) => {
  const x = m.input(n.input[0]);
  m.op(op, [x], [m.output(n, m.shape(x))], options?.(n));
};

const reshape: Handler = (n, m) => {
  const s = m.constant(n.input[1]);
  if (!s) throw unsupported(n, 'to a shape that is not a constant');
  const x = m.input(n.input[0]);
  const target = Array.from(toFloat32(s));
  const xs = m.shape(x);
  const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  // with the batch unknown, so is the size −1 stands for
  const shape = target.map((d) => (d !== -1 ? d : xs.includes(-1) ? -1 : numel(xs) / known));
  m.op('RESHAPE', [x, m.input(n.input[1])], [m.output(n, shape)]);
};

const transpose: Handler = (n, m) => {
  const perm = m.constant(n.input[1]);
  if (!perm) throw unsupported(n, 'with a perm that is not a constant');
  const x = m.input(n.input[0]);
  const p = Array.from(toFloat32(perm));
  m.op('TRANSPOSE', [x, m.input(n.input[1])], [m.output(n, p.map((a) => m.shape(x)[a]))]);
};

const pad: Handler = (n, m) => {
  const p = m.constant(n.input[1]);
  if (!p) throw unsupported(n, 'with paddings that are not a constant');
  const x = m.input(n.input[0]);
  const v = toFloat32(p);
  m.op('PAD', [x, m.input(n.input[1])], [m.output(n, m.shape(x).map((d, i) => (d === -1 ? -1 : d + v[2 * i] + v[2 * i + 1])))]);
};

const concat: Handler = (n, m) => {
  const axisRef = n.input[n.input.length - 1];
  const axisConst = m.constant(axisRef);
  if (!axisConst) throw unsupported(n, 'with an axis that is not a constant');
  const parts = n.input.slice(0, -1).map((r) => m.input(r));
  const rank = m.shape(parts[0]).length;
  const axis = (toFloat32(axisConst)[0] + rank) % rank;
  const shape = [...m.shape(parts[0])];
  shape[axis] = parts.map((t) => m.shape(t)[axis]).reduce((a, b) => (a === -1 || b === -1 ? -1 : a + b));
  m.op('CONCATENATION', parts, [m.output(n, shape)], { name: 'ConcatenationOptions', values: { axis } });
};

/** Identity: the output is the input tensor, renamed to carry the public name. */
const identity: Handler = (n, m) => {
  const x = m.input(n.input[0]);
  m.refs.set(n.name, x);
  m.tensors[x] = { ...m.tensors[x], name: n.name };
};

const options = (name: OptionsName, values: Record<string, number>) => () => ({ name, values });

export const TFLITE_OPS: Readonly<Record<string, Handler>> = {
  Const: () => {}, // read when an op uses it
  Identity: identity,
  Conv2D: conv,
  _FusedConv2D: conv,
  DepthwiseConv2dNative: depthwise,
  FusedDepthwiseConv2dNative: depthwise,
  MatMul: matmul,
  _FusedMatMul: matmul,
  BatchMatMulV2: batchMatMul,
  AvgPool: avgPool,
  Mean: reduce('MEAN'),
  Sum: reduce('SUM'),
  Max: reduce('REDUCE_MAX'),
  Min: reduce('REDUCE_MIN'),
  Prod: reduce('REDUCE_PROD'),
  AddV2: binary('ADD'),
  Sub: binary('SUB'),
  Mul: binary('MUL'),
  RealDiv: binary('DIV'),
  Maximum: binary('MAXIMUM'),
  Minimum: binary('MINIMUM'),
  Pow: binary('POW'),
  Square: unary('SQUARE'),
  Sqrt: unary('SQRT'),
  Rsqrt: unary('RSQRT'),
  Neg: unary('NEG'),
  Abs: unary('ABS'),
  Exp: unary('EXP'),
  Log: unary('LOG'),
  Tanh: unary('TANH'),
  Sigmoid: unary('LOGISTIC'),
  Relu: unary('RELU'),
  Gelu: unary('GELU', (n) => ({ name: 'GeluOptions', values: { approximate: bool(n.attr.approximate) ? 1 : 0 } })),
  Softmax: unary('SOFTMAX', options('SoftmaxOptions', { beta: 1 })),
  LogSoftmax: unary('LOG_SOFTMAX'),
  Reshape: reshape,
  Transpose: transpose,
  Pad: pad,
  ConcatV2: concat,
};
