// The ONNX ops this tool reasons about, as data: which attributes each takes and of what kind, and
// how the layout-moving passes may treat it. Import refuses ops outside this table and attributes of
// the wrong kind, so a pass never meets either; the op sets the passes use are derived from it.

import { attrInt, attrInts, type Attr, type Node } from './graph.js';
import { toFloat32, type Tensor } from './tensor.js';

type AttrKind = Attr['kind'] | 'strings' | 'graph';

/** How an op treats layout: elementwise ops commute with a Transpose, reductions follow their axes. */
type Category = 'unary' | 'arithmetic' | 'binary' | 'reduce' | 'other';

interface OpSpec {
  readonly attrs: Readonly<Record<string, AttrKind>>;
  readonly category: Category;
}

const op = (category: Category, attrs: Record<string, AttrKind> = {}): OpSpec => ({ category, attrs });
const REDUCE_ATTRS = { axes: 'ints', keepdims: 'int', noop_with_empty_axes: 'int' } as const;

export const OPS: Readonly<Record<string, OpSpec>> = {
  Conv: op('other', { auto_pad: 'string', dilations: 'ints', group: 'int', kernel_shape: 'ints', pads: 'ints', strides: 'ints' }),
  Transpose: op('other', { perm: 'ints' }),
  LayerNormalization: op('other', { axis: 'int', epsilon: 'float', stash_type: 'int' }),
  MatMul: op('other'),
  Gemm: op('other', { alpha: 'float', beta: 'float', transA: 'int', transB: 'int' }),
  Add: op('arithmetic'),
  Sub: op('arithmetic'),
  Mul: op('arithmetic'),
  Div: op('arithmetic'),
  Pow: op('binary'),
  Max: op('binary'),
  Min: op('binary'),
  Erf: op('unary'),
  Sqrt: op('unary'),
  Relu: op('unary'),
  Sigmoid: op('unary'),
  Tanh: op('unary'),
  Neg: op('unary'),
  Abs: op('unary'),
  Exp: op('unary'),
  Log: op('unary'),
  Reciprocal: op('unary'),
  Identity: op('unary'),
  Gelu: op('unary', { approximate: 'string' }),
  Softmax: op('other', { axis: 'int' }),
  Dropout: op('other', { seed: 'int' }),
  Cast: op('other', { to: 'int', saturate: 'int' }),
  CastLike: op('other', { saturate: 'int' }),
  QuantizeLinear: op('other', { axis: 'int', saturate: 'int', block_size: 'int' }),
  DequantizeLinear: op('other', { axis: 'int', block_size: 'int' }),
  ReduceMean: op('reduce', REDUCE_ATTRS),
  ReduceL2: op('reduce', REDUCE_ATTRS),
  ReduceSum: op('reduce', REDUCE_ATTRS),
  ReduceMax: op('reduce', REDUCE_ATTRS),
  GlobalAveragePool: op('other'),
  Flatten: op('other', { axis: 'int' }),
  Reshape: op('other', { allowzero: 'int' }),
  Squeeze: op('other', { axes: 'ints' }),
  Unsqueeze: op('other', { axes: 'ints' }),
  Concat: op('other', { axis: 'int' }),
  Shape: op('other', { start: 'int', end: 'int' }),
  Gather: op('other', { axis: 'int' }),
  Slice: op('other'),
  Constant: op('other', {
    value: 'tensor', value_float: 'float', value_floats: 'floats', value_int: 'int', value_ints: 'ints', value_string: 'string', value_strings: 'strings',
  }),
  ConstantOfShape: op('other', { value: 'tensor' }),
  Expand: op('other'),
};

/** Ops whose outputs shape inference can describe and the passes can reason about (default domain). */
export const KNOWN_OPS: ReadonlySet<string> = new Set(Object.keys(OPS));

const opsIn = (category: Category): ReadonlySet<string> => new Set(Object.keys(OPS).filter((o) => OPS[o].category === category));
/** Elementwise ops of one input: they commute with any Transpose. */
export const UNARY_OPS = opsIn('unary');
/** Add, Sub, Mul, Div: elementwise with broadcasting, where a per-channel constant follows a layout change. */
export const ARITHMETIC_OPS = opsIn('arithmetic');
export const REDUCE_OPS = opsIn('reduce');

// Attributes whose values the passes and writers compute with: sizes that must be positive, pads
// that must not be negative. Anything else about a value is onnxruntime's to judge.
const AT_LEAST: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  Conv: { dilations: 1, group: 1, kernel_shape: 1, pads: 0, strides: 1 },
};

/**
 * What is wrong with a node's attributes (kind, or a value no computation can take), in words that
 * name the node; undefined when nothing is. Ops outside the table are not judged here.
 */
export function attributeProblem(node: Node): string | undefined {
  const spec = OPS[node.op];
  if (!spec || node.domain !== '') return undefined;
  const who = `node ${node.name || '(unnamed)'} (${node.op})`;
  for (const [name, a] of Object.entries(node.attrs)) {
    const want = spec.attrs[name];
    if (want && a.kind !== want) return `${who}: attribute ${name} is ${a.kind === 'ints' || a.kind === 'floats' ? 'a list of ' + a.kind.slice(0, -1) + 's' : 'a ' + a.kind}, ONNX says ${want}`;
    const min = AT_LEAST[node.op]?.[name];
    if (min !== undefined && (a.kind === 'int' || a.kind === 'ints')) {
      const values = a.kind === 'int' ? [a.value] : a.value;
      const bad = values.find((v) => !(v >= min));
      if (bad !== undefined) return `${who}: attribute ${name} has ${bad}, which must be at least ${min}`;
    }
  }
  return undefined;
}

/**
 * The axes a reduction reads: its `axes` attribute (before opset 18) or its constant second input;
 * 'all' when it names none (ONNX's default), 'none' when it names none and noop_with_empty_axes
 * makes it an identity; undefined when the axes are computed at run time.
 */
export function reduceAxes(node: Node, constant: (value: string) => Tensor | undefined): readonly number[] | 'all' | 'none' | undefined {
  let axes: readonly number[] | undefined;
  if (node.attrs.axes) axes = attrInts(node, 'axes');
  else if (node.inputs[1]) {
    const t = constant(node.inputs[1]);
    if (!t) return undefined;
    axes = Array.from(toFloat32(t));
  }
  if (axes && axes.length) return axes;
  return attrInt(node, 'noop_with_empty_axes', 0) ? 'none' : 'all';
}
