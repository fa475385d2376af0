// fuse-layernorm: (x − E[x]) / √(E[(x − E[x])²] + ε) · γ + β  →  LayerNormalization(x, γ, β, ε)
// Exporters below opset 17 (and some above) write LayerNorm as ReduceMean, Sub, Pow, ReduceMean,
// Add, Sqrt, Div, Mul, Add. Over the last axis this becomes one LayerNormalization node; over the
// channel axis of an NCHW tensor (the official repo's channels_first LayerNorm, exported as axis 1)
// it becomes Transpose → LayerNormalization(axis −1) → Transpose, which cancel-transposes can then
// merge with the permutes around it.

import { attr, attrInt, type Graph, type Node } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { reduceAxes } from '../graph/ops.js';
import { inferShapes } from '../graph/shapes.js';
import { float32, numel, toFloat32, type Tensor } from '../graph/tensor.js';
import type { Pass, PassContext } from './pass.js';

export const fuseLayerNorm: Pass = {
  name: 'fuse-layernorm',
  purpose: 'replace decomposed LayerNorm patterns (ReduceMean…Sqrt, Div, Mul, Add) with one LayerNormalization',
  run(graph: Graph, ctx: PassContext): Graph {
    const shapes = inferShapes(graph);
    const editor = new GraphEditor(graph);
    let fused = 0;
    for (const { name } of graph.nodes) {
      const mean = editor.node(name);
      if (mean?.op !== 'ReduceMean') continue;
      const x = mean.inputs[0];
      const shape = shapes.get(x)?.shape;
      if (!shape) continue;
      const match = matchLayerNorm(editor, mean, shape.length);
      if (!match) continue;
      const channels = shape[match.axis];
      if (typeof channels !== 'number') continue;
      const gamma = vectorOf(match.gamma, channels, shape.length, match.axis) ?? (match.gamma ? undefined : new Float32Array(channels).fill(1));
      const beta = match.beta ? vectorOf(match.beta, channels, shape.length, match.axis) : undefined;
      if (!gamma || (match.beta && !beta)) continue;
      const g = editor.addConstant(`${mean.name}/LayerNorm.weight`, float32([channels], gamma));
      const inputs = beta ? [x, g, editor.addConstant(`${mean.name}/LayerNorm.bias`, float32([channels], beta))] : [x, g];
      const lnAttrs = { axis: attr.int(-1), epsilon: attr.float(match.eps) };
      const at = mean.name;
      if (match.axis === shape.length - 1) {
        editor.insertAfter(mean, { name: editor.uniqueName(`${at}/LayerNorm`), op: 'LayerNormalization', domain: '', inputs, outputs: [match.output], attrs: lnAttrs });
      } else {
        // channels-first: move the channel axis last and back
        const r = shape.length;
        const toLast = [...[...Array(r).keys()].filter((a) => a !== match.axis), match.axis];
        const back = toLast.map((_, i) => toLast.indexOf(i));
        const t1 = editor.uniqueName(`${at}/to_channels_last`);
        const ln = editor.uniqueName(`${at}/LayerNorm`);
        inputs[0] = t1;
        editor.insertAfter(mean, { name: t1, op: 'Transpose', domain: '', inputs: [x], outputs: [t1], attrs: { perm: attr.ints(toLast) } });
        editor.insertAfter(editor.node(t1)!, { name: ln, op: 'LayerNormalization', domain: '', inputs, outputs: [ln], attrs: lnAttrs });
        editor.insertAfter(editor.node(ln)!, { name: editor.uniqueName(`${at}/to_channels_first`), op: 'Transpose', domain: '', inputs: [ln], outputs: [match.output], attrs: { perm: attr.ints(back) } });
      }
      for (const n of match.nodes) editor.removeNode(n);
      ctx.fired('fuse-layernorm', mean.name);
      fused++;
    }
    // LayerNormalization exists from opset 17; the ops of opsets 13–16 exports mean the same there
    const opset = graph.opsets[''] ?? 0;
    return editor.finish(fused && opset < 17 ? { opsets: { ...graph.opsets, '': 17 } } : {});
  },
};

interface LayerNormMatch {
  readonly axis: number;
  readonly eps: number;
  readonly gamma?: Tensor;
  readonly beta?: Tensor;
  readonly nodes: Node[];
  /** The value the whole pattern computes. */
  readonly output: string;
}

/** The listed axes of a reduction; a LayerNorm names its axes, so 'all' or 'none' is no match. */
function listedAxes(editor: GraphEditor, n: Node): readonly number[] | undefined {
  const axes = reduceAxes(n, (v) => editor.constant(v));
  return Array.isArray(axes) ? axes : undefined;
}

function scalar(t: Tensor | undefined): number | undefined {
  return t && numel(t.shape) === 1 ? toFloat32(t)[0] : undefined;
}

/** The single node reading `value` with op `op`, when it is the value's only reader. */
function soleReader(editor: GraphEditor, value: string, op: string): Node | undefined {
  const users = editor.consumers(value);
  return users.length === 1 && users[0].op === op && !editor.isGraphOutput(value) ? users[0] : undefined;
}

/** The other input of a binary node, when it is a constant. */
function constOperand(editor: GraphEditor, n: Node, value: string): Tensor | undefined {
  const other = n.inputs[0] === value ? n.inputs[1] : n.inputs[0];
  return editor.constant(other);
}

function matchLayerNorm(editor: GraphEditor, mean: Node, rank: number): LayerNormMatch | undefined {
  const x = mean.inputs[0];
  const axes = listedAxes(editor, mean);
  if (!axes || axes.length !== 1 || attrInt(mean, 'keepdims', 1) === 0) return undefined;
  const axis = (axes[0] + rank) % rank;
  const sub = soleReader(editor, mean.outputs[0], 'Sub');
  if (!sub || sub.inputs[0] !== x || sub.inputs[1] !== mean.outputs[0]) return undefined;
  const d = sub.outputs[0];
  const users = editor.consumers(d);
  if (users.length !== 2 || editor.isGraphOutput(d)) return undefined;
  const sq = users.find((u) => (u.op === 'Pow' && u.inputs[0] === d && scalar(editor.constant(u.inputs[1])) === 2) || (u.op === 'Mul' && u.inputs[0] === d && u.inputs[1] === d));
  const div = users.find((u) => u.op === 'Div' && u.inputs[0] === d);
  if (!sq || !div) return undefined;
  const varMean = soleReader(editor, sq.outputs[0], 'ReduceMean');
  const varAxes = varMean && listedAxes(editor, varMean);
  if (!varMean || !varAxes || varAxes.length !== 1 || (varAxes[0] + rank) % rank !== axis) return undefined;
  const addEps = soleReader(editor, varMean.outputs[0], 'Add');
  const eps = addEps && scalar(constOperand(editor, addEps, varMean.outputs[0]));
  if (!addEps || eps === undefined) return undefined;
  const sqrt = soleReader(editor, addEps.outputs[0], 'Sqrt');
  if (!sqrt || soleReader(editor, sqrt.outputs[0], 'Div') !== div || div.inputs[1] !== sqrt.outputs[0]) return undefined;
  const nodes = [mean, sub, sq, varMean, addEps, sqrt, div];
  let output = div.outputs[0];
  let gamma: Tensor | undefined;
  let beta: Tensor | undefined;
  const mul = soleReader(editor, output, 'Mul');
  const g = mul && constOperand(editor, mul, output);
  if (mul && g) {
    nodes.push(mul);
    gamma = g;
    output = mul.outputs[0];
    const add = soleReader(editor, output, 'Add');
    const b = add && constOperand(editor, add, output);
    if (add && b) {
      nodes.push(add);
      beta = b;
      output = add.outputs[0];
    }
  }
  return { axis, eps, gamma, beta, nodes, output };
}

/** A per-channel constant as a length-`channels` vector along `axis`, or undefined. */
function vectorOf(t: Tensor | undefined, channels: number, rank: number, axis: number): Float32Array | undefined {
  if (!t) return undefined;
  const shape = [...new Array(Math.max(0, rank - t.shape.length)).fill(1), ...t.shape];
  const n = numel(t.shape);
  if (n === 1) return new Float32Array(channels).fill(toFloat32(t)[0]);
  if (n !== channels || shape[axis] !== channels) return undefined;
  return Float32Array.from(toFloat32(t));
}
