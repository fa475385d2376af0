// The state of one ONNX-graph → TF.js-graph translation: the TF nodes written so far, the weights,
// and for every ONNX value the TF tensor that holds it and its layout (see tfjs-layout.ts). Op
// handlers (tfjs-ops.ts) read their inputs through `input`/`constIn`, which insert a Transpose or
// materialise a constant only when the stored arrangement is not the one the op needs.

import { UnsupportedError } from '../../errors.js';
import { consumers, type Graph, type Node } from '../../graph/graph.js';
import { isFloat, numel, tensor, toFloat32, type Tensor } from '../../graph/tensor.js';
import {
  broadcastShapes,
  identity,
  isIdentity,
  NHWC,
  padLayout,
  physicalShape,
  samePerm,
  transposeBetween,
  transposeTensor,
  type Perm,
} from './layout.js';
import { encodeInt8PerChannel, encodePlain, encodeWeight, type EncodedWeight, type WeightFormat } from './weights.js';

/** A NodeDef attribute as TF.js reads it from model.json (proto3 JSON: int64 as strings, bytes as base64). */
export type TfAttr =
  | { type: string }
  | { i: string }
  | { f: number }
  | { b: boolean }
  | { s: string }
  | { list: { i?: string[]; s?: string[] } }
  | { shape: { dim?: { size: string }[] } }
  | { tensor: { dtype: string; tensorShape: { dim?: { size: string }[] } } };

export interface TfNode {
  readonly name: string;
  readonly op: string;
  readonly input: readonly string[];
  readonly attr: Readonly<Record<string, TfAttr>>;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const dims = (shape: readonly number[]) => (shape.length ? { dim: shape.map((d) => ({ size: String(d) })) } : {});

export const tfAttr = {
  float32: { type: 'DT_FLOAT' } as TfAttr,
  int32: { type: 'DT_INT32' } as TfAttr,
  int: (n: number): TfAttr => ({ i: String(n) }),
  float: (x: number): TfAttr => ({ f: x }),
  bool: (b: boolean): TfAttr => ({ b }),
  str: (s: string): TfAttr => ({ s: b64(s) }),
  ints: (v: readonly number[]): TfAttr => ({ list: { i: v.map(String) } }),
  strs: (v: readonly string[]): TfAttr => ({ list: { s: v.map(b64) } }),
  shape: (shape: readonly number[]): TfAttr => ({ shape: dims(shape) }),
};

/** Where an ONNX value lives in the TF graph. Shapes are logical (ONNX order); −1 is unknown. */
export interface TfValue {
  readonly ref: string;
  readonly perm: Perm;
  readonly shape: readonly number[];
}

/** A conv/matmul weight: its Const, and with int8 storage the per-output-channel scales. */
export interface Weight {
  readonly ref: string;
  readonly scales?: Float32Array;
  /** The scales as a [channels] Const. */
  readonly scaleRef?: string;
}

export interface EmitOptions {
  readonly weights: WeightFormat;
  readonly gelu: 'erf' | 'tanh';
  /** Write GELU as one TF `Gelu` op (for targets with a GELU kernel, TFLite) rather than in pieces. */
  readonly geluOp?: boolean;
}

// TF node names: [A-Za-z0-9.][A-Za-z0-9_.\-/]*; ':' would be read as an output index.
function sanitize(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_.\-/]/g, '_');
  return /^[A-Za-z0-9.]/.test(s) ? s : `v${s}`;
}

export class Emitter {
  readonly nodes: TfNode[] = [];
  readonly weights: EncodedWeight[] = [];
  readonly consts: Map<string, Tensor>;
  /** ONNX nodes already emitted as part of another node (e.g. an Add fused as a bias). */
  readonly fused = new Set<Node>();
  private readonly values = new Map<string, TfValue>();
  private readonly taken = new Set<string>();
  /** Names handed out by unique() and not yet given to a node. */
  private readonly issued = new Set<string>();
  private readonly reserved = new Map<string, string>();
  private readonly named = new Set<string>();
  private readonly cache = new Map<string, string>();
  private readonly weightCache = new Map<string, Weight>();
  private readonly users: Map<string, Node[]>;
  private readonly outputNames: Set<string>;

  constructor(readonly graph: Graph, readonly options: EmitOptions) {
    this.consts = new Map(graph.initializers);
    this.users = consumers(graph);
    this.outputNames = new Set(graph.outputs.map((o) => o.name));
    // Graph inputs and outputs keep their names (the signature refers to them), so claim them first.
    for (const v of [...graph.inputs, ...graph.outputs]) {
      const name = this.unique(v.name);
      this.issued.delete(name);
      this.reserved.set(v.name, name);
    }
  }

  // --- names and nodes -------------------------------------------------------------------------

  private unique(base: string): string {
    const s = sanitize(base);
    let name = s;
    for (let i = 1; this.taken.has(name); i++) name = `${s}_${i}`;
    this.taken.add(name);
    this.issued.add(name);
    return name;
  }

  /** The TF node name for the op that finally produces ONNX value `value` (or a helper under it). */
  nameFor(value: string, suffix?: string): string {
    if (suffix !== undefined) return this.unique(`${value}/${suffix}`);
    const r = this.reserved.get(value);
    if (r !== undefined && !this.named.has(r)) {
      this.named.add(r);
      this.issued.add(r);
      return r;
    }
    return this.unique(value);
  }

  /** The name reserved for a graph input or output (no side effect). */
  reservedName(value: string): string | undefined {
    return this.reserved.get(value);
  }

  /** The TF node name a graph input or output has in the signature. */
  publicName(value: string): string {
    const r = this.reserved.get(value);
    if (r === undefined) throw new Error(`internal: ${value} is not a graph input or output`);
    if (this.nodes.some((n) => n.name === r)) this.rename(r, this.unique(`${r}/stored`));
    this.named.add(r);
    this.issued.add(r);
    return r;
  }

  /** Renames a node and every reference to it (frees a public name for a final Transpose). */
  private rename(from: string, to: string): void {
    this.issued.delete(to);
    for (let i = 0; i < this.nodes.length; i++) {
      const n = this.nodes[i];
      if (n.name === from || n.input.includes(from)) {
        this.nodes[i] = { ...n, name: n.name === from ? to : n.name, input: n.input.map((x) => (x === from ? to : x)) };
      }
    }
    for (const [k, v] of this.values) if (v.ref === from) this.values.set(k, { ...v, ref: to });
    for (const [k, v] of this.cache) if (v === from) this.cache.set(k, to);
  }

  /**
   * Adds a TF node and returns its tensor reference. `name` is used as is when it came from
   * nameFor(); any other name (a helper such as `${base}/mean`) is made unique first.
   */
  op(op: string, name: string, input: readonly string[], attr: Record<string, TfAttr> = {}): string {
    const final = this.issued.has(name) ? name : this.unique(name);
    this.issued.delete(final);
    this.nodes.push({ name: final, op, input: [...input], attr });
    return final;
  }

  // --- values ----------------------------------------------------------------------------------

  define(value: string, ref: string, perm: Perm, shape: readonly number[]): void {
    if (perm.length !== shape.length) throw new Error(`internal: layout [${perm}] for ${value} of rank ${shape.length}`);
    this.values.set(value, { ref, perm: [...perm], shape: [...shape] });
  }

  constant(value: string): Tensor | undefined {
    return value ? this.consts.get(value) : undefined;
  }

  isConst(value: string): boolean {
    return this.consts.has(value);
  }

  shape(value: string): readonly number[] {
    const c = this.consts.get(value);
    if (c) return c.shape;
    const v = this.values.get(value);
    if (!v) throw new Error(`internal: ${value} read before it was produced`);
    return v.shape;
  }

  /** The value as stored; a constant read as an activation is materialised in logical layout. */
  /** The TF node holding ONNX value `value`, if it was produced by an op or is an input (no side effect). */
  refOf(value: string): string | undefined {
    return this.values.get(value)?.ref;
  }

  get(value: string): TfValue {
    const v = this.values.get(value);
    if (v) return v;
    const c = this.consts.get(value);
    if (!c) throw new Error(`internal: ${value} read before it was produced`);
    const ref = this.constTensor(value, c);
    const tv = { ref, perm: identity(c.shape.length), shape: c.shape };
    this.values.set(value, tv);
    return tv;
  }

  /** The TF tensor holding `value` in layout `perm` (a Transpose is added, once, when needed). */
  input(value: string, perm: Perm): string {
    const v = this.get(value);
    if (samePerm(v.perm, perm)) return v.ref;
    const key = `${value}|${perm.join(',')}`;
    let ref = this.cache.get(key);
    if (ref === undefined) {
      const tfPerm = transposeBetween(v.perm, perm);
      ref = this.op('Transpose', this.unique(`${v.ref}/to_${perm.join('')}`), [v.ref, this.ints(`${v.ref}/perm_${perm.join('')}`, tfPerm)], {
        T: tfAttr.float32,
        Tperm: tfAttr.int32,
      });
      this.cache.set(key, ref);
    }
    return ref;
  }

  /** Graph inputs: 4-D float inputs are NCHW images and are fed as NHWC; others as they are. */
  placeholder(name: string, dtype: string, shape: readonly number[]): void {
    const perm = shape.length === 4 ? NHWC : identity(shape.length);
    const ref = this.op('Placeholder', this.publicName(name), [], {
      dtype: dtype === 'float32' ? tfAttr.float32 : tfAttr.int32,
      shape: tfAttr.shape(physicalShape(shape, perm)),
    });
    this.define(name, ref, perm, shape);
  }

  /** Layout in which a graph output is presented: NHWC for 4-D, logical otherwise. */
  static outputLayout(rank: number): Perm {
    return rank === 4 ? NHWC : identity(rank);
  }

  consumers(value: string): readonly Node[] {
    return this.users.get(value) ?? [];
  }

  isOutput(value: string): boolean {
    return this.outputNames.has(value);
  }

  /** The single node reading `value`, if exactly one does and the value is not a graph output. */
  soleConsumer(value: string): Node | undefined {
    const users = this.consumers(value);
    return users.length === 1 && !this.isOutput(value) ? users[0] : undefined;
  }

  // --- constants -------------------------------------------------------------------------------

  /**
   * A constant used in a broadcasting op whose output has `rank` and layout `perm`: padded with
   * leading 1s to that rank, stored in the same layout, and stripped of leading 1s again (TF
   * broadcasting aligns trailing axes), so a per-channel vector stays a vector.
   */
  constIn(value: string, perm: Perm, rank: number): string {
    const c = this.consts.get(value)!;
    if (numel(c.shape) === 1 && isFloat(c.dtype)) return this.scalar(toFloat32(c)[0]);
    const key = `${value}|${perm.join(',')}|${rank}`;
    let ref = this.cache.get(key);
    if (ref === undefined) {
      ref = this.constTensor(isIdentity(perm) ? value : `${value}/${perm.join('')}`, broadcastConst(c, perm, rank));
      this.cache.set(key, ref);
    }
    return ref;
  }

  /**
   * A conv/matmul weight derived from ONNX constant `base` (e.g. a filter in HWIO), emitted once
   * per `form` and stored in the requested format. With int8 storage the Const holds the integers
   * and `scales` (one per output channel, flattened) must be applied by the caller to the op's
   * output: scaling the activation rather than the weight keeps the filter a constant tensor, which
   * TF.js's wasm backend packs once for XNNPACK instead of on every inference.
   */
  weight(base: string, form: string, make: () => Tensor, channelDims: number): Weight {
    const key = `${base}|${form}`;
    const cached = this.weightCache.get(key);
    if (cached) return cached;
    const t = make();
    const values = toFloat32(t);
    const name = this.unique(base);
    let w: Weight;
    if (this.options.weights === 'int8') {
      const q = encodeInt8PerChannel(name, values, t.shape, channelDims);
      this.weights.push(q.weight);
      const ref = this.constNode(name, 'DT_FLOAT', t.shape);
      w = { ref, scales: q.scales, scaleRef: this.constTensor(`${name}/scale`, tensor('float32', [q.scales.length], q.scales)) };
    } else {
      this.weights.push(encodeWeight(name, t, values, this.options.weights));
      w = { ref: this.constNode(name, 'DT_FLOAT', t.shape) };
    }
    this.weightCache.set(key, w);
    return w;
  }

  /** A constant derived from ONNX constant `base`, emitted once per `form`, stored float32. */
  derived(base: string, form: string, make: () => Tensor): string {
    const key = `${base}|${form}`;
    let ref = this.cache.get(key);
    if (ref === undefined) {
      ref = this.constTensor(base, make());
      this.cache.set(key, ref);
    }
    return ref;
  }

  /** A float32 scalar constant, shared by value. */
  scalar(value: number): string {
    const key = `scalar|${Math.fround(value)}`;
    let ref = this.cache.get(key);
    if (ref === undefined) {
      ref = this.constTensor(`const/${Math.fround(value).toPrecision(7)}`, tensor('float32', [], Float32Array.of(value)));
      this.cache.set(key, ref);
    }
    return ref;
  }

  /** An int32 vector constant (axes, perms, shapes, paddings). */
  ints(base: string, values: readonly number[], shape: readonly number[] = [values.length]): string {
    return this.constTensor(base, tensor('int32', shape, Int32Array.from(values)));
  }

  /** Emits a Const node with its weight, unquantized: float32, or int32 for integer constants. */
  constTensor(base: string, t: Tensor): string {
    const name = this.unique(base);
    if (t.dtype === 'bool') throw new UnsupportedError('boolean constants are not supported by the TF.js writer', base, 'dtype');
    const float = isFloat(t.dtype);
    const values = float ? toFloat32(t) : Int32Array.from(toFloat32(t));
    this.weights.push(encodePlain(name, values, t.shape));
    return this.constNode(name, float ? 'DT_FLOAT' : 'DT_INT32', t.shape);
  }

  private constNode(name: string, dtype: 'DT_FLOAT' | 'DT_INT32', shape: readonly number[]): string {
    return this.op('Const', name, [], { dtype: { type: dtype }, value: { tensor: { dtype, tensorShape: dims(shape) } } });
  }
}

/** Pads a constant to `rank` with leading 1s, stores it in layout `perm`, and drops leading 1s. */
export function broadcastConst(c: Tensor, perm: Perm, rank: number): Tensor {
  if (c.shape.length > rank) throw new Error(`internal: constant of rank ${c.shape.length} in a rank-${rank} op`);
  if (numel(c.shape) === 1) return tensor(c.dtype, [], c.data);
  const padded = tensor(c.dtype, [...new Array<number>(rank - c.shape.length).fill(1), ...c.shape], c.data);
  const t = transposeTensor(padded, perm.length === rank ? perm : padLayout(perm, rank));
  let k = 0;
  while (k < t.shape.length - 1 && t.shape[k] === 1) k++;
  return tensor(t.dtype, t.shape.slice(k), t.data);
}

// --- helpers shared by the op handlers -----------------------------------------------------------

/** Translates one ONNX node: reads inputs from the emitter, adds TF nodes, defines the outputs. */
export type Handler = (node: Node, e: Emitter) => void;

export const F32: Record<string, TfAttr> = { T: tfAttr.float32 };
export const out = (n: Node) => n.outputs[0];
export const unsupported = (n: Node, why: string) => new UnsupportedError(`${n.op}: ${why}`, n.name, 'tfjs-op');
export const f32 = (t: Tensor) => tensor('float32', t.shape, Float32Array.from(toFloat32(t)));
export const attrString = (n: Node, name: string, fallback: string) => {
  const a = n.attrs[name];
  return a?.kind === 'string' ? a.value : fallback;
};

/**
 * The layout an elementwise op runs in: that of its first full-rank activation, if every
 * lower-rank activation can be aligned to it by trailing broadcasting; otherwise logical order.
 */
function elementwiseLayout(e: Emitter, inputs: readonly string[], rank: number, isConst: (v: string) => boolean): Perm {
  const acts = inputs.filter((v) => !isConst(v)).map((v) => e.get(v));
  const lead = acts.find((v) => v.shape.length === rank);
  if (!lead) return identity(rank);
  const fits = acts.every((v) => lead.perm.slice(rank - v.shape.length).every((a) => a >= rank - v.shape.length));
  return fits ? lead.perm : identity(rank);
}

/**
 * Emits `tfOp` over `inputs` (ONNX-style broadcasting) and defines `output`; the TF node is named
 * after `output` unless `name` is given. Constants are stored in the op's layout; activations are
 * transposed to it only when they are not already.
 */
export function elementwise(e: Emitter, tfOp: string, inputs: readonly string[], output: string, name = e.nameFor(output)): void {
  const shape = inputs.map((v) => e.shape(v)).reduce(broadcastShapes);
  const rank = shape.length;
  // With only constant inputs (left unfolded), the first is materialised in full so that the
  // output keeps its shape.
  const isConst = (v: string) => e.isConst(v) && !(v === inputs[0] && inputs.every((i) => e.isConst(i)));
  const perm = elementwiseLayout(e, inputs, rank, isConst);
  const refs = inputs.map((v) => {
    if (isConst(v)) return e.constIn(v, perm, rank);
    const k = e.shape(v).length;
    return e.input(v, perm.slice(rank - k).map((a) => a - (rank - k)));
  });
  e.define(output, e.op(tfOp, name, refs, F32), perm, shape);
}

/** Registers a float scalar under a value name so that elementwise() can read it. */
export function scalarValue(e: Emitter, x: number): string {
  const name = `scalar:${x}`;
  if (!e.isConst(name)) e.consts.set(name, tensor('float32', [], Float32Array.of(x)));
  return name;
}
