// Shape and dtype inference over a Graph, for passes that must know whether a rewrite keeps a
// value's shape (a Mul by 1 that broadcasts is not an identity) and for folding Shape nodes.
//
// Unknown sizes are symbols: the graph inputs' own names ('batch'), or names derived from the
// computation ('conv(H;k=7,s=1,p=3+3,d=1)', '8*batch'). One invariant makes them useful: equal symbols
// denote equal sizes. A symbol is either a graph input's dim_param (ONNX gives equal dim_params equal
// values), a deterministic function of other symbols, or fresh for one (value, axis) pair.
//
// Small int64 tensors (shape vectors) are also tracked by content, since exports compute reshape
// targets from Shape → Gather → Unsqueeze → Concat: knowing `[batch, -1]` there gives Reshape's shape.
//
// Ops it does not know, and known ops whose shapes contradict each other, give outputs that are
// simply absent from the map: checking a model is onnxruntime's job, inference only reports facts.

import type { Dim, Graph, Node } from './graph.js';
import { attrInt, attrInts, topologicalOrder } from './graph.js';
import { dtypeFromOnnx } from './dtypes.js';
import { constantValue, sliceRange } from './evaluate.js';

import type { DType, Tensor } from './tensor.js';

export interface ValueType {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

export type Shapes = Map<string, ValueType>;



/** The rank of `value`, or undefined when inference could not tell. */
export function rankOf(shapes: Shapes, value: string): number | undefined {
  return shapes.get(value)?.shape.length;
}

/** True when every dimension is a number. */
export function isStatic(shape: readonly Dim[]): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

export function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

// ---------------------------------------------------------------------------------------------
// Symbolic dimension arithmetic

/** A product as numeric factor × symbols; symbols with parentheses are opaque. */
function factors(d: Dim): { num: number; syms: string[] } {
  if (typeof d === 'number') return { num: d, syms: [] };
  if (/[()]/.test(d)) return { num: 1, syms: [d] };
  let num = 1;
  const syms: string[] = [];
  for (const part of d.split('*')) {
    if (/^\d+$/.test(part)) num *= Number(part);
    else syms.push(part);
  }
  return { num, syms };
}

function fromFactors(num: number, syms: string[]): Dim {
  if (syms.length === 0 || num === 0) return num;
  const sorted = [...syms].sort();
  return num === 1 ? sorted.join('*') : `${num}*${sorted.join('*')}`;
}

export function dimProduct(dims: readonly Dim[]): Dim {
  let num = 1;
  const syms: string[] = [];
  for (const d of dims) {
    const f = factors(d);
    num *= f.num;
    syms.push(...f.syms);
  }
  return fromFactors(num, syms);
}

/** `total / known` when the symbols cancel exactly, else undefined. */
function dimQuotient(total: Dim, known: Dim): Dim | undefined {
  const t = factors(total);
  const k = factors(known);
  if (k.num === 0 || t.num % k.num !== 0) return undefined;
  const rest = [...t.syms];
  for (const s of k.syms) {
    const i = rest.indexOf(s);
    if (i < 0) return undefined;
    rest.splice(i, 1);
  }
  return fromFactors(t.num / k.num, rest);
}

function dimSum(dims: readonly Dim[]): Dim {
  if (dims.every((d) => typeof d === 'number')) return (dims as number[]).reduce((a, b) => a + b, 0);
  return `sum(${dims.join(',')})`;
}

/** Numpy broadcasting of two dims; undefined when two sizes contradict. */
function broadcastDim(a: Dim, b: Dim): Dim | undefined {
  if (a === b || b === 1) return a;
  if (a === 1) return b;
  if (typeof a === 'number' && typeof b === 'number') return undefined;
  if (typeof a === 'number') return a; // a valid model has the symbol equal to a (or 1)
  if (typeof b === 'number') return b;
  return `broadcast(${[a, b].sort().join(',')})`;
}

export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    const d = broadcastDim(da, db);
    if (d === undefined) return undefined;
    out.push(d);
  }
  return out;
}

const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

// ---------------------------------------------------------------------------------------------
// Inference

export function inferShapes(graph: Graph): Shapes {
  return new Inference(graph).run();
}

class Inference {
  readonly types: Shapes = new Map();
  /** Contents of small int64 tensors of rank 0 or 1, possibly symbolic. */
  readonly values = new Map<string, Dim[]>();
  constructor(private readonly graph: Graph) {}

  run(): Shapes {
    for (const v of this.graph.inputs) this.types.set(v.name, { dtype: v.dtype, shape: [...v.shape] });
    for (const [name, t] of this.graph.initializers) {
      if (this.graph.inputs.some((v) => v.name === name)) continue; // a graph input wins: its value is not fixed
      this.setConstant(name, t);
    }
    for (const node of topologicalOrder(this.graph)) {
      const contrib = node.domain === 'com.microsoft';
      if (node.domain !== '' && node.domain !== 'ai.onnx' && !contrib) continue;
      let outs: (ValueType | undefined)[] | undefined;
      try {
        outs = contrib ? this.inferContrib(node) : this.infer(node);
      } catch {
        outs = undefined; // a malformed attribute: the outputs stay unknown, like an unknown op's
      }
      if (!outs) continue;
      outs.forEach((t, i) => {
        const name = node.outputs[i];
        if (name && t) this.types.set(name, { dtype: t.dtype, shape: [...t.shape] });
      });
    }
    return this.types;
  }

  private setConstant(name: string, t: Tensor): void {
    this.types.set(name, { dtype: t.dtype, shape: [...t.shape] });
    if (t.dtype === 'int64' && t.shape.length <= 1 && t.data.length <= 64) this.values.set(name, Array.from(t.data as BigInt64Array, Number));
  }

  private type(name: string | undefined): ValueType | undefined {
    return name ? this.types.get(name) : undefined;
  }

  /** Known numeric contents of a constant int64 input, else undefined. */
  private ints(name: string | undefined): number[] | undefined {
    const v = name ? this.values.get(name) : undefined;
    return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
  }

  /** `axes` from the attribute (older opsets) or the second input (newer ones); null when absent. */
  private axes(node: Node, inputIndex: number): number[] | null | undefined {
    if (node.attrs.axes) return [...attrInts(node, 'axes')];
    const name = node.inputs[inputIndex];
    if (!name) return null;
    return this.ints(name);
  }

  private fresh(node: Node, output: number, rank: number): Dim[] {
    return Array.from({ length: rank }, (_, i) => `${node.outputs[output]}_dim${i}`);
  }

  private infer(node: Node): (ValueType | undefined)[] | undefined {
    const x = this.type(node.inputs[0]);
    const same = (t = x) => (t ? [t] : undefined);
    switch (node.op) {
      case 'Identity': case 'Erf': case 'Sqrt': case 'Relu': case 'Sigmoid': case 'Tanh': case 'Neg': case 'Abs':
      case 'Exp': case 'Log': case 'Reciprocal': case 'Gelu': case 'Softmax': {
        if (node.op === 'Identity' && node.inputs[0] && this.values.has(node.inputs[0])) this.values.set(node.outputs[0], this.values.get(node.inputs[0])!);
        return same();
      }
      case 'Dropout':
        return x ? [x, { dtype: 'bool', shape: x.shape }] : undefined;
      // QDQ: same shape; Q gives its zero point's type (uint8 without one), DQ gives its scale's
      case 'QuantizeLinear':
        return x ? [{ dtype: (node.inputs[2] && this.type(node.inputs[2])?.dtype) || 'uint8', shape: x.shape }] : undefined;
      case 'DequantizeLinear':
        return x ? [{ dtype: this.type(node.inputs[1])?.dtype ?? 'float32', shape: x.shape }] : undefined;
      case 'Cast':
      case 'CastLike': {
        const dtype = node.op === 'Cast' ? dtypeFromOnnx(attrInt(node, 'to')) : this.type(node.inputs[1])?.dtype;
        if (!x || !dtype) return undefined;
        const v = this.values.get(node.inputs[0]);
        if (v && dtype === 'int64' && (x.dtype === 'int64' || x.dtype === 'int32')) this.values.set(node.outputs[0], v);
        return [{ dtype, shape: x.shape }];
      }
      case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Pow': case 'Max': case 'Min': {
        const ts = node.inputs.map((i) => this.type(i));
        if (ts.some((t) => !t)) return undefined;
        let shape: Dim[] | undefined = [];
        for (const t of ts) shape = shape && broadcastShapes(shape, t!.shape);
        if (shape) this.propagateArithmetic(node, shape);
        return shape ? [{ dtype: ts[0]!.dtype, shape }] : undefined;
      }
      case 'Conv':
        return this.conv(node);
      case 'Transpose': {
        if (!x) return undefined;
        const perm = node.attrs.perm ? attrInts(node, 'perm') : x.shape.map((_, i) => x.shape.length - 1 - i);
        if (perm.length !== x.shape.length) return undefined;
        return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }];
      }
      case 'LayerNormalization': {
        if (!x) return undefined;
        const axis = normAxis(attrInt(node, 'axis', -1), x.shape.length);
        const stats: ValueType = { dtype: 'float32', shape: x.shape.map((d, i) => (i < axis ? d : 1)) };
        return [x, stats, stats];
      }
      case 'MatMul':
        return this.matmul(node);
      // onnxruntime's (com.microsoft): the integer product, out at its scale's float type
      case 'MatMulIntegerToFloat': {
        const product = this.matmul(node)?.[0];
        return product ? [{ dtype: this.type(node.inputs[2])?.dtype ?? 'float32', shape: product.shape }] : undefined;
      }
      case 'Gemm': {
        const b = this.type(node.inputs[1]);
        if (!x || !b || x.shape.length !== 2 || b.shape.length !== 2) return undefined;
        const m = attrInt(node, 'transA', 0) ? x.shape[1] : x.shape[0];
        const n = attrInt(node, 'transB', 0) ? b.shape[0] : b.shape[1];
        return [{ dtype: x.dtype, shape: [m, n] }];
      }
      case 'ReduceMean': case 'ReduceL2': case 'ReduceSum': case 'ReduceMax':
        return this.reduce(node);
      case 'GlobalAveragePool':
        return x && x.shape.length >= 2 ? [{ dtype: x.dtype, shape: x.shape.map((d, i) => (i < 2 ? d : 1)) }] : undefined;
      case 'Flatten': {
        if (!x) return undefined;
        const axis = normAxis(attrInt(node, 'axis', 1), x.shape.length);
        return [{ dtype: x.dtype, shape: [dimProduct(x.shape.slice(0, axis)), dimProduct(x.shape.slice(axis))] }];
      }
      case 'Reshape':
        return this.reshape(node);
      case 'Squeeze':
      case 'Unsqueeze':
        return this.squeeze(node);
      case 'Concat':
        return this.concat(node);
      case 'Shape': {
        if (!x) return undefined;
        const r = x.shape.length;
        const clamp = (v: number) => Math.min(Math.max(normAxis(v, r), 0), r);
        const dims = x.shape.slice(clamp(attrInt(node, 'start', 0)), clamp(attrInt(node, 'end', r)));
        this.values.set(node.outputs[0], dims);
        return [{ dtype: 'int64', shape: [dims.length] }];
      }
      case 'Gather':
        return this.gather(node);
      case 'Slice':
        return this.slice(node);
      case 'Constant':
        return this.constant(node);
      case 'ConstantOfShape': {
        const shape = node.inputs[0] ? this.values.get(node.inputs[0]) : undefined;
        const value = node.attrs.value;
        const dtype = value?.kind === 'tensor' ? value.value.dtype : 'float32';
        return shape ? [{ dtype, shape }] : undefined;
      }
      case 'Expand': {
        const target = node.inputs[1] ? this.values.get(node.inputs[1]) : undefined;
        const shape = x && target && broadcastShapes(x.shape, target);
        return shape ? [{ dtype: x!.dtype, shape }] : undefined;
      }
      default:
        return undefined;
    }
  }

  /** Shape arithmetic on shape vectors: `batch * 8`, `n - 1`, … kept by content where possible. */
  private propagateArithmetic(node: Node, shape: Dim[]): void {
    if (shape.length > 1 || !['Add', 'Sub', 'Mul', 'Div'].includes(node.op)) return;
    const [a, b] = node.inputs.map((i) => this.values.get(i));
    if (!a || !b) return;
    const n = Math.max(a.length, b.length);
    const at = (v: Dim[], i: number) => (v.length === 1 ? v[0] : v[i]);
    const out: Dim[] = [];
    for (let i = 0; i < n; i++) {
      const p = at(a, i);
      const q = at(b, i);
      if (typeof p === 'number' && typeof q === 'number') {
        out.push(node.op === 'Add' ? p + q : node.op === 'Sub' ? p - q : node.op === 'Mul' ? p * q : Math.trunc(p / q));
      } else if (node.op === 'Mul') out.push(dimProduct([p, q]));
      else if (node.op === 'Div' && dimQuotient(p, q) !== undefined) out.push(dimQuotient(p, q)!);
      else out.push(`${node.op.toLowerCase()}(${p},${q})`);
    }
    this.values.set(node.outputs[0], out);
  }

  // Conv: out = floor((in + pads - dilation·(k−1) − 1) / stride) + 1; SAME_* gives ceil(in / stride).
  private conv(node: Node): ValueType[] | undefined {
    const x = this.type(node.inputs[0]);
    const w = this.type(node.inputs[1]);
    if (!x || !w || x.shape.length < 3 || w.shape.length !== x.shape.length) return undefined;
    const spatial = x.shape.length - 2;
    const kernel = node.attrs.kernel_shape ? attrInts(node, 'kernel_shape') : w.shape.slice(2);
    const strides = attrInts(node, 'strides', new Array(spatial).fill(1));
    const dilations = attrInts(node, 'dilations', new Array(spatial).fill(1));
    const pads = attrInts(node, 'pads', new Array(2 * spatial).fill(0));
    const autoPad = node.attrs.auto_pad?.kind === 'string' ? node.attrs.auto_pad.value : 'NOTSET';
    const out: Dim[] = [x.shape[0], w.shape[0]];
    for (let i = 0; i < spatial; i++) {
      const d = x.shape[2 + i];
      const k = kernel[i];
      if (typeof k !== 'number') return undefined;
      const s = strides[i];
      const extent = dilations[i] * (k - 1) + 1;
      if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
        out.push(s === 1 ? d : typeof d === 'number' ? Math.ceil(d / s) : `ceil(${d}/${s})`);
        continue;
      }
      const padTotal = autoPad === 'VALID' ? 0 : pads[i] + pads[i + spatial];
      if (typeof d === 'number') out.push(Math.floor((d + padTotal - extent) / s) + 1);
      else if (s === 1 && padTotal === extent - 1) out.push(d);
      else out.push(`conv(${d};k=${k},s=${s},p=${padTotal},d=${dilations[i]})`);
    }
    return [{ dtype: x.dtype, shape: out }];
  }

  // MatMul: numpy matmul; a 1-D operand gets a dimension for the product, removed afterwards.
  /** onnxruntime's contrib ops (com.microsoft) that this project writes; others stay unknown. */
  private inferContrib(node: Node): ValueType[] | undefined {
    const a = this.type(node.inputs[0]);
    // MatMulNBits: A [..., K] times the N columns its attributes name, out in A's type
    if (node.op !== 'MatMulNBits' || !a || a.shape.length === 0) return undefined;
    return [{ dtype: a.dtype, shape: [...a.shape.slice(0, -1), attrInt(node, 'N')] }];
  }

  private matmul(node: Node): ValueType[] | undefined {
    const a = this.type(node.inputs[0]);
    const b = this.type(node.inputs[1]);
    if (!a || !b || a.shape.length === 0 || b.shape.length === 0) return undefined;
    const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
    const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
    const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2));
    if (!batch) return undefined;
    const shape = [...batch];
    if (a.shape.length > 1) shape.push(as[as.length - 2]);
    if (b.shape.length > 1) shape.push(bs[bs.length - 1]);
    return [{ dtype: a.dtype, shape }];
  }

  private reduce(node: Node): ValueType[] | undefined {
    const x = this.type(node.inputs[0]);
    if (!x) return undefined;
    const keep = attrInt(node, 'keepdims', 1) === 1;
    const axes = this.axes(node, 1);
    if (axes === undefined) return keep ? [{ dtype: x.dtype, shape: this.fresh(node, 0, x.shape.length) }] : undefined;
    const r = x.shape.length;
    let reduced: Set<number>;
    if (axes === null || axes.length === 0) {
      if (attrInt(node, 'noop_with_empty_axes', 0) === 1) return [x];
      reduced = new Set(x.shape.map((_, i) => i));
    } else reduced = new Set(axes.map((a) => normAxis(a, r)));
    const shape: Dim[] = [];
    x.shape.forEach((d, i) => {
      if (!reduced.has(i)) shape.push(d);
      else if (keep) shape.push(1);
    });
    return [{ dtype: x.dtype, shape }];
  }

  // Reshape: 0 copies the input's dimension (unless allowzero), −1 takes what is left.
  private reshape(node: Node): ValueType[] | undefined {
    const x = this.type(node.inputs[0]);
    const target = this.values.get(node.inputs[1]);
    if (!x) return undefined;
    if (!target) {
      const len = this.type(node.inputs[1])?.shape[0];
      return typeof len === 'number' ? [{ dtype: x.dtype, shape: this.fresh(node, 0, len) }] : undefined;
    }
    const allowZero = attrInt(node, 'allowzero', 0) === 1;
    const shape: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
    const hole = shape.indexOf(-1);
    if (hole >= 0) {
      const known = dimProduct(shape.filter((_, i) => i !== hole));
      shape[hole] = dimQuotient(dimProduct(x.shape), known) ?? `${node.outputs[0]}_dim${hole}`;
    }
    if (shape.some((d) => d === undefined || (typeof d === 'number' && d < 0))) return undefined;
    return [{ dtype: x.dtype, shape }];
  }

  private squeeze(node: Node): ValueType[] | undefined {
    const x = this.type(node.inputs[0]);
    if (!x) return undefined;
    const axes = this.axes(node, 1);
    if (axes === undefined) return undefined;
    const v = this.values.get(node.inputs[0]);
    if (node.op === 'Unsqueeze') {
      if (axes === null) return undefined;
      const rank = x.shape.length + axes.length;
      const at = new Set(axes.map((a) => normAxis(a, rank)));
      const shape: Dim[] = [];
      for (let i = 0, j = 0; i < rank; i++) shape.push(at.has(i) ? 1 : x.shape[j++]);
      if (v && x.shape.length === 0 && rank === 1) this.values.set(node.outputs[0], v);
      return [{ dtype: x.dtype, shape }];
    }
    // Squeeze without axes drops every 1: a symbolic size might be 1 at run time, so the rank is unknown.
    if (axes === null && !isStatic(x.shape)) return undefined;
    const drop = axes === null ? new Set(x.shape.flatMap((d, i) => (d === 1 ? [i] : []))) : new Set(axes.map((a) => normAxis(a, x.shape.length)));
    const shape = x.shape.filter((_, i) => !drop.has(i));
    if (v && shape.length === 0) this.values.set(node.outputs[0], v);
    return [{ dtype: x.dtype, shape }];
  }

  private concat(node: Node): ValueType[] | undefined {
    const ts = node.inputs.filter(Boolean).map((i) => this.type(i));
    if (ts.length === 0 || ts.some((t) => !t)) return undefined;
    const first = ts[0]!;
    const axis = normAxis(attrInt(node, 'axis'), first.shape.length);
    const shape = first.shape.map((d, i) => (i === axis ? dimSum(ts.map((t) => t!.shape[i])) : d));
    const parts = node.inputs.filter(Boolean).map((i) => this.values.get(i));
    if (first.shape.length === 1 && parts.every(Boolean)) this.values.set(node.outputs[0], parts.flatMap((p) => p!));
    return [{ dtype: first.dtype, shape }];
  }

  private gather(node: Node): ValueType[] | undefined {
    const x = this.type(node.inputs[0]);
    const idx = this.type(node.inputs[1]);
    if (!x || !idx) return undefined;
    const axis = normAxis(attrInt(node, 'axis', 0), x.shape.length);
    const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
    const data = this.values.get(node.inputs[0]);
    const indices = this.ints(node.inputs[1]);
    if (data && indices && x.shape.length === 1) {
      const picked = indices.map((i) => data[i < 0 ? i + data.length : i]);
      if (picked.every((d) => d !== undefined)) this.values.set(node.outputs[0], picked);
    }
    return [{ dtype: x.dtype, shape }];
  }

  private slice(node: Node): ValueType[] | undefined {
    const x = this.type(node.inputs[0]);
    if (!x) return undefined;
    const r = x.shape.length;
    const starts = this.ints(node.inputs[1]);
    const ends = this.ints(node.inputs[2]);
    const axes = node.inputs[3] ? this.ints(node.inputs[3]) : starts?.map((_, i) => i);
    const steps = node.inputs[4] ? this.ints(node.inputs[4]) : starts?.map(() => 1);
    if (!starts || !ends || !axes || !steps) return [{ dtype: x.dtype, shape: this.fresh(node, 0, r) }];
    const shape = [...x.shape];
    const ranges: { axis: number; start: number; step: number; len: number }[] = [];
    axes.forEach((a, i) => {
      const axis = normAxis(a, r);
      const d = x.shape[axis];
      if (typeof d !== 'number') {
        // Only the whole-axis slice is known for a symbolic size.
        const whole = starts[i] === 0 && steps[i] === 1 && ends[i] >= 2 ** 31 - 1;
        shape[axis] = whole ? d : `${node.outputs[0]}_dim${axis}`;
        return;
      }
      const range = sliceRange(d, starts[i], ends[i], steps[i]);
      shape[axis] = range.len;
      ranges.push({ axis, ...range });
    });
    const v = this.values.get(node.inputs[0]);
    if (v && r === 1 && ranges.length === 1) {
      const { start, step, len } = ranges[0];
      this.values.set(node.outputs[0], Array.from({ length: len }, (_, i) => v[start + i * step]));
    }
    return [{ dtype: x.dtype, shape }];
  }

  private constant(node: Node): ValueType[] | undefined {
    const t = constantValue(node);
    if (!t) return undefined;
    this.setConstant(node.outputs[0], t);
    return [{ dtype: t.dtype, shape: t.shape }];
  }
}
