// dequantize-as-cast-mul: DequantizeLinear(w_int8, s[, 0]) of a constant  ⇒  Mul(Cast(w_int8 → float32), s')
// with s' the scale shaped to broadcast along the DequantizeLinear's axis. The same arithmetic: the
// int8 values are exact in float32 and each is multiplied by its channel's scale once.
// Why: onnxruntime's constant folding leaves DequantizeLinear alone (its QDQ fusions look for it),
// so a weight-only int8 model dequantizes its weights on every run, or its MatMuls become
// MatMulNBits: ConvNeXt-T int8-weights ran 2.4–2.6× slower than fp32 on one AVX2 thread. A Cast and
// a Mul of constants it folds when the session loads, so the model runs at fp32's speed and the file
// keeps int8 weights. Only weight-only models use this pass: in a static int8 model the weight
// DequantizeLinear is what onnxruntime fuses into its int8 kernels.

import { attr, attrInt, type Graph, type Node } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { onnxDataType } from '../graph/dtypes.js';
import { numel, reshape, type Tensor } from '../graph/tensor.js';
import type { Pass, PassContext } from './pass.js';

/** Whether `n` is the Cast this pass writes: an int8 constant's values as float32 (its Mul applies the scale), or float16 once converted. */
export function castsInt8Weight(n: Node, constant: (value: string) => Tensor | undefined): boolean {
  const to = n.op === 'Cast' ? attrInt(n, 'to') : undefined;
  return (to === onnxDataType('float32') || to === onnxDataType('float16')) && constant(n.inputs[0])?.dtype === 'int8';
}

export const dequantizeAsCastMul: Pass = {
  name: 'dequantize-as-cast-mul',
  purpose: 'write the DequantizeLinear of each int8 weight as Cast and Mul, which onnxruntime folds into a float32 weight when it loads the model',
  run(graph: Graph, ctx: PassContext): Graph {
    const editor = new GraphEditor(graph);
    let rewritten = 0;
    for (const { name } of graph.nodes) {
      const dq = editor.node(name);
      if (dq?.op !== 'DequantizeLinear' || dq.domain !== '' || editor.isGraphOutput(dq.outputs[0])) continue;
      const [w, scale] = [editor.constant(dq.inputs[0]), editor.constant(dq.inputs[1])];
      const zero = dq.inputs[2] ? editor.constant(dq.inputs[2]) : undefined;
      if (!w || w.dtype !== 'int8' || !scale || scale.dtype !== 'float32' || (dq.inputs[2] && !zero)) continue;
      // per tensor or per channel only: opset 21's blocked form (block_size, a scale of rank > 1) stays
      if (scale.shape.length > 1 || dq.attrs.block_size !== undefined) continue;
      if (zero && zero.data.some((z) => Number(z) !== 0)) continue;
      const rank = w.shape.length;
      const perChannel = scale.shape.length === 1;
      const axis = (attrInt(dq, 'axis', 1) + rank) % rank;
      if (perChannel && (rank === 0 || numel(scale.shape) !== w.shape[axis])) continue;
      // [C] along `axis` becomes [1, …, C, …, 1]: the same data, broadcast the way Mul reads it
      const broadcast = perChannel ? editor.addConstant(`${dq.inputs[1]}.broadcast`, reshape(scale, w.shape.map((d, i) => (i === axis ? d : 1)))) : dq.inputs[1];
      const castOut = editor.uniqueName(`${dq.outputs[0]}/int8_as_float`);
      const cast: Node = { name: editor.uniqueName(`${dq.name}/Cast`), op: 'Cast', domain: '', inputs: [dq.inputs[0]], outputs: [castOut], attrs: { to: attr.int(onnxDataType('float32')) } };
      editor.replaceNode(dq, cast);
      editor.insertAfter(cast, { name: editor.uniqueName(`${dq.name}/Mul`), op: 'Mul', domain: '', inputs: [castOut, broadcast], outputs: [dq.outputs[0]], attrs: {} });
      rewritten++;
      ctx.fired('dequantize-as-cast-mul', dq.name);
    }
    return rewritten ? editor.finish() : graph;
  },
};
