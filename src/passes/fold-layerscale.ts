// fold-layerscale: (x·W + b)·γ → x·(W·diag(γ)) + b·γ
// ConvNeXt V1 multiplies each block's second pointwise layer by a per-channel LayerScale γ. The
// multiply is folded into that layer's weight columns and bias, so no Mul remains. The rule is
// about the graph, not names: any per-output-channel constant Mul straight after a linear layer
// (MatMul+Add, Gemm, Conv), also across a Transpose (torchvision applies γ as (C,1,1) after
// permuting back to NCHW), provided nothing else reads the layer's output.

import { attrInts, type Graph } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { inferShapes } from '../graph/shapes.js';
import { linearProducing, perChannelAxis, scaleOutputChannels, type Linear } from './linear.js';
import type { Pass, PassContext } from './pass.js';

export const foldLayerScale: Pass = {
  name: 'fold-layerscale',
  purpose: 'fold per-channel scales after a linear layer (LayerScale) into its weights and bias',
  run(graph: Graph, ctx: PassContext): Graph {
    const shapes = inferShapes(graph);
    const rank = (v: string) => shapes.get(v)?.shape.length;
    const editor = new GraphEditor(graph);
    for (const { name } of graph.nodes) {
      const mul = editor.node(name);
      if (mul?.op !== 'Mul') continue;
      const constIndex = mul.inputs.findIndex((i) => editor.constant(i) !== undefined);
      if (constIndex < 0) continue;
      const scale = editor.constant(mul.inputs[constIndex])!;
      const x = mul.inputs[1 - constIndex];
      const r = rank(x);
      if (r === undefined || !editor.onlyUse(x, mul)) continue;
      const pc = perChannelAxis(scale, r);
      if (!pc) continue;
      const target = findScalable(editor, x, pc.axis, r);
      if (!target) continue;
      const values = pc.axis < 0 ? new Float32Array(target.outChannels).fill(pc.values[0]) : pc.values;
      if (values.length !== target.outChannels) continue;
      scaleOutputChannels(editor, target, values, 'scaled', ctx);
      editor.bypass(editor.node(name)!, 1 - constIndex);
      ctx.fired('fold-layerscale', mul.name);
    }
    return editor.finish();
  },
};

// The linear layer whose output channels lie on `axis` of value `x` (directly, or through one
// Transpose that only `x`'s consumer reads).
function findScalable(editor: GraphEditor, x: string, axis: number, r: number): Linear | undefined {
  const direct = linearProducing(editor, x);
  if (direct) return axis < 0 || axis === channelAxis(direct, r) ? direct : undefined;
  const t = editor.producer(x);
  if (t?.op !== 'Transpose') return undefined;
  const inner = t.inputs[0];
  const l = linearProducing(editor, inner);
  if (!l || !editor.onlyUse(inner, t)) return undefined;
  const perm = attrInts(t, 'perm', [...Array(r).keys()].reverse());
  return axis < 0 || perm[axis] === channelAxis(l, r) ? l : undefined;
}

const channelAxis = (l: Linear, r: number) => (l.kind === 'conv' ? 1 : r - 1);
