// ONNX op → TF.js graph ops. Op support is data: TFJS_OPS maps each ONNX op to a handler that reads
// its inputs from the Emitter in the layout it needs and defines its outputs (value, layout, logical
// shape). TF op names and attributes are those tfjs-converter's op mappers accept
// (node_modules/@tensorflow/tfjs-converter/dist/operations/op_list).

import { UnsupportedError } from '../errors.js';
import { attrFloat, attrInt, attrInts, type Node } from '../graph/graph.js';
import { numel, tensor, toFloat32, type Tensor } from '../graph/tensor.js';
import { Emitter, tfAttr, type TfAttr } from './tfjs-emit.js';
import {
  axesLast,
  broadcastShapes,
  dropAxes,
  hasAxesLast,
  identity,
  inverse,
  NHWC,
  normAxes,
  physicalAxes,
  sameElementOrder,
  transposedLayout,
  transposeTensor,
  type Perm,
} from './tfjs-layout.js';
import { GELU_OP, GELU_TANH_INNER } from './tfjs-rewrite.js';

export type Handler = (node: Node, e: Emitter) => void;

const F32 = { T: tfAttr.float32 };
const out = (n: Node) => n.outputs[0];
const unsupported = (n: Node, why: string) => new UnsupportedError(`${n.op}: ${why}`, n.name);
const f32 = (t: Tensor) => tensor('float32', t.shape, Float32Array.from(toFloat32(t)));
const attrString = (n: Node, name: string, fallback: string) => {
  const a = n.attrs[name];
  return a?.kind === 'string' ? a.value : fallback;
};

// --- elementwise ops with ONNX broadcasting ----------------------------------------------------

/**
 * The layout an elementwise op runs in: that of its first full-rank activation, if every
 * lower-rank activation can be aligned to it by trailing broadcasting; otherwise logical order.
 */
function elementwiseLayout(e: Emitter, inputs: readonly string[], rank: number): Perm {
  const acts = inputs.filter((v) => !e.isConst(v)).map((v) => e.get(v));
  const lead = acts.find((v) => v.shape.length === rank);
  if (!lead) return identity(rank);
  const fits = acts.every((v) => lead.perm.slice(rank - v.shape.length).every((a) => a >= rank - v.shape.length));
  return fits ? lead.perm : identity(rank);
}

function operands(e: Emitter, inputs: readonly string[], perm: Perm, rank: number): string[] {
  return inputs.map((v) => {
    if (e.isConst(v)) return e.constIn(v, perm, rank);
    const k = e.shape(v).length;
    return e.input(v, perm.slice(rank - k).map((a) => a - (rank - k)));
  });
}

/** Emits `tfOp` over `inputs` (values) defining `output`; the TF node is named after `output`. */
function elementwise(e: Emitter, tfOp: string, inputs: readonly string[], output: string, name = e.nameFor(output)): void {
  const shape = inputs.map((v) => e.shape(v)).reduce(broadcastShapes);
  const perm = elementwiseLayout(e, inputs, shape.length);
  e.define(output, e.op(tfOp, name, operands(e, inputs, perm, shape.length), F32), perm, shape);
}

const binary = (tfOp: string): Handler => (n, e) => elementwise(e, tfOp, n.inputs.slice(0, 2), out(n));
const unary = (tfOp: string): Handler => (n, e) => elementwise(e, tfOp, [n.inputs[0]], out(n));

/** Identity-like ops: the output is the input, no TF op. */
const alias: Handler = (n, e) => {
  const c = e.constant(n.inputs[0]);
  if (c) e.consts.set(out(n), c);
  else {
    const v = e.get(n.inputs[0]);
    e.define(out(n), v.ref, v.perm, v.shape);
  }
};

/** Pow by a constant exponent becomes the cheaper unary op when there is one. */
const pow: Handler = (n, e) => {
  const c = e.constant(n.inputs[1]);
  const p = c && numel(c.shape) === 1 ? toFloat32(c)[0] : undefined;
  const special: Record<string, string> = { '2': 'Square', '0.5': 'Sqrt', '-0.5': 'Rsqrt', '-1': 'Reciprocal' };
  if (p === 1) return alias(n, e);
  if (p !== undefined && special[String(p)]) return elementwise(e, special[String(p)], [n.inputs[0]], out(n));
  elementwise(e, 'Pow', n.inputs.slice(0, 2), out(n));
};

// --- reductions ----------------------------------------------------------------------------------

function reduceAxes(n: Node, e: Emitter, rank: number): number[] {
  let axes = n.attrs.axes ? attrInts(n, 'axes') : undefined;
  if (axes === undefined && n.inputs[1]) {
    const c = e.constant(n.inputs[1]);
    if (!c) throw unsupported(n, 'axes must be a constant');
    axes = Array.from(toFloat32(c));
  }
  if (axes === undefined || axes.length === 0) return attrInt(n, 'noop_with_empty_axes', 0) ? [] : identity(rank);
  return [...new Set(normAxes(axes, rank))].sort((a, b) => a - b);
}

/** Reduces logical `axes` of `x` (physical axes follow the layout) and defines `output`. */
function reduce(e: Emitter, tfOp: string, x: string, axes: readonly number[], keep: boolean, output: string, name = e.nameFor(output)): void {
  const v = e.get(x);
  const phys = physicalAxes(axes, v.perm);
  const ref = e.op(tfOp, name, [v.ref, e.ints(`${name}/axes`, phys)], { ...F32, Tidx: tfAttr.int32, keep_dims: tfAttr.bool(keep) });
  const shape = v.shape.map((d, i) => (axes.includes(i) ? 1 : d)).filter((_, i) => keep || !axes.includes(i));
  e.define(output, ref, keep ? v.perm : dropAxes(v.perm, axes), shape);
}

const reduction = (tfOp: string): Handler => (n, e) => {
  const rank = e.shape(n.inputs[0]).length;
  const axes = reduceAxes(n, e, rank);
  if (axes.length === 0) return alias(n, e);
  reduce(e, tfOp, n.inputs[0], axes, attrInt(n, 'keepdims', 1) !== 0, out(n));
};

// --- reshaping (in logical order) ----------------------------------------------------------------

/** Reshape to a logical shape (−1 allowed once); the input is brought to logical order first. */
function reshapeTo(e: Emitter, x: string, shape: readonly number[], output: string, n: Node): void {
  const c = e.constant(x);
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  if (c) {
    const total = numel(c.shape);
    e.consts.set(output, tensor(c.dtype, shape.map((d) => (d === -1 ? total / known : d)), c.data));
    return;
  }
  if (shape.filter((d) => d === -1).length > 1) throw unsupported(n, `cannot reshape to [${shape}] with more than one unknown size`);
  const v = e.get(x);
  const name = e.nameFor(output);
  // When only size-1 axes are out of place (e.g. pooled [N, C, 1, 1] stored NHWC) no transpose is needed.
  const src = sameElementOrder(v.shape, v.perm) ? v.ref : e.input(x, identity(v.shape.length));
  const ref = e.op('Reshape', name, [src, e.ints(`${name}/shape`, shape)], { ...F32, Tshape: tfAttr.int32 });
  // Record the size −1 stands for when the input's size is known.
  const total = v.shape.includes(-1) ? -1 : numel(v.shape);
  e.define(output, ref, identity(shape.length), shape.map((d) => (d === -1 && total !== -1 ? total / known : d)));
}

/** ONNX shape semantics: 0 copies the input size; unknown sizes become −1 (TF infers one). */
function resolveShape(n: Node, inShape: readonly number[], target: readonly number[]): number[] {
  const allowZero = attrInt(n, 'allowzero', 0) !== 0;
  return target.map((d, i) => (d === 0 && !allowZero ? inShape[i] : d));
}

const reshape: Handler = (n, e) => {
  const s = e.constant(n.inputs[1]);
  if (!s) throw unsupported(n, 'the target shape must be a constant');
  reshapeTo(e, n.inputs[0], resolveShape(n, e.shape(n.inputs[0]), Array.from(toFloat32(s))), out(n), n);
};

const flatten: Handler = (n, e) => {
  const shape = e.shape(n.inputs[0]);
  const axis = normAxes([attrInt(n, 'axis', 1)], shape.length)[0];
  const size = (ds: readonly number[]) => (ds.includes(-1) ? -1 : ds.reduce((a, b) => a * b, 1));
  reshapeTo(e, n.inputs[0], [size(shape.slice(0, axis)), size(shape.slice(axis))], out(n), n);
};

function axesOf(n: Node, e: Emitter): number[] | undefined {
  if (n.attrs.axes) return [...attrInts(n, 'axes')];
  const c = n.inputs[1] ? e.constant(n.inputs[1]) : undefined;
  return c ? Array.from(toFloat32(c)) : undefined;
}

const squeeze: Handler = (n, e) => {
  const shape = e.shape(n.inputs[0]);
  const axes = normAxes(axesOf(n, e) ?? shape.flatMap((d, i) => (d === 1 ? [i] : [])), shape.length);
  reshapeTo(e, n.inputs[0], shape.filter((_, i) => !axes.includes(i)), out(n), n);
};

const unsqueeze: Handler = (n, e) => {
  const shape = [...e.shape(n.inputs[0])];
  const axes = axesOf(n, e);
  if (!axes) throw unsupported(n, 'axes must be constant');
  const rank = shape.length + axes.length;
  for (const a of normAxes(axes, rank).sort((x, y) => x - y)) shape.splice(a, 0, 1);
  reshapeTo(e, n.inputs[0], shape, out(n), n);
};

/** Transpose costs nothing: the output is the same tensor seen with another layout. */
const transpose: Handler = (n, e) => {
  const rank = e.shape(n.inputs[0]).length;
  const perm = n.attrs.perm ? attrInts(n, 'perm') : identity(rank).reverse();
  const c = e.constant(n.inputs[0]);
  if (c) {
    e.consts.set(out(n), transposeTensor(c, perm));
    return;
  }
  const v = e.get(n.inputs[0]);
  e.define(out(n), v.ref, transposedLayout(v.perm, perm), perm.map((a) => v.shape[a]));
};

// --- convolution and matrix products -------------------------------------------------------------

/** A following Add of a constant that varies only along `axis`: it can ride along as a fused bias. */
function fusableBias(e: Emitter, value: string, rank: number, axis: number, channels: number): { node: Node; values: Float32Array } | undefined {
  const add = e.soleConsumer(value);
  if (!add || add.op !== 'Add' || add.inputs.length !== 2 || add.inputs[0] === add.inputs[1]) return undefined;
  const c = e.constant(add.inputs[0] === value ? add.inputs[1] : add.inputs[0]);
  if (!c || c.shape.length > rank) return undefined;
  const padded = [...new Array<number>(rank - c.shape.length).fill(1), ...c.shape];
  if (padded.some((d, i) => i !== axis && d !== 1) || (padded[axis] !== channels && padded[axis] !== 1)) return undefined;
  const src = toFloat32(c);
  return { node: add, values: padded[axis] === channels ? Float32Array.from(src) : new Float32Array(channels).fill(src[0]) };
}

const fusedAttrs = (withBias: boolean): Record<string, TfAttr> =>
  withBias ? { fused_ops: tfAttr.strs(['BiasAdd']), num_args: tfAttr.int(1), epsilon: tfAttr.float(0) } : {};

/** Pads as TF's SAME would choose them for one spatial axis, when they can be known. */
function samePads(size: number, kernel: number, stride: number, dilation: number): [number, number] | undefined {
  const k = (kernel - 1) * dilation + 1;
  if (size === -1 && stride !== 1) return undefined;
  const total = size === -1 ? k - 1 : Math.max((Math.ceil(size / stride) - 1) * stride + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

const conv: Handler = (n, e) => {
  const [x, w, b] = n.inputs;
  const W = e.constant(w);
  if (!W) throw unsupported(n, 'the weight must be a constant');
  if (W.shape.length !== 4) throw unsupported(n, `only 2-D convolutions are supported (weight rank ${W.shape.length})`);
  const [cout, cinPerGroup, kh, kw] = W.shape;
  const inShape = e.shape(x);
  const cin = inShape[1];
  const group = attrInt(n, 'group', 1);
  const [sh, sw] = attrInts(n, 'strides', [1, 1]);
  const [dh, dw] = attrInts(n, 'dilations', [1, 1]);
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  const sameH = samePads(inShape[2], kh, sh, dh);
  const sameW = samePads(inShape[3], kw, sw, dw);
  let pads: number[];
  if (autoPad === 'VALID') pads = [0, 0, 0, 0];
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    if (!sameH || !sameW) throw unsupported(n, `${autoPad} with unknown spatial size and stride > 1`);
    pads = autoPad === 'SAME_UPPER' ? [sameH[0], sameW[0], sameH[1], sameW[1]] : [sameH[1], sameW[1], sameH[0], sameW[0]];
  } else pads = [...attrInts(n, 'pads', [0, 0, 0, 0])];
  if (pads.some((p) => p < 0)) throw unsupported(n, 'negative pads');

  const name = e.nameFor(out(n));
  let input = e.input(x, NHWC);
  let padding = 'VALID';
  if (pads.some((p) => p > 0)) {
    const same = sameH && sameW && pads[0] === sameH[0] && pads[2] === sameH[1] && pads[1] === sameW[0] && pads[3] === sameW[1];
    if (same) padding = 'SAME';
    else {
      // Explicit zero padding, then a VALID convolution (TF.js's EXPLICIT padding is not on every backend).
      const paddings = [0, 0, pads[0], pads[2], pads[1], pads[3], 0, 0];
      input = e.op('Pad', `${name}/pad`, [input, e.ints(`${name}/paddings`, paddings, [4, 2])], { ...F32, Tpaddings: tfAttr.int32 });
    }
  }
  // Bias: the conv's own (constant or not), plus a following per-channel constant Add.
  const extra = fusableBias(e, out(n), 4, 1, cout);
  const B = b ? e.constant(b) : undefined;
  let bias: string | undefined;
  let output = out(n);
  if (extra && (!b || B)) {
    const sum = extra.values;
    if (B) toFloat32(B).forEach((v, i) => (sum[i] += v));
    bias = e.constTensor(`${b || w}/bias`, tensor('float32', [cout], sum));
    e.fused.add(extra.node);
    output = out(extra.node);
  } else if (b) bias = B ? e.constTensor(b, f32(B)) : e.input(b, [0]);

  const attrs = { ...F32, strides: tfAttr.ints([1, sh, sw, 1]), padding: tfAttr.str(padding), data_format: tfAttr.str('NHWC'), dilations: tfAttr.ints([1, dh, dw, 1]) };
  let op: string;
  let filter: string;
  if (group === 1) {
    filter = e.constTensor(w, transposeTensor(f32(W), [2, 3, 1, 0]), { channelDims: 1 }); // OIHW → HWIO
    op = bias ? '_FusedConv2D' : 'Conv2D';
  } else if (group === cin && cinPerGroup === 1 && cout % cin === 0) {
    // Depthwise: output channel c·m + j reads input channel c → filter [kh, kw, C, m].
    const m = cout / cin;
    filter = e.constTensor(w, transposeTensor(tensor('float32', [cin, m, kh, kw], toFloat32(W)), [2, 3, 0, 1]), { channelDims: 2 });
    op = bias ? 'FusedDepthwiseConv2dNative' : 'DepthwiseConv2dNative';
  } else throw unsupported(n, `group=${group} with ${cin} input channels (only 1 or depthwise)`);

  const ref = e.op(op, output === out(n) ? name : e.nameFor(output), bias ? [input, filter, bias] : [input, filter], { ...attrs, ...fusedAttrs(!!bias) });
  const size = (d: number, k: number, s: number, dil: number, p0: number, p1: number) => (d === -1 ? -1 : Math.floor((d + p0 + p1 - (k - 1) * dil - 1) / s) + 1);
  e.define(output, ref, NHWC, [inShape[0], cout, size(inShape[2], kh, sh, dh, pads[0], pads[2]), size(inShape[3], kw, sw, dw, pads[1], pads[3])]);
};

/**
 * MatMul by a constant [K, N] matrix, with a following bias Add fused in. On 4-D activations it is
 * a 1×1 _FusedConv2D: the wasm backend runs that through XNNPACK's convolution as one GEMM over all
 * N·H·W rows (12.8 ms for [1,56,56,96]×[96,384]), where a 4-D BatchMatMul broadcasts the matrix
 * over N·H batches of W rows (125 ms) and a 2-D _FusedMatMul needs two Reshapes (15.8 ms); on the
 * cpu backend all three are within 10%. 2-D activations use _FusedMatMul; other ranks reshape.
 */
const matmul: Handler = (n, e) => {
  const [a, b] = n.inputs;
  const W = e.constant(b);
  if (!W || W.shape.length !== 2 || e.isConst(a)) return batchMatMul(n, e);
  const [K, N] = W.shape;
  const x = e.get(a);
  const rank = x.shape.length;
  if (rank < 2) throw unsupported(n, 'a rank-1 activation');
  const extra = fusableBias(e, out(n), rank, rank - 1, N);
  const output = extra ? out(extra.node) : out(n);
  if (extra) e.fused.add(extra.node);
  const name = e.nameFor(output);
  const bias = extra ? [e.constTensor(`${b}/bias`, tensor('float32', [N], extra.values))] : [];
  const outShape = [...x.shape.slice(0, -1), N];
  if (rank === 4) {
    const perm = hasAxesLast(x.perm, [3]) ? x.perm : identity(4);
    const filter = e.constTensor(b, tensor('float32', [1, 1, K, N], toFloat32(W)), { channelDims: 1 });
    const ref = e.op(extra ? '_FusedConv2D' : 'Conv2D', name, [e.input(a, perm), filter, ...bias], {
      ...F32,
      strides: tfAttr.ints([1, 1, 1, 1]),
      padding: tfAttr.str('VALID'),
      data_format: tfAttr.str('NHWC'),
      dilations: tfAttr.ints([1, 1, 1, 1]),
      ...fusedAttrs(!!extra),
    });
    return e.define(output, ref, perm, outShape);
  }
  const weight = e.constTensor(b, f32(W), { channelDims: 1 });
  const mm = (input: string, opName: string) =>
    e.op(extra ? '_FusedMatMul' : 'MatMul', opName, [input, weight, ...bias], {
      ...F32,
      transpose_a: tfAttr.bool(false),
      transpose_b: tfAttr.bool(false),
      ...fusedAttrs(!!extra),
    });
  if (rank === 2) return e.define(output, mm(e.input(a, identity(2)), name), identity(2), outShape);
  if (x.shape.slice(1).includes(-1)) throw unsupported(n, `rank-${rank} activation with unknown inner sizes`);
  const flat = e.op('Reshape', `${name}/flatten`, [e.input(a, identity(rank)), e.ints(`${name}/flat_shape`, [-1, K])], { ...F32, Tshape: tfAttr.int32 });
  const y = mm(flat, `${name}/matmul`);
  const ref = e.op('Reshape', name, [y, e.ints(`${name}/shape`, [-1, ...outShape.slice(1)])], { ...F32, Tshape: tfAttr.int32 });
  e.define(output, ref, identity(rank), outShape);
};

/** The general case: both operands in logical order, numpy batch broadcasting. */
function batchMatMul(n: Node, e: Emitter): void {
  const [a, b] = n.inputs;
  const sa = e.shape(a);
  const sb = e.shape(b);
  if (sa.length < 2 || sb.length < 2) throw unsupported(n, 'rank-1 operands');
  const arg = (v: string) => (e.isConst(v) ? e.constTensor(v, f32(e.constant(v)!)) : e.input(v, identity(e.shape(v).length)));
  const ref = e.op('BatchMatMulV2', e.nameFor(out(n)), [arg(a), arg(b)], { ...F32, adj_x: tfAttr.bool(false), adj_y: tfAttr.bool(false) });
  const batch = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2));
  const shape = [...batch, sa[sa.length - 2], sb[sb.length - 1]];
  e.define(out(n), ref, identity(shape.length), shape);
}

/** Gemm: alpha·op(A)·op(B) + beta·C with 2-D A. Constant B is pre-transposed and pre-scaled. */
const gemm: Handler = (n, e) => {
  const [a, b, c] = n.inputs;
  const alpha = attrFloat(n, 'alpha', 1);
  const beta = attrFloat(n, 'beta', 1);
  const transA = attrInt(n, 'transA', 0) !== 0;
  const transB = attrInt(n, 'transB', 0) !== 0;
  const sa = e.shape(a);
  const M = transA ? sa[1] : sa[0];
  const Bc = e.constant(b);
  let weight: string;
  let N: number;
  let scaleAfter = 1;
  if (Bc) {
    let t = f32(Bc);
    if (transB) t = transposeTensor(t, [1, 0]);
    if (alpha !== 1) t = tensor('float32', t.shape, toFloat32(t).map((v) => v * alpha));
    N = t.shape[1];
    weight = e.constTensor(b, t, { channelDims: 1 });
  } else {
    N = e.shape(b)[transB ? 0 : 1];
    weight = e.input(b, identity(2));
    scaleAfter = alpha;
  }
  // C becomes a fused bias when it is a constant row vector; otherwise a separate add.
  const Cc = c ? e.constant(c) : undefined;
  let bias: Float32Array | undefined;
  if (Cc && numel(Cc.shape) === N && Cc.shape.length <= 2 && (Cc.shape.length < 2 || Cc.shape[0] === 1) && scaleAfter === 1) {
    bias = toFloat32(Cc).map((v) => v * beta);
  }
  const extra = !c ? fusableBias(e, out(n), 2, 1, N) : undefined;
  if (extra) {
    bias = extra.values;
    e.fused.add(extra.node);
  }
  const output = extra ? out(extra.node) : out(n);
  const rest = !!c && !bias;
  const last = !rest && scaleAfter === 1;
  const name = last ? e.nameFor(output) : e.nameFor(output, 'matmul');
  let ref = e.op(bias ? '_FusedMatMul' : 'MatMul', name, [e.input(a, identity(2)), weight, ...(bias ? [e.constTensor(`${c || b}/bias`, tensor('float32', [N], bias))] : [])], {
    ...F32,
    transpose_a: tfAttr.bool(transA),
    transpose_b: tfAttr.bool(!Bc && transB),
    ...fusedAttrs(!!bias),
  });
  const shape = [M, N];
  if (scaleAfter !== 1) ref = e.op('Mul', rest ? e.nameFor(output, 'alpha') : e.nameFor(output), [ref, e.scalar(scaleAfter)], F32);
  if (rest) {
    const scaled = `${output}/beta_c`;
    if (beta !== 1) elementwise(e, 'Mul', [c, scalarValue(e, beta)], scaled, e.nameFor(output, 'beta'));
    e.define(`${output}/ab`, ref, identity(2), shape);
    return elementwise(e, 'AddV2', [`${output}/ab`, beta !== 1 ? scaled : c], output);
  }
  e.define(output, ref, identity(2), shape);
};

/** Registers a scalar constant under a value name so that elementwise() can read it. */
function scalarValue(e: Emitter, x: number): string {
  const name = `scalar:${x}`;
  if (!e.isConst(name)) e.consts.set(name, tensor('float32', [], Float32Array.of(x)));
  return name;
}

// --- normalisation -------------------------------------------------------------------------------

const allEqual = (t: Tensor | undefined, x: number) => !!t && toFloat32(t).every((v) => v === x);

/**
 * LayerNormalization over axes [axis, rank): TF.js has no such op. With the normalised axes
 * physically last: d = x − Mean(x); y = d·Rsqrt(Mean(d²) + ε), then ·Scale and +B unless they are
 * ones and zeros (as after affine folding). Subtracting once and squaring d avoids the second
 * subtraction SquaredDifference would do.
 */
const layerNorm: Handler = (n, e) => {
  const [x, s, b] = n.inputs;
  const shape = e.shape(x);
  const rank = shape.length;
  const axis = normAxes([attrInt(n, 'axis', -1)], rank)[0];
  const eps = attrFloat(n, 'epsilon', 1e-5);
  const axes = identity(rank).slice(axis);
  const v = e.get(x);
  const perm = hasAxesLast(v.perm, axes) ? v.perm : axesLast(v.perm, axes);
  const scale = s && !allEqual(e.constant(s), 1);
  const shift = !!b && !allEqual(e.constant(b), 0);
  const o = out(n);
  const base = e.nameFor(o, 'ln');
  const phys = e.ints(`${base}/axes`, physicalAxes(axes, perm));
  const input = e.input(x, perm);
  const keep = { ...F32, Tidx: tfAttr.int32, keep_dims: tfAttr.bool(true) };
  const mean = e.op('Mean', `${base}/mean`, [input, phys], keep);
  const d = e.op('Sub', `${base}/centered`, [input, mean], F32);
  const sq = e.op('Square', `${base}/square`, [d], F32);
  const variance = e.op('Mean', `${base}/variance`, [sq, phys], keep);
  const ve = e.op('AddV2', `${base}/variance_eps`, [variance, e.scalar(eps)], F32);
  const rstd = e.op('Rsqrt', `${base}/rstd`, [ve], F32);
  const normed = `${o}/normalized`;
  e.define(normed, e.op('Mul', !scale && !shift ? e.nameFor(o) : `${base}/normalized`, [d, rstd], F32), perm, shape);
  if (!scale && !shift) return alias({ ...n, inputs: [normed] }, e);
  const scaled = scale ? `${o}/scaled` : normed;
  if (scale) elementwise(e, 'Mul', [normed, s], shift ? scaled : o, shift ? `${base}/scaled` : e.nameFor(o));
  if (shift) elementwise(e, 'AddV2', [scaled, b], o);
};

/** Inference BatchNormalization as one multiply-add with folded constants, per channel (axis 1). */
const batchNorm: Handler = (n, e) => {
  const [x, s, b, m, v] = n.inputs;
  const consts = [s, b, m, v].map((name) => e.constant(name));
  if (consts.some((c) => !c)) throw unsupported(n, 'scale, bias, mean and variance must be constants');
  const [gamma, beta, mean, variance] = consts.map((c) => toFloat32(c!));
  const eps = attrFloat(n, 'epsilon', 1e-5);
  const rank = e.shape(x).length;
  const C = gamma.length;
  const k = new Float32Array(C);
  const t = new Float32Array(C);
  for (let i = 0; i < C; i++) {
    k[i] = gamma[i] / Math.sqrt(variance[i] + eps);
    t[i] = beta[i] - mean[i] * k[i];
  }
  const channelShape = [C, ...new Array<number>(rank - 2).fill(1)];
  const o = out(n);
  e.consts.set(`${o}/k`, tensor('float32', channelShape, k));
  e.consts.set(`${o}/t`, tensor('float32', channelShape, t));
  elementwise(e, 'Mul', [x, `${o}/k`], `${o}/scaled`, e.nameFor(o, 'scale'));
  elementwise(e, 'AddV2', [`${o}/scaled`, `${o}/t`], o);
};

/** Softmax/LogSoftmax run over the physically last axis; `axis` is moved there if needed. */
const softmax = (tfOp: string): Handler => (n, e) => {
  const rank = e.shape(n.inputs[0]).length;
  const opset = e.graph.opsets[''] ?? 17;
  const axis = normAxes([attrInt(n, 'axis', opset >= 13 ? -1 : 1)], rank)[0];
  if (opset < 13 && axis !== rank - 1) throw unsupported(n, `opset ${opset} softmax over a flattened axis ${axis}`);
  const v = e.get(n.inputs[0]);
  const perm = v.perm[rank - 1] === axis ? v.perm : axesLast(v.perm, [axis]);
  e.define(out(n), e.op(tfOp, e.nameFor(out(n)), [e.input(n.inputs[0], perm)], F32), perm, v.shape);
};

const concat: Handler = (n, e) => {
  const rank = e.shape(n.inputs[0]).length;
  const axis = normAxes([attrInt(n, 'axis')], rank)[0];
  const lead = n.inputs.find((v) => !e.isConst(v));
  const perm = lead ? e.get(lead).perm : identity(rank);
  const refs = n.inputs.map((v) => (e.isConst(v) ? e.constTensor(v, transposeTensor(f32(e.constant(v)!), perm)) : e.input(v, perm)));
  const name = e.nameFor(out(n));
  const axisRef = e.constTensor(`${name}/axis`, tensor('int32', [], Int32Array.of(inverse(perm)[axis])));
  const shape = [...e.shape(n.inputs[0])];
  shape[axis] = n.inputs.map((v) => e.shape(v)[axis]).reduce((a, b) => (a === -1 || b === -1 ? -1 : a + b));
  e.define(out(n), e.op('ConcatV2', name, [...refs, axisRef], { ...F32, N: tfAttr.int(refs.length), Tidx: tfAttr.int32 }), perm, shape);
};

// --- GELU ----------------------------------------------------------------------------------------

/**
 * out_scale·gelu(x) from u = in_scale·x (see tfjs-rewrite.ts). Exact: k·u·(1 + erf(u/(in_scale·√2)))
 * with k = out_scale/(2·in_scale); both factors are 1 after folding into neighbours, leaving
 * Erf, AddV2, Mul. Tanh approximation, written with 1 + tanh(z) = 2σ(2z):
 * gelu(x) ≈ x·σ(c₁(x + 0.044715x³)), c₁ = 2√(2/π), i.e. u·σ((c₁/a)·u·(1 + (0.044715/a²)·u²))/a.
 */
function emitGelu(n: Node, e: Emitter, approximate: 'erf' | 'tanh', a: number, b: number): void {
  const u = n.inputs[0];
  const o = out(n);
  const steps: [string, string[]][] = [];
  const val = (i: number) => `${o}/g${i}`;
  // Each step defines val(i) from earlier values; the last one is renamed to the output.
  const add = (op: string, inputs: string[]) => {
    steps.push([op, inputs]);
    return val(steps.length - 1);
  };
  const one = (x: number) => Math.abs(x - 1) < 1e-7;
  let y: string;
  if (approximate === 'erf') {
    const c = 1 / (a * Math.SQRT2);
    const er = add('Erf', [one(c) ? u : add('Mul', [u, scalarValue(e, c)])]);
    y = add('Mul', [u, add('AddV2', [er, scalarValue(e, 1)])]);
    const k = b / (2 * a);
    if (!one(k)) y = add('Mul', [y, scalarValue(e, k)]);
  } else {
    const c2 = 0.044715 / (a * a);
    const inner = add('Mul', [u, add('AddV2', [add('Mul', [add('Square', [u]), scalarValue(e, c2)]), scalarValue(e, 1)])]);
    const c1 = GELU_TANH_INNER / a;
    y = add('Mul', [u, add('Sigmoid', [one(c1) ? inner : add('Mul', [inner, scalarValue(e, c1)])])]);
    const k = b / a;
    if (!one(k)) y = add('Mul', [y, scalarValue(e, k)]);
  }
  steps.forEach(([op, inputs], i) => {
    const last = i === steps.length - 1;
    elementwise(e, op, inputs, last ? o : val(i), last ? e.nameFor(o) : e.nameFor(o, op.toLowerCase()));
  });
}

const gelu: Handler = (n, e) => {
  const source = attrString(n, 'approximate', 'none') === 'tanh' ? 'tanh' : e.options.gelu;
  emitGelu(n, e, source, attrFloat(n, 'in_scale', 1), attrFloat(n, 'out_scale', 1));
};

// --- the table -----------------------------------------------------------------------------------

export const TFJS_OPS: Readonly<Record<string, Handler>> = {
  Add: binary('AddV2'),
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  Div: binary('RealDiv'),
  Max: binary('Maximum'),
  Min: binary('Minimum'),
  Pow: pow,
  Erf: unary('Erf'),
  Sqrt: unary('Sqrt'),
  Reciprocal: unary('Reciprocal'),
  Neg: unary('Neg'),
  Abs: unary('Abs'),
  Exp: unary('Exp'),
  Log: unary('Log'),
  Tanh: unary('Tanh'),
  Sigmoid: unary('Sigmoid'),
  Relu: unary('Relu'),
  Identity: alias,
  Dropout: alias,
  Constant: () => {}, // collected as constants before emission
  Transpose: transpose,
  Reshape: reshape,
  Flatten: flatten,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Concat: concat,
  ReduceMean: reduction('Mean'),
  ReduceSum: reduction('Sum'),
  ReduceMax: reduction('Max'),
  ReduceMin: reduction('Min'),
  ReduceProd: reduction('Prod'),
  ReduceL2: reduction('EuclideanNorm'),
  GlobalAveragePool: (n, e) => reduce(e, 'Mean', n.inputs[0], identity(e.shape(n.inputs[0]).length).slice(2), true, out(n)),
  Conv: conv,
  MatMul: matmul,
  Gemm: gemm,
  LayerNormalization: layerNorm,
  BatchNormalization: batchNorm,
  Softmax: softmax('Softmax'),
  LogSoftmax: softmax('LogSoftmax'),
  Gelu: gelu,
  [GELU_OP]: gelu,
};

/** Ops whose extra outputs (beyond the first) a handler does not produce. */
export function unsupportedOutputs(n: Node, used: (value: string) => boolean): string | undefined {
  const extra = n.outputs.slice(1).filter((o) => o && used(o));
  return extra.length ? `${n.op} output ${extra.join(', ')}` : undefined;
}
