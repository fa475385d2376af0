// float16: every float32 value and constant of the graph becomes IEEE half precision, except around
// the ops named in `fp32Ops`, which compute in float32 between Cast nodes. The identity relied on is
// only that a Cast between float types is a rounding, so a value may be carried in either type and
// converted where a reader needs the other one:
//   reader in float16, value float32  → Cast(to=FLOAT16) once, shared by all such readers
//   reader in float32, value float16  → Cast(to=FLOAT) once, shared likewise
// A Cast always reads the value as its producer made it, so a Cast(a→b)→Cast(b→a) pair that would
// cancel is never emitted. Constants are converted, not cast: a float32 constant that some float32
// reader needs stays float32 (a float16 copy is added when float16 readers need it too), so scalar
// constants (GELU's 0.5, 1, √2, GRN's ε) simply take their reader's type.
//
// Why LayerNormalization stays float32 by default: its variance is a mean of squares, and
// ConvNeXt's residual stream can grow into the hundreds, whose squares pass float16's 65504: a
// kernel that accumulates in float16 gets inf, and the output is silently wrong. GRN's ReduceL2 (a
// sum of squares over H·W) has the same risk on such runtimes; add 'ReduceL2' to fp32Ops for them.
// A norm written out in ops (timm's RMSNorm / SimpleNorm: Pow(x, 2) → ReduceMean → [·c] → + ε →
// Sqrt) carries the same mean of squares: while LayerNormalization stays float32, so does that chain
// (squaredMeans below), and x / √… runs in float16 again after it.
//
// onnxruntime's CPU provider (1.30, x86-64) has float16 kernels for Transpose and
// LayerNormalization but not for Conv, MatMul, Gemm, Add, Mul, Div, Erf or the reductions: around
// those it inserts Casts to float32 itself at session creation. The float16 model runs on CPU, in
// float32 arithmetic between float16-rounded values, and slower than the float32 model (1.5× on a
// ConvNeXt-T-shaped graph); it is meant for WebGPU and CUDA, which run float16 natively.
// Shape tensors (int64) and other non-float values are never touched.

import { UnsupportedError, type Warnings } from '../errors.js';
import { attr, attrInt, consumers, producers, topologicalOrder, type Graph, type Node, type ValueInfo } from '../graph/graph.js';
import { inferShapes } from '../graph/shapes.js';
import { floatToHalf, tensor, toFloat32, type DType, type Tensor } from '../graph/tensor.js';
import { onnxDataType } from '../graph/dtypes.js';
import type { Pass } from './pass.js';

export const FLOAT16_MAX = 65504;
const FLOAT16_MAX_BITS = 0x7bff;

const ONNX_FLOAT = onnxDataType('float32');
const ONNX_FLOAT16 = onnxDataType('float16');

export interface Float16Options {
  /** Graph inputs and outputs stay float32, with a Cast after each input and before each output. Default true. */
  readonly keepIoTypes?: boolean;
  /** Ops that compute in float32, their float inputs and outputs cast around them. Default ['LayerNormalization']. */
  readonly fp32Ops?: readonly string[];
  /** Receives one message per constant whose values were clamped to ±65504 or flushed to 0. */
  readonly warnings?: Warnings;
}

export const DEFAULT_FP32_OPS: readonly string[] = ['LayerNormalization'];

type Precision = 'float32' | 'float16';

/** Where a value can currently be read, and in which type. */
interface Available {
  readonly name: string;
  readonly dtype: DType;
}

export function convertToFloat16(graph: Graph, options: Float16Options = {}): Graph {
  return new Float16Conversion(graph, options).run();
}

/** The pass: float16 with the given options; warnings go to the context, each inserted Cast is reported. */
export function float16Pass(options: Omit<Float16Options, 'warnings'> = {}): Pass {
  return {
    name: 'float16',
    purpose: 'store weights and activations in float16 (LayerNorm kept float32 by default), with Casts only where types meet',
    run(graph, ctx) {
      const out = convertToFloat16(graph, { ...options, warnings: ctx.warnings });
      const before = new Set(graph.nodes.map((n) => n.name));
      for (const n of out.nodes) if (n.op === 'Cast' && !before.has(n.name)) ctx.fired('float16-cast', n.name);
      return out;
    },
  };
}

/** Names of the nodes of every x² → ReduceMean → (· or + a constant)* → Sqrt chain. */
function squaredMeans(graph: Graph): Set<string> {
  const made = producers(graph);
  const readers = consumers(graph);
  const constant = (v: string) => graph.initializers.has(v);
  const out = new Set<string>();
  for (const mean of graph.nodes) {
    if (mean.op !== 'ReduceMean') continue;
    const sq = made.get(mean.inputs[0]);
    const isSquare = sq && ((sq.op === 'Pow' && constant(sq.inputs[1]) && toFloat32(graph.initializers.get(sq.inputs[1])!)[0] === 2) || (sq.op === 'Mul' && sq.inputs[0] === sq.inputs[1]));
    if (!isSquare) continue;
    const chain = [sq, mean];
    for (let v = mean.outputs[0]; ; ) {
      const next = readers.get(v);
      if (next?.length !== 1) break;
      const n = next[0];
      if (n.op === 'Sqrt') {
        for (const c of [...chain, n]) out.add(c.name);
        break;
      }
      if ((n.op !== 'Mul' && n.op !== 'Add') || !n.inputs.some(constant)) break;
      chain.push(n);
      v = n.outputs[0];
    }
  }
  return out;
}

class Float16Conversion {
  private readonly keepIo: boolean;
  private readonly fp32Ops: ReadonlySet<string>;
  /** Nodes of decomposed means of squares, kept float32 with LayerNormalization. */
  private readonly fp32Nodes: ReadonlySet<string>;
  private readonly shapes: ReturnType<typeof inferShapes>;
  private readonly taken = new Set<string>();
  private readonly nodes: Node[] = [];
  private readonly initializers: Map<string, Tensor>;
  /** Original value name → where it can be read now. */
  private readonly available = new Map<string, Available>();
  /** `${value}|${dtype}` → the Cast output that holds it. */
  private readonly casts = new Map<string, string>();
  /** Float32 constant → its float16 version (the same name when no float32 reader is left). */
  private readonly halfConstants = new Map<string, string>();
  private readonly graphOutputs: Set<string>;

  constructor(private readonly graph: Graph, private readonly options: Float16Options) {
    this.keepIo = options.keepIoTypes ?? true;
    this.fp32Ops = new Set(options.fp32Ops ?? DEFAULT_FP32_OPS);
    this.fp32Nodes = this.fp32Ops.has('LayerNormalization') ? squaredMeans(graph) : new Set();
    this.shapes = inferShapes(graph);
    this.initializers = new Map(graph.initializers);
    this.graphOutputs = new Set(graph.outputs.map((o) => o.name));
    for (const v of graph.inputs) this.taken.add(v.name);
    for (const k of graph.initializers.keys()) this.taken.add(k);
    for (const n of graph.nodes) {
      this.taken.add(n.name);
      for (const o of n.outputs) this.taken.add(o);
    }
  }

  run(): Graph {
    const { graph } = this;
    const inputs: ValueInfo[] = graph.inputs.map((v) => {
      const dtype = v.dtype === 'float32' && !this.keepIo ? 'float16' : v.dtype;
      this.available.set(v.name, { name: v.name, dtype });
      return { ...v, dtype };
    });
    const order = topologicalOrder(graph);
    const constantNeeds = this.constantNeeds(order);
    for (const node of order) this.convertNode(node, constantNeeds);

    const outputs: ValueInfo[] = graph.outputs.map((o) => {
      if (o.dtype !== 'float32') return o;
      // a constant that is itself an output keeps whatever type its readers gave it
      const constant = this.available.has(o.name) ? undefined : this.initializers.get(o.name);
      if (constant) return { ...o, dtype: constant.dtype };
      const want: DType = this.keepIo ? 'float32' : 'float16';
      const have = this.available.get(o.name) ?? { name: o.name, dtype: 'float32' };
      if (have.name !== o.name) this.emitCast(have.name, want, o.name);
      return { ...o, dtype: want };
    });
    const used = new Set(this.nodes.flatMap((n) => n.inputs));
    const initializers = new Map([...this.initializers].filter(([k]) => used.has(k) || this.graphOutputs.has(k)));
    const draft: Graph = { ...graph, inputs, outputs, nodes: this.nodes, initializers };
    return { ...draft, nodes: topologicalOrder(draft) };
  }

  private precision(node: Node): Precision {
    if (this.fp32Ops.has(node.op) || this.fp32Nodes.has(node.name)) return 'float32';
    // A Constant written with value_float(s) cannot say float16: it stays float32 and is cast.
    if (node.op === 'Constant' && node.attrs.value === undefined) return 'float32';
    return 'float16';
  }

  /** The type this input slot of `node` needs for a float32 value: its precision, any float, or float32 always. */
  private slotType(node: Node, index: number, precision: Precision): Precision | 'any' {
    if (node.op === 'Cast' || node.op === 'Shape' || node.op === 'Size') return 'any';
    // Resize/Upsample scales are tensor(float) in every opset, whatever the data's type.
    if ((node.op === 'Resize' && index === 2) || (node.op === 'Upsample' && index === 1)) return 'float32';
    return precision;
  }

  private originalType(value: string): DType {
    const t = this.graph.initializers.get(value)?.dtype ?? this.shapes.get(value)?.dtype;
    if (!t) throw new UnsupportedError(`float16: cannot tell the type of value ${value}`);
    return t;
  }

  /** For each float32 constant: which types its readers need. */
  private constantNeeds(order: readonly Node[]): Map<string, Set<Precision>> {
    const needs = new Map<string, Set<Precision>>();
    const inputNames = new Set(this.graph.inputs.map((v) => v.name));
    for (const node of order) {
      const precision = this.precision(node);
      node.inputs.forEach((v, i) => {
        const t = this.graph.initializers.get(v);
        if (!v || !t || t.dtype !== 'float32' || inputNames.has(v)) return;
        const slot = this.slotType(node, i, precision);
        const set = needs.get(v) ?? new Set<Precision>();
        set.add(slot === 'any' ? 'float32' : slot);
        needs.set(v, set);
      });
    }
    return needs;
  }

  private convertNode(node: Node, constantNeeds: Map<string, Set<Precision>>): void {
    const precision = this.precision(node);
    const inputs = node.inputs.map((v, i) => {
      if (!v) return v;
      const original = this.originalType(v);
      if (original !== 'float32') return this.available.get(v)?.name ?? v;
      const slot = this.slotType(node, i, precision);
      if (this.graph.initializers.has(v) && !this.graph.inputs.some((g) => g.name === v)) {
        const want = slot === 'any' ? 'float32' : slot;
        return want === 'float32' ? v : this.halfConstant(v, constantNeeds.get(v)!);
      }
      const have = this.available.get(v);
      if (!have) throw new Error(`float16: ${node.name} reads ${v} before it is produced`);
      return slot === 'any' || slot === have.dtype ? have.name : this.cast(v, have, slot);
    });

    let attrs = node.attrs;
    if (precision === 'float16' && (node.op === 'Constant' || node.op === 'ConstantOfShape')) {
      // the value attribute says the output type; ConstantOfShape without one makes float32 zeros
      const value = node.attrs.value;
      if (value?.kind === 'tensor' && value.value.dtype === 'float32') {
        attrs = { ...attrs, value: attr.tensor(this.toHalf(value.value, `${node.name}.value`)) };
      } else if (node.op === 'ConstantOfShape' && value === undefined) {
        attrs = { ...attrs, value: attr.tensor(tensor('float16', [1], new Uint16Array(1))) };
      }
    }
    let castTo: DType | undefined;
    if (node.op === 'Cast') {
      const to = attrInt(node, 'to');
      if (to === ONNX_FLOAT && precision === 'float16') {
        attrs = { ...attrs, to: attr.int(ONNX_FLOAT16) };
        castTo = 'float16';
      }
    }

    const outputs = node.outputs.map((o, i) => {
      if (!o) return o;
      const original = this.originalType(o);
      let dtype: DType = original;
      // LayerNormalization's Mean and InvStdDev have the stash type (float32), whatever X is.
      const fixed = node.op === 'LayerNormalization' && i > 0;
      if (original === 'float32' && !fixed) dtype = castTo ?? (node.op === 'Cast' ? original : precision);
      let name = o;
      if (this.graphOutputs.has(o) && original === 'float32') {
        const want = this.keepIo ? 'float32' : 'float16';
        if (dtype !== want) name = this.unique(`${o}/${dtype}`);
      }
      this.available.set(o, { name, dtype });
      return name;
    });
    this.nodes.push({ ...node, inputs, outputs, attrs });
  }

  private cast(value: string, have: Available, to: Precision): string {
    const key = `${value}|${to}`;
    const done = this.casts.get(key);
    if (done) return done;
    const out = this.emitCast(have.name, to, this.unique(`${value}/to_${to}`));
    this.casts.set(key, out);
    return out;
  }

  private emitCast(from: string, to: DType, output: string): string {
    this.nodes.push({
      name: this.unique(`${output}/Cast`),
      op: 'Cast',
      domain: '',
      inputs: [from],
      outputs: [output],
      attrs: { to: attr.int(to === 'float16' ? ONNX_FLOAT16 : ONNX_FLOAT) },
    });
    return output;
  }

  private halfConstant(name: string, needs: Set<Precision>): string {
    const done = this.halfConstants.get(name);
    if (done) return done;
    const half = this.toHalf(this.graph.initializers.get(name)!, name);
    // Only float16 readers: the constant changes type under its own name.
    const target = needs.has('float32') ? this.unique(`${name}.float16`) : name;
    this.initializers.set(target, half);
    this.halfConstants.set(name, target);
    return target;
  }

  private unique(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  /** float32 → float16 bits, clamping beyond ±65504 (else they would become ±inf) and reporting it. */
  private toHalf(t: Tensor, name: string): Tensor {
    const src = toFloat32(t);
    const out = new Uint16Array(src.length);
    let clamped = 0;
    let flushed = 0;
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (v > FLOAT16_MAX || v < -FLOAT16_MAX) {
        out[i] = v > 0 ? FLOAT16_MAX_BITS : FLOAT16_MAX_BITS | 0x8000;
        clamped++;
        continue;
      }
      const h = floatToHalf(v);
      if ((h & 0x7fff) === 0 && v !== 0) flushed++;
      out[i] = h;
    }
    if (clamped) this.options.warnings?.add(`float16: ${clamped} of ${src.length} values of ${name} lie outside ±${FLOAT16_MAX} and were clamped`);
    if (flushed) this.options.warnings?.add(`float16: ${flushed} of ${src.length} nonzero values of ${name} are below float16's smallest subnormal and became 0`);
    return tensor('float16', t.shape, out);
  }
}
