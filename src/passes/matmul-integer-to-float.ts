// matmul-integer-to-float: Q(x) → DQ → MatMul(DQ(w)) → Add(b)   ⇒   Q(x) → MatMulIntegerToFloat(w, b)
// onnxruntime's CPU fuses DQ → MatMul into its contrib op MatMulIntegerToFloat itself, but leaves the
// bias Add after it: one more pass over every pointwise layer's output (ConvNeXt-T int8, 36 Adds, 10 %
// of the kernel time at batch 32). Its kernel takes the bias as an input and adds it in the GEMM's
// output stage, where the per-channel rescale already touches each value; nothing fuses a following
// Add into it (the pattern onnxruntime does fuse, MatMulInteger → Cast → Mul → Add, never forms with
// static scales), so this pass writes the op with its bias directly.
// The same arithmetic as the QDQ form: y = (q − z_x)·w · s_x·s_w[c] + b[c]. The op is onnxruntime's
// (domain com.microsoft): only the int8 recipes for onnxruntime's CPU kernels use this pass.

import { attrInt, type Graph, type Node } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { numel, reshape, type Tensor } from '../graph/tensor.js';
import type { Pass, PassContext } from './pass.js';

export const MICROSOFT_DOMAIN = 'com.microsoft';

const isScalar = (t: Tensor | undefined): t is Tensor => t !== undefined && numel(t.shape) === 1;

export const matmulIntegerToFloat: Pass = {
  name: 'matmul-integer-to-float',
  purpose: "write each int8 MatMul with its bias Add as onnxruntime's MatMulIntegerToFloat, which adds the bias in the GEMM's output stage",
  run(graph: Graph, ctx: PassContext): Graph {
    const editor = new GraphEditor(graph);
    let fused = 0;
    for (const { name } of graph.nodes) {
      const matmul = editor.node(name);
      if (matmul?.op !== 'MatMul' || matmul.domain !== '') continue;
      const [dqx, dqw] = matmul.inputs.map((v) => editor.producer(v));
      const q = dqx && editor.producer(dqx.inputs[0]);
      if (dqx?.op !== 'DequantizeLinear' || dqw?.op !== 'DequantizeLinear' || q?.op !== 'QuantizeLinear') continue;
      // the activation per tensor (scalar scale and zero point), the weight per output column
      const [xScale, xZero] = [editor.constant(dqx.inputs[1]), dqx.inputs[2] ? editor.constant(dqx.inputs[2]) : undefined];
      const [w, wScale, wZero] = [editor.constant(dqw.inputs[0]), editor.constant(dqw.inputs[1]), dqw.inputs[2] ? editor.constant(dqw.inputs[2]) : undefined];
      if (!isScalar(xScale) || (dqx.inputs[2] && !isScalar(xZero)) || !w || w.shape.length !== 2 || !wScale) continue;
      if (w.dtype !== 'int8' && w.dtype !== 'uint8') continue;
      const perColumn = numel(wScale.shape) === w.shape[1] && wScale.shape.length === 1 && attrInt(dqw, 'axis', 1) === 1;
      if (!perColumn && !isScalar(wScale)) continue;
      if (wZero && wZero.data.some((z) => Number(z) !== 0)) continue;
      if (!editor.onlyUse(dqx.outputs[0], matmul) || editor.isGraphOutput(matmul.outputs[0])) continue;
      const bias = biasAdd(editor, matmul, w.shape[1]);
      const inputs = [q.outputs[0], dqw.inputs[0], dqx.inputs[1], dqw.inputs[1], dqx.inputs[2] ?? '', '', bias ? oneDimensional(editor, bias) : ''];
      while (inputs[inputs.length - 1] === '') inputs.pop();
      const out = bias ? bias.add.outputs[0] : matmul.outputs[0];
      const fusedNode: Node = { name: matmul.name, op: 'MatMulIntegerToFloat', domain: MICROSOFT_DOMAIN, inputs, outputs: [out], attrs: {} };
      if (bias) editor.removeNode(bias.add);
      editor.replaceNode(matmul, fusedNode);
      editor.removeNode(dqx);
      if (editor.consumers(dqw.outputs[0]).length === 0) editor.removeNode(dqw);
      fused++;
      ctx.fired('matmul-integer-to-float', matmul.name);
    }
    return fused ? editor.finish({ opsets: { ...graph.opsets, [MICROSOFT_DOMAIN]: 1 } }) : graph;
  },
};

/** The bias as the op takes it, [N]: the same data under a name of its own when it had another shape. */
function oneDimensional(editor: GraphEditor, bias: { value: string; tensor: Tensor }): string {
  return bias.tensor.shape.length === 1 ? bias.value : editor.addConstant(`${bias.value}.1d`, reshape(bias.tensor, [numel(bias.tensor.shape)]));
}

/** The constant bias Add reading only this MatMul's output (not a graph output), if its bias is one value per output column. */
function biasAdd(editor: GraphEditor, matmul: Node, columns: number): { add: Node; value: string; tensor: Tensor } | undefined {
  const readers = editor.consumers(matmul.outputs[0]);
  if (readers.length !== 1 || readers[0].op !== 'Add') return undefined;
  const add = readers[0];
  const value = add.inputs.find((v) => v !== matmul.outputs[0]);
  const tensor = value === undefined ? undefined : editor.constant(value);
  if (!tensor || tensor.dtype !== 'float32' || numel(tensor.shape) !== columns || tensor.shape[tensor.shape.length - 1] !== columns) return undefined;
  return { add, value: value!, tensor };
}

/**
 * The inverse, for models read back in (convert int8.onnx --format tfjs): each MatMulIntegerToFloat
 * of a per-tensor activation as DQ → MatMul(DQ(w)) → Add(b), the standard ops every later pass knows.
 */
export function expandMatMulIntegerToFloat(graph: Graph): Graph {
  const editor = new GraphEditor(graph);
  let expanded = 0;
  for (const n of graph.nodes) {
    if (n.op !== 'MatMulIntegerToFloat' || n.domain !== MICROSOFT_DOMAIN) continue;
    const [a, b, aScale, bScale, aZero = '', bZero = '', bias = ''] = n.inputs;
    const scaleOfA = editor.constant(aScale);
    const scaleOfB = editor.constant(bScale);
    // a per-column activation scale has no DequantizeLinear form: such a node stays (and is refused as unknown)
    if (!isScalar(scaleOfA) || !scaleOfB) continue;
    const value = (suffix: string) => editor.uniqueName(`${n.name}/${suffix}`);
    const dq = (x: string, s: string, z: string, perAxis: boolean): Node => ({
      name: value(`DequantizeLinear_${x}`), op: 'DequantizeLinear', domain: '', inputs: z ? [x, s, z] : [x, s], outputs: [value('dq')], attrs: perAxis ? { axis: { kind: 'int', value: -1 } } : {},
    });
    const [dqa, dqb] = [dq(a, aScale, aZero, false), dq(b, bScale, bZero, !isScalar(scaleOfB))];
    const product = bias ? value('product') : n.outputs[0];
    const matmul: Node = { name: n.name, op: 'MatMul', domain: '', inputs: [dqa.outputs[0], dqb.outputs[0]], outputs: [product], attrs: {} };
    editor.replaceNode(n, matmul);
    // finish() orders the nodes topologically
    for (const extra of [dqa, dqb]) editor.insertAfter(matmul, extra);
    if (bias) editor.insertAfter(matmul, { name: value('bias'), op: 'Add', domain: '', inputs: [product, bias], outputs: [n.outputs[0]], attrs: {} });
    expanded++;
  }
  return expanded ? editor.finish() : graph;
}
