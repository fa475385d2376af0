// Two passes the TF.js writer runs on the ONNX-semantics graph before translating it (the ONNX output
// keeps onnxruntime's preferred GELU form). They make an internal op, GELU_OP, that only the TF.js
// writer reads: so they run on the way to TF.js, with the graph check after each, and --verify
// (which runs graphs in onnxruntime) cannot measure them; the TF.js tests compare the written
// models with PyTorch instead.
//
// GELU. The exact form arrives as five ops, x·0.5·(1 + erf(x/√2)), in any of torch's associations.
// It becomes one internal node, and its constant factors move into neighbouring constant weights
// where there are some: the producing linear layer (MatMul+Add, Conv, Gemm) is scaled by `in_scale`
// so the node receives u = in_scale·x, and the consuming linear layer's weight is divided by
// `out_scale` so the node may output out_scale·gelu(x). With both folds exact GELU costs three TF
// ops, Erf, AddV2 and Mul (u·(1 + erf(u)) with u = x/√2), instead of five. Multiplying a weight by a
// constant rounds once per weight (≤ 2⁻²⁴ relative), far below the golden tolerance.

import { attr, consumers, producers, type Graph, type Node } from '../graph/graph.js';
import { constantValues } from '../graph/evaluate.js';
import { numel, tensor, toFloat32, type Tensor } from '../graph/tensor.js';
import type { Pass, PassContext } from './pass.js';

/** The internal op: out_scale·gelu(input/in_scale), attrs in_scale, out_scale, approximate. */
export const GELU_OP = 'TfjsGelu';

/** √(2/π)·2: the tanh approximation written as x·σ(2√(2/π)(x + 0.044715x³)). */
export const GELU_TANH_INNER = 2 * Math.sqrt(2 / Math.PI);

interface Ctx {
  readonly consts: Map<string, Tensor>;
  readonly producedBy: Map<string, Node>;
  readonly users: Map<string, Node[]>;
  readonly outputs: Set<string>;
}

function context(graph: Graph): Ctx {
  return {
    consts: constantValues(graph),
    producedBy: producers(graph),
    users: consumers(graph),
    outputs: new Set(graph.outputs.map((o) => o.name)),
  };
}

/** The one consumer of a value that is not a graph output. */
function only(c: Ctx, value: string): Node | undefined {
  const u = c.users.get(value) ?? [];
  return u.length === 1 && !c.outputs.has(value) ? u[0] : undefined;
}

function scalarOf(c: Ctx, value: string | undefined): number | undefined {
  const t = value === undefined ? undefined : c.consts.get(value);
  return t && numel(t.shape) === 1 ? toFloat32(t)[0] : undefined;
}

/** The other input of a binary node that reads `value`. */
function other(n: Node, value: string): string | undefined {
  if (n.inputs.length !== 2 || n.inputs[0] === n.inputs[1]) return undefined;
  return n.inputs[0] === value ? n.inputs[1] : n.inputs[1] === value ? n.inputs[0] : undefined;
}

// within float16's rounding (half a unit in the last place, 2⁻¹¹ relative): a float16 model read back
// to float32 (quantize --to fp16, then convert --format tflite) carries √2 as 1.4140625, and its GELU
// is still the exact one, computed as closely as that model computed it
const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) <= 2 ** -11 * Math.abs(b);

/** Replaces every exact-erf GELU subgraph with one GELU_OP node. */
function fuseGelu(graph: Graph, ctx: PassContext): Graph {
  const c = context(graph);
  const replace = new Map<Node, Node | null>();
  for (const erf of graph.nodes) {
    if (erf.op !== 'Erf' || erf.domain !== '') continue;
    const pre = c.producedBy.get(erf.inputs[0]);
    if (!pre || only(c, pre.outputs[0]) !== erf) continue;
    let x: string | undefined;
    if (pre.op === 'Div' && near(scalarOf(c, pre.inputs[1]), Math.SQRT2)) x = pre.inputs[0];
    if (pre.op === 'Mul') for (const v of pre.inputs) if (near(scalarOf(c, other(pre, v)), Math.SQRT1_2)) x = v;
    if (x === undefined || c.consts.has(x)) continue;
    const add = only(c, erf.outputs[0]);
    if (!add || add.op !== 'Add' || !near(scalarOf(c, other(add, erf.outputs[0])), 1)) continue;
    const m1 = only(c, add.outputs[0]);
    if (!m1 || m1.op !== 'Mul') continue;
    const o1 = other(m1, add.outputs[0]);
    const m2 = only(c, m1.outputs[0]);
    let chain: Node[] | undefined;
    if (o1 === x && m2?.op === 'Mul' && near(scalarOf(c, other(m2, m1.outputs[0])), 0.5)) {
      chain = [pre, erf, add, m1, m2]; // (x·(1+erf))·0.5
    } else if (near(scalarOf(c, o1), 0.5) && m2?.op === 'Mul' && other(m2, m1.outputs[0]) === x) {
      chain = [pre, erf, add, m1, m2]; // x·((1+erf)·0.5)
    } else if (o1 !== undefined) {
      const h = c.producedBy.get(o1); // (x·0.5)·(1+erf)
      if (h?.op === 'Mul' && only(c, o1) === m1 && near(scalarOf(c, other(h, x)), 0.5)) chain = [pre, erf, add, h, m1];
    }
    if (!chain || chain.some((n) => replace.has(n))) continue;
    const last = chain[chain.length - 1];
    for (const n of chain) replace.set(n, null);
    ctx.fired('fuse-gelu', last.name);
    replace.set(last, {
      name: last.name,
      op: GELU_OP,
      domain: '',
      inputs: [x],
      outputs: [last.outputs[0]],
      attrs: { in_scale: attr.float(1), out_scale: attr.float(1), approximate: attr.string('none') },
    });
  }
  if (replace.size === 0) return graph;
  const nodes: Node[] = [];
  for (const n of graph.nodes) {
    const r = replace.get(n);
    if (r === undefined) nodes.push(n);
    else if (r !== null) nodes.push(r);
  }
  return { ...graph, nodes };
}

/**
 * Moves GELU's constant factors into neighbouring weights (see the file comment). `approximate`
 * picks the form the writer will emit for exact GELUs, which decides the most useful input scale.
 */
function foldGeluScales(graph: Graph, approximate: 'erf' | 'tanh', ctx: PassContext): Graph {
  const c = context(graph);
  const initializers = new Map(graph.initializers);
  const edits = new Map<Node, Node>();
  const current = (n: Node) => edits.get(n) ?? n;
  const isConst = (v: string | undefined) => !!v && (c.consts.has(v) || initializers.has(v));
  // A new initializer holding factor·value (values already rescaled by an earlier fold included).
  const scaled = (value: string, factor: number): string => {
    const t = initializers.get(value) ?? c.consts.get(value)!;
    const src = toFloat32(t);
    const data = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) data[i] = src[i] * factor;
    let name = `${value}*${factor.toPrecision(6)}`;
    for (let i = 1; initializers.has(name) || c.consts.has(name); i++) name = `${value}*${factor.toPrecision(6)}_${i}`;
    initializers.set(name, tensor('float32', t.shape, data));
    return name;
  };
  const rescale = (n: Node, indices: readonly number[], factor: number): void => {
    const base = current(n);
    edits.set(n, { ...base, inputs: base.inputs.map((v, i) => (indices.includes(i) && v ? scaled(v, factor) : v)) });
  };
  const linearWithConstWeight = (n: Node) =>
    (n.op === 'MatMul' || n.op === 'Conv' || n.op === 'Gemm') && isConst(current(n).inputs[1]);

  for (const g of graph.nodes) {
    if (g.op !== GELU_OP) continue;
    const x = g.inputs[0];
    const tanh = approximate === 'tanh' || (g.attrs.approximate?.kind === 'string' && g.attrs.approximate.value === 'tanh');
    const a = tanh ? GELU_TANH_INNER : Math.SQRT1_2;
    // Producer: a linear layer with constant weights (and bias) whose only reader is this GELU.
    // Scaling weight and bias by a scales its output by a.
    let inScale = 1;
    const p = only(c, x) === g ? c.producedBy.get(x) : undefined;
    if (p && linearWithConstWeight(p) && (!current(p).inputs[2] || isConst(current(p).inputs[2]))) {
      rescale(p, [1, 2], a);
      inScale = a;
    } else if (p?.op === 'Add') {
      const mmOut = p.inputs.find((v) => c.producedBy.get(v)?.op === 'MatMul');
      const mm = mmOut === undefined ? undefined : c.producedBy.get(mmOut)!;
      const bias = mmOut === undefined ? undefined : other(p, mmOut);
      if (mm && only(c, mmOut!) === p && isConst(bias) && linearWithConstWeight(mm)) {
        rescale(mm, [1], a);
        rescale(p, [p.inputs.indexOf(bias!)], a);
        inScale = a;
      }
    }
    // Consumer: a linear layer reading the GELU as its data input with a constant weight; dividing
    // the weight by s lets GELU output s·gelu(x). For erf, s = 2·in_scale cancels the final
    // ·0.5/in_scale; for tanh, s = in_scale.
    let outScale = 1;
    const q = only(c, g.outputs[0]);
    if (q && q.inputs[0] === g.outputs[0] && linearWithConstWeight(q)) {
      outScale = tanh ? inScale : 2 * inScale;
      rescale(q, [1], 1 / outScale);
    }
    if (inScale !== 1 || outScale !== 1) ctx.fired('fold-gelu-scales', g.name);
    edits.set(g, { ...g, attrs: { ...g.attrs, in_scale: attr.float(inScale), out_scale: attr.float(outScale) } });
  }
  if (edits.size === 0) return graph;
  return { ...graph, nodes: graph.nodes.map(current), initializers };
}

export const tfjsFuseGelu: Pass = {
  name: 'tfjs-fuse-gelu',
  purpose: 'TF.js only: the five-op exact GELU, x·0.5·(1 + erf(x/√2)) in any association, becomes one internal GELU node',
  run: fuseGelu,
};

/** The scale fold for the GELU form the writer emits (`approximate` decides the useful input scale). */
export function tfjsFoldGeluScales(approximate: 'erf' | 'tanh'): Pass {
  return {
    name: 'tfjs-fold-gelu-scales',
    purpose: "TF.js only: a GELU's constant factors move into the weights of the linear layers on either side (three TF ops instead of five)",
    run: (graph, ctx) => foldGeluScales(graph, approximate, ctx),
  };
}
