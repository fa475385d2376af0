// Computing an op on constant inputs, exactly as the runtime would, for constant folding and shape
// inference. Only ops it can reproduce bit for bit: data movement (any dtype), int64 arithmetic,
// and float32 +, −, ×, ÷, √, negation, x^1 and x^2, correctly rounded when computed in float64 and
// rounded once to float32. Erf, Tanh, general Pow… depend on the runtime's libm: undefined.

import type { Graph, Node } from './graph.js';
import { attrInt, attrInts } from './graph.js';
import { dtypeFromOnnx } from './dtypes.js';
import { floatToHalf, numel, toFloat32, type DType, type Tensor, type TensorData } from './tensor.js';

/** The tensor a Constant node produces, or undefined for forms we do not hold (sparse, strings). */
export function constantValue(node: Node): Tensor | undefined {
  const a = node.attrs;
  if (a.value?.kind === 'tensor') return a.value.value;
  if (a.value_float?.kind === 'float') return { dtype: 'float32', shape: [], data: Float32Array.of(a.value_float.value) };
  if (a.value_floats?.kind === 'floats') return { dtype: 'float32', shape: [a.value_floats.value.length], data: Float32Array.from(a.value_floats.value) };
  if (a.value_int?.kind === 'int') return { dtype: 'int64', shape: [], data: BigInt64Array.of(BigInt(a.value_int.value)) };
  if (a.value_ints?.kind === 'ints') return { dtype: 'int64', shape: [a.value_ints.value.length], data: BigInt64Array.from(a.value_ints.value.map(BigInt)) };
  return undefined;
}

/** Constant values of a graph: initializers and the outputs of Constant nodes. */
export function constantValues(graph: Graph): Map<string, Tensor> {
  const out = new Map(graph.initializers);
  for (const n of graph.nodes) {
    const t = n.op === 'Constant' && n.domain === '' ? constantValue(n) : undefined;
    if (t) out.set(n.outputs[0], t);
  }
  return out;
}

/** The output of `node` on constant `inputs`, or undefined when the op or the dtypes are not handled exactly. */

export function evaluate(node: Node, inputs: readonly (Tensor | undefined)[]): Tensor | undefined {
  const [x] = inputs;
  const ints = (i: number) => (inputs[i] ? Array.from(inputs[i]!.data as BigInt64Array, Number) : undefined);
  switch (node.op) {
    case 'Identity':
      return x;
    case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Pow':
      return x && inputs[1] ? binary(node.op, x, inputs[1]) : undefined;
    case 'Sqrt': case 'Neg': case 'Reciprocal': case 'Abs':
      return x ? unary(node.op, x) : undefined;
    case 'Cast':
      return x ? cast(x, dtypeFromOnnx(attrInt(node, 'to'))) : undefined;
    case 'Transpose': {
      if (!x) return undefined;
      const perm = node.attrs.perm ? attrInts(node, 'perm') : x.shape.map((_, i) => x.shape.length - 1 - i);
      return transpose(x, perm);
    }
    case 'Reshape': {
      const target = ints(1);
      if (!x || !target) return undefined;
      const allowZero = attrInt(node, 'allowzero', 0) === 1;
      const shape = target.map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
      const hole = shape.indexOf(-1);
      if (hole >= 0) shape[hole] = numel(x.shape) / numel(shape.filter((_, i) => i !== hole));
      return withShape(x, shape);
    }
    case 'Flatten': {
      if (!x) return undefined;
      const axis = norm(attrInt(node, 'axis', 1), x.shape.length);
      return withShape(x, [numel(x.shape.slice(0, axis)), numel(x.shape.slice(axis))]);
    }
    case 'Squeeze': case 'Unsqueeze': {
      if (!x) return undefined;
      const axes = node.attrs.axes ? [...attrInts(node, 'axes')] : ints(1);
      if (node.op === 'Squeeze') {
        const drop = axes ? new Set(axes.map((a) => norm(a, x.shape.length))) : undefined;
        return withShape(x, x.shape.filter((d, i) => (drop ? !drop.has(i) : d !== 1)));
      }
      if (!axes) return undefined;
      const rank = x.shape.length + axes.length;
      const at = new Set(axes.map((a) => norm(a, rank)));
      const shape: number[] = [];
      for (let i = 0, j = 0; i < rank; i++) shape.push(at.has(i) ? 1 : x.shape[j++]);
      return withShape(x, shape);
    }
    case 'Shape':
      return x ? shapeOf(node, x.shape) : undefined;
    case 'Gather': {
      const idx = inputs[1];
      if (!x || !idx || (idx.dtype !== 'int64' && idx.dtype !== 'int32')) return undefined;
      return gather(x, Array.from(idx.data as ArrayLike<number | bigint>, Number), idx.shape, norm(attrInt(node, 'axis', 0), x.shape.length));
    }
    case 'Concat': {
      const parts = inputs.filter((t): t is Tensor => t !== undefined);
      return parts.length ? concat(parts, norm(attrInt(node, 'axis'), parts[0].shape.length)) : undefined;
    }
    case 'Slice': {
      const [starts, ends] = [ints(1), ints(2)];
      if (!x || !starts || !ends) return undefined;
      return slice(x, starts, ends, ints(3) ?? starts.map((_, i) => i), ints(4) ?? starts.map(() => 1));
    }
    case 'Expand': {
      const target = ints(1);
      if (!x || !target) return undefined;
      const rank = Math.max(x.shape.length, target.length);
      const shape = Array.from({ length: rank }, (_, i) => {
        const a = x.shape[x.shape.length - rank + i] ?? 1;
        const b = target[target.length - rank + i] ?? 1;
        return a === 1 ? b : a;
      });
      return broadcastTo(x, shape);
    }
    case 'ConstantOfShape': {
      const shape = ints(0);
      const v = node.attrs.value;
      const fill: Tensor = v?.kind === 'tensor' ? v.value : { dtype: 'float32', shape: [1], data: new Float32Array(1) };
      const scalar = withShape(fill, []);
      return shape && scalar ? broadcastTo(scalar, shape) : undefined;
    }
    default:
      return undefined;
  }
}

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

export function shapeOf(node: Node, shape: readonly number[]): Tensor {
  const r = shape.length;
  const clamp = (v: number) => Math.min(Math.max(norm(v, r), 0), r);
  const dims = shape.slice(clamp(attrInt(node, 'start', 0)), clamp(attrInt(node, 'end', r)));
  return { dtype: 'int64', shape: [dims.length], data: BigInt64Array.from(dims.map(BigInt)) };
}

function withShape(t: Tensor, shape: readonly number[]): Tensor | undefined {
  if (shape.some((d) => !Number.isInteger(d) || d < 0) || numel(shape) !== t.data.length) return undefined;
  return { dtype: t.dtype, shape: [...shape], data: t.data };
}

function alloc(like: TensorData, n: number): TensorData {
  return new (like.constructor as new (n: number) => TensorData)(n);
}

/** Row-major strides. */
function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let i = shape.length - 1, acc = 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * Builds a tensor of `shape` whose element at each multi-index comes from `src` at the flat index
 * `source(index)`: the one loop behind transpose, broadcast, gather and slice.
 */
/**
 * The evaluator does not make tensors above this many elements: folding never needs one (exports
 * compute shapes and small constants), and a hostile ConstantOfShape must not allocate its output.
 */
export const MAX_EVALUATED_ELEMENTS = 1 << 24;

function remap(src: Tensor, shape: readonly number[], source: (index: readonly number[]) => number): Tensor | undefined {
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) return undefined;
  const n = numel(shape);
  if (n > MAX_EVALUATED_ELEMENTS) return undefined;
  const out = alloc(src.data, n);
  const index = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    (out as unknown as unknown[])[k] = (src.data as unknown as unknown[])[source(index)];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return { dtype: src.dtype, shape: [...shape], data: out };
}

export function transpose(x: Tensor, perm: readonly number[]): Tensor | undefined {
  if (perm.length !== x.shape.length) return undefined;
  const s = strides(x.shape);
  return remap(x, perm.map((p) => x.shape[p]), (idx) => idx.reduce((acc, v, i) => acc + v * s[perm[i]], 0));
}

/** Numpy broadcasting of `x` to `shape` (which must be reachable from x's shape). */
function broadcastTo(x: Tensor, shape: readonly number[]): Tensor | undefined {
  const offset = shape.length - x.shape.length;
  if (offset < 0) return undefined;
  const s = strides(x.shape);
  for (let i = 0; i < x.shape.length; i++) if (x.shape[i] !== 1 && x.shape[i] !== shape[offset + i]) return undefined;
  return remap(x, shape, (idx) => {
    let at = 0;
    for (let i = 0; i < x.shape.length; i++) if (x.shape[i] !== 1) at += idx[offset + i] * s[i];
    return at;
  });
}

function gather(x: Tensor, indices: number[], indexShape: readonly number[], axis: number): Tensor | undefined {
  const d = x.shape[axis];
  const idx = indices.map((i) => (i < 0 ? i + d : i));
  if (idx.some((i) => i < 0 || i >= d)) return undefined;
  const s = strides(x.shape);
  const q = indexShape.length;
  const shape = [...x.shape.slice(0, axis), ...indexShape, ...x.shape.slice(axis + 1)];
  const is = strides(indexShape);
  return remap(x, shape, (index) => {
    let at = 0;
    for (let i = 0; i < axis; i++) at += index[i] * s[i];
    let flat = 0;
    for (let i = 0; i < q; i++) flat += index[axis + i] * is[i];
    at += idx[flat] * s[axis];
    for (let i = axis + 1; i < x.shape.length; i++) at += index[i + q - 1] * s[i];
    return at;
  });
}

function concat(parts: Tensor[], axis: number): Tensor | undefined {
  const first = parts[0];
  if (parts.some((p) => p.dtype !== first.dtype || p.shape.length !== first.shape.length)) return undefined;
  const shape = [...first.shape];
  shape[axis] = parts.reduce((n, p) => n + p.shape[axis], 0);
  const outer = numel(first.shape.slice(0, axis));
  const out = alloc(first.data, numel(shape));
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const chunk = numel(p.shape.slice(axis));
      (out as { set(a: ArrayLike<unknown>, o: number): void }).set(p.data.subarray(o * chunk, (o + 1) * chunk) as ArrayLike<unknown>, at);
      at += chunk;
    }
  }
  return { dtype: first.dtype, shape, data: out };
}

function slice(x: Tensor, starts: number[], ends: number[], axes: number[], steps: number[]): Tensor | undefined {
  if (steps.some((s) => s === 0)) return undefined;
  const begin = x.shape.map(() => 0);
  const step = x.shape.map(() => 1);
  const shape = [...x.shape];
  axes.forEach((a, i) => {
    const axis = norm(a, x.shape.length);
    const r = sliceRange(x.shape[axis], starts[i], ends[i], steps[i]);
    [begin[axis], step[axis], shape[axis]] = [r.start, r.step, r.len];
  });
  const s = strides(x.shape);
  return remap(x, shape, (idx) => idx.reduce((acc, v, i) => acc + (begin[i] + v * step[i]) * s[i], 0));
}

// ---------------------------------------------------------------------------------------------
// Arithmetic: float32 and int64 only, each computed exactly as IEEE single / two's complement.

function binary(op: string, a: Tensor, b: Tensor): Tensor | undefined {
  if (a.dtype !== b.dtype || (a.dtype !== 'float32' && a.dtype !== 'int64')) return undefined;
  const shape = broadcastShape(a.shape, b.shape);
  if (!shape) return undefined;
  const x = broadcastTo(a, shape)?.data;
  const y = broadcastTo(b, shape)?.data;
  if (!x || !y) return undefined;
  const n = numel(shape);
  if (a.dtype === 'int64') {
    const p = x as BigInt64Array;
    const q = y as BigInt64Array;
    if (op === 'Pow' || (op === 'Div' && q.includes(0n))) return undefined;
    const out = new BigInt64Array(n); // stores wrap modulo 2^64, as int64 arithmetic does
    for (let i = 0; i < n; i++) out[i] = op === 'Add' ? p[i] + q[i] : op === 'Sub' ? p[i] - q[i] : op === 'Mul' ? p[i] * q[i] : p[i] / q[i];
    return { dtype: 'int64', shape, data: out };
  }
  const p = x as Float32Array;
  const q = y as Float32Array;
  // Pow only where it is one exact operation: x^1 = x, x^2 = x·x (torch's variance in LayerNorm).
  if (op === 'Pow' && q.some((e) => e !== 1 && e !== 2)) return undefined;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = op === 'Add' ? p[i] + q[i] : op === 'Sub' ? p[i] - q[i] : op === 'Mul' ? p[i] * q[i] : op === 'Div' ? p[i] / q[i] : q[i] === 1 ? p[i] : p[i] * p[i];
  }
  return { dtype: 'float32', shape, data: out };
}

function broadcastShape(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const p = a[a.length - rank + i] ?? 1;
    const q = b[b.length - rank + i] ?? 1;
    if (p !== q && p !== 1 && q !== 1) return undefined;
    out.push(p === 1 ? q : p);
  }
  return out;
}

function unary(op: string, x: Tensor): Tensor | undefined {
  if (x.dtype === 'int64') {
    if (op !== 'Neg' && op !== 'Abs') return undefined;
    const src = x.data as BigInt64Array;
    return { dtype: 'int64', shape: x.shape, data: src.map((v) => (op === 'Neg' || v < 0n ? -v : v)) };
  }
  if (x.dtype !== 'float32') return undefined;
  const f: (v: number) => number = op === 'Sqrt' ? Math.sqrt : op === 'Neg' ? (v) => -v : op === 'Abs' ? Math.abs : (v) => 1 / v;
  return { dtype: 'float32', shape: x.shape, data: (x.data as Float32Array).map(f) };
}

/** Casts whose result is defined exactly (no NaN to int, no int beyond 2^53 to float). */
function cast(x: Tensor, to: DType | undefined): Tensor | undefined {
  if (!to) return undefined;
  if (to === x.dtype) return x;
  const n = x.data.length;
  const floatSource = x.dtype === 'float32' || x.dtype === 'float16' || x.dtype === 'bfloat16';
  const values: number[] = floatSource ? Array.from(toFloat32(x)) : x.dtype === 'int64' ? Array.from(x.data as BigInt64Array, Number) : Array.from(x.data as ArrayLike<number>);
  if (x.dtype === 'int64' && (x.data as BigInt64Array).some((v) => v > 2n ** 53n || v < -(2n ** 53n))) return undefined;
  switch (to) {
    case 'float32':
      return { dtype: to, shape: x.shape, data: Float32Array.from(values) };
    case 'float16':
      return { dtype: to, shape: x.shape, data: Uint16Array.from(values, floatToHalf) };
    case 'bool':
      return { dtype: to, shape: x.shape, data: Uint8Array.from(values, (v) => (v !== 0 ? 1 : 0)) };
    case 'int64':
    case 'int32': {
      // float → int truncates toward zero; NaN, ±∞ and out-of-range values are undefined behaviour.
      const limit = to === 'int64' ? 2 ** 63 : 2 ** 31;
      if (values.some((v) => !Number.isFinite(v) || Math.abs(Math.trunc(v)) >= limit)) return undefined;
      const ints = values.map(Math.trunc);
      const data = to === 'int64' ? BigInt64Array.from(ints, BigInt) : Int32Array.from(ints);
      return n === data.length ? { dtype: to, shape: x.shape, data } : undefined;
    }
    default:
      return undefined;
  }
}

/** ONNX Slice on one axis of size `d`: clamped start, step and the resulting length. */
export function sliceRange(d: number, start: number, end: number, step: number): { start: number; step: number; len: number } {
  if (step === 0) throw new Error('Slice step is 0');
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), d);
    e = Math.min(Math.max(e, 0), d);
  } else {
    s = Math.min(Math.max(s, 0), d - 1);
    e = Math.min(Math.max(e, -1), d - 1);
  }
  return { start: s, step, len: Math.max(0, Math.ceil((e - s) / step)) };
}
