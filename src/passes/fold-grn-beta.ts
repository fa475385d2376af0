// fold-grn-beta: (y + β + r)·W + b  →  (y + r)·W + (β·W + b)
// ConvNeXt-V2's GRN ends in γ·(x·Nx) + β + x, and its output only feeds the block's second pointwise
// layer, so the constant β can travel through the residual Add into that layer's bias. Stated on
// the graph: an Add of a per-channel constant, followed by any chain of Adds that nothing else
// reads, ending in a linear layer over those channels: a MatMul over the last axis, or a 1×1 Conv
// without padding over axis 1 (a padded or wider Conv would see β at the borders differently).

import type { Graph, Node } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { inferShapes } from '../graph/shapes.js';
import { numel, toFloat32 } from '../graph/tensor.js';
import { absorbInputAffine, isPointwiseConv, linearReading, perChannelAxis } from './linear.js';
import type { Pass, PassContext } from './pass.js';

export const foldGrnBeta: Pass = {
  name: 'fold-grn-beta',
  purpose: "move a constant per-channel Add (V2 GRN's β) through residual Adds into the next linear layer's bias",
  run(graph: Graph, ctx: PassContext): Graph {
    const shapes = inferShapes(graph);
    const editor = new GraphEditor(graph);
    for (const { name } of graph.nodes) {
      const add = editor.node(name);
      if (add?.op !== 'Add') continue;
      const constIndex = add.inputs.findIndex((i) => editor.constant(i) !== undefined);
      if (constIndex < 0) continue;
      const beta = editor.constant(add.inputs[constIndex])!;
      // removing the Add must not change the shape of what flows on
      const other = shapes.get(add.inputs[1 - constIndex])?.shape;
      const sum = shapes.get(add.outputs[0])?.shape;
      if (!other || !sum || other.join() !== sum.join()) continue;
      const linear = linearAfterAdds(editor, add.outputs[0]);
      if (!linear || (linear.kind !== 'matmul' && !(linear.kind === 'conv' && isPointwiseConv(linear.node, linear.weight)))) continue;
      // only a vector along the layer's input channels: [C] / [1, …, C] for MatMul, [C, 1, 1] for Conv
      const pc = perChannelAxis(beta, other.length);
      if (!pc || pc.axis !== (linear.kind === 'conv' ? 1 : other.length - 1) || numel(beta.shape) !== linear.inChannels) continue;
      const ones = new Float32Array(linear.inChannels).fill(1);
      absorbInputAffine(editor, linear, ones, toFloat32(beta), 'beta_folded', ctx);
      editor.bypass(add, 1 - constIndex);
      ctx.fired('fold-grn-beta', name);
    }
    return editor.finish();
  },
};

function linearAfterAdds(editor: GraphEditor, value: string): ReturnType<typeof linearReading> {
  for (let hops = 0; hops < 8; hops++) {
    if (editor.isGraphOutput(value)) return undefined;
    const users = editor.consumers(value);
    if (users.length !== 1) return undefined;
    const next: Node = users[0];
    if (next.op === 'MatMul' || next.op === 'Conv') return linearReading(editor, next, value);
    if (next.op !== 'Add') return undefined;
    value = next.outputs[0];
  }
  return undefined;
}
