// ONNX op → TF.js graph ops. Op support is data: TFJS_OPS maps each ONNX op to a handler that reads
// its inputs from the Emitter in the layout it needs and defines its outputs (value, layout, logical
// shape). TF op names and attributes are those tfjs-converter's op mappers accept
// (node_modules/@tensorflow/tfjs-converter/dist/operations/op_list). This file holds the
// elementwise, shape and reduction ops; layers with weights and normalisations are in tfjs-ops-nn.ts.

import { attrInt, attrInts, type Node } from '../../graph/graph.js';
import { reduceAxes } from '../../graph/ops.js';
import { numel, tensor, toFloat32 } from '../../graph/tensor.js';
import { elementwise, Emitter, F32, f32, out, tfAttr, unsupported, type Handler, type TfAttr } from './emit.js';
import { axesLast, dropAxes, identity, inverse, normAxes, physicalAxes, physicalShape, sameElementOrder, transposedLayout, transposeTensor } from './layout.js';
import { NN_OPS } from './ops-nn.js';
import { GELU_OP } from '../../passes/tfjs-gelu.js';

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

function reductionAxes(n: Node, e: Emitter, rank: number): number[] {
  const axes = reduceAxes(n, (v) => e.constant(v));
  if (axes === undefined) throw unsupported(n, 'axes must be a constant');
  if (axes === 'none') return [];
  if (axes === 'all') return identity(rank);
  return [...new Set(normAxes(axes, rank))].sort((a, b) => a - b);
}

/** Reduces logical `axes` of `x` (physical axes follow the layout) and defines `output`. */
function reduce(e: Emitter, tfOp: string, x: string, axes: readonly number[], keep: boolean, output: string, name = e.nameFor(output)): void {
  const v = e.get(x);
  const phys = physicalAxes(axes, v.perm);
  const shape = v.shape.map((d, i) => (axes.includes(i) ? 1 : d)).filter((_, i) => keep || !axes.includes(i));
  const perm = keep ? v.perm : dropAxes(v.perm, axes);
  const ref =
    spatialReduce(e, tfOp, v.ref, physicalShape(v.shape, v.perm), phys, keep, name) ??
    e.op(tfOp, name, [v.ref, e.ints(`${name}/axes`, phys)], { ...F32, Tidx: tfAttr.int32, keep_dims: tfAttr.bool(keep) });
  e.define(output, ref, perm, shape);
}

/**
 * Mean, Sum and L2 norm over H and/or W of an NHWC tensor, as AvgPool over the whole extent. TF.js's
 * cpu and wasm reductions first transpose the reduced axes innermost, which makes a spatial Mean
 * 15–30× slower than AvgPool (wasm, [1,56,56,384]: Mean 7.9 ms, EuclideanNorm 8.5 ms; AvgPool
 * 0.27 ms, Sqrt(AvgPool(x²)·HW) 0.55 ms). Needs the pooled sizes; returns undefined otherwise.
 */
function spatialReduce(e: Emitter, tfOp: string, x: string, phys: readonly number[], axes: readonly number[], keep: boolean, name: string): string | undefined {
  if (phys.length !== 4 || !['Mean', 'Sum', 'EuclideanNorm'].includes(tfOp)) return undefined;
  if (axes.length === 0 || axes.some((a) => a !== 1 && a !== 2) || axes.some((a) => phys[a] === -1)) return undefined;
  const kept = phys.filter((_, i) => !axes.includes(i));
  if (!keep && kept.filter((d) => d === -1).length > 1) return undefined;
  const count = axes.reduce((n, a) => n * phys[a], 1);
  const ksize = phys.map((d, i) => (axes.includes(i) ? d : 1));
  const steps: [string, (input: string) => string[], Record<string, TfAttr>][] = [];
  if (tfOp === 'EuclideanNorm') steps.push(['Square', (i) => [i], F32]);
  const pool = { ...F32, ksize: tfAttr.ints(ksize), strides: tfAttr.ints([1, 1, 1, 1]), padding: tfAttr.str('VALID'), data_format: tfAttr.str('NHWC') };
  steps.push(['AvgPool', (i) => [i], pool]);
  if (tfOp !== 'Mean') steps.push(['Mul', (i) => [i, e.scalar(count)], F32]);
  if (tfOp === 'EuclideanNorm') steps.push(['Sqrt', (i) => [i], F32]);
  if (!keep) steps.push(['Reshape', (i) => [i, e.ints(`${name}/shape`, kept)], { ...F32, Tshape: tfAttr.int32 }]);
  let ref = x;
  steps.forEach(([op, inputs, attrs], i) => (ref = e.op(op, i === steps.length - 1 ? name : `${name}/${op.toLowerCase()}`, inputs(ref), attrs)));
  return ref;
}

const reduction = (tfOp: string): Handler => (n, e) => {
  const rank = e.shape(n.inputs[0]).length;
  const axes = reductionAxes(n, e, rank);
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
  Softmax: softmax('Softmax'),
  LogSoftmax: softmax('LogSoftmax'),
  ...NN_OPS,
  [GELU_OP]: NN_OPS.Gelu,
};

/** Ops whose extra outputs (beyond the first) a handler does not produce. */
export function unsupportedOutputs(n: Node, used: (value: string) => boolean): string | undefined {
  const extra = n.outputs.slice(1).filter((o) => o && used(o));
  return extra.length ? `${n.op} output ${extra.join(', ')}` : undefined;
}
