// to-float32: MatMulIntegerToFloat → its QDQ form (then as below)
//             DQ(q, s, z) of a constant → the float constant (q − z)·s;  DQ(Q(x)) → x;
//             Mul(Cast(q), s) of int8 constants → the float constant q·s;
//             float16 constants → float32;  Cast to float16 / float32 inside a float graph → x
// A model that `quantize` made (QDQ int8, or float16) going to a target without int8 or float16
// kernels (TF.js) becomes a plain float32 graph again. What precision it had is returned, so the
// writer can keep it in the weight storage (int8 per channel, or float16) as far as it can.

import { attr, attrInt, type Graph } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { evaluate } from '../graph/evaluate.js';
import { inferShapes } from '../graph/shapes.js';
import { tensor, toFloat32, type Tensor } from '../graph/tensor.js';
import { onnxDataType } from '../graph/dtypes.js';
import { expandMatMulIntegerToFloat } from './matmul-integer-to-float.js';
import { castsInt8Weight } from './dequantize-as-cast-mul.js';
import type { PassContext } from './pass.js';

export type SourcePrecision = 'float32' | 'float16' | 'int8';

const FLOAT32 = onnxDataType('float32');
const FLOAT16 = onnxDataType('float16');

export function toFloat32Graph(quantized: Graph, ctx?: PassContext): { graph: Graph; precision: SourcePrecision } {
  // onnxruntime's fused int8 layers (our CPU targets' form) first become the standard QDQ ops
  const graph = expandMatMulIntegerToFloat(quantized);
  const shapes = inferShapes(graph);
  const editor = new GraphEditor(graph);
  let precision: SourcePrecision = 'float32';
  for (const { name } of graph.nodes) {
    const n = editor.node(name);
    if (!n) continue;
    if (n.op === 'DequantizeLinear') {
      const q = editor.constant(n.inputs[0]);
      const scale = editor.constant(n.inputs[1]);
      const zero = n.inputs[2] ? editor.constant(n.inputs[2]) : undefined;
      if (q && scale && (!n.inputs[2] || zero)) {
        const value = editor.addConstant(`${n.inputs[0]}.float`, dequantize(q, scale, zero, attrInt(n, 'axis', 1)));
        editor.removeNode(n);
        editor.rewire(n.outputs[0], value);
        precision = 'int8';
        ctx?.fired('dequantize-constant', name);
        continue;
      }
      const quant = editor.producer(n.inputs[0]);
      if (quant?.op === 'QuantizeLinear' && editor.onlyUse(n.inputs[0], n)) {
        editor.removeNode(n);
        editor.removeNode(quant);
        editor.rewire(n.outputs[0], quant.inputs[0]);
        precision = 'int8';
        ctx?.fired('drop-activation-qdq', name);
      }
    } else if (castsInt8Weight(n, (v) => editor.constant(v))) {
      // int8-weights' form for onnxruntime (passes/dequantize-as-cast-mul.ts): Mul(Cast(q), s)
      const readers = editor.consumers(n.outputs[0]);
      const [mul] = readers;
      const scale = mul?.op === 'Mul' && mul.inputs.length === 2 ? editor.constant(mul.inputs.find((v) => v !== n.outputs[0]) ?? '') : undefined;
      if (readers.length !== 1 || !scale || !['float32', 'float16'].includes(scale.dtype) || editor.isGraphOutput(n.outputs[0])) continue;
      // a float16 model's (int4-weights --float16) computed in float32, like the rest of the graph here
      const q = editor.constant(n.inputs[0])!;
      const cast = { ...n, attrs: { ...n.attrs, to: attr.int(FLOAT32) } };
      const scale32 = scale.dtype === 'float32' ? scale : tensor('float32', scale.shape, toFloat32(scale));
      const weight = evaluate(mul, mul.inputs.map((v) => (v === n.outputs[0] ? evaluate(cast, [q]) : scale32)));
      if (!weight) continue;
      const value = editor.addConstant(`${n.inputs[0]}.float`, weight);
      editor.removeNode(n);
      editor.removeNode(mul);
      editor.rewire(mul.outputs[0], value);
      precision = 'int8';
      ctx?.fired('dequantize-constant', name);
    } else if (n.op === 'Cast' && [FLOAT16, FLOAT32].includes(attrInt(n, 'to')) && ['float16', 'float32'].includes(shapes.get(n.inputs[0])?.dtype ?? '')) {
      if (attrInt(n, 'to') === FLOAT16) precision = precision === 'int8' ? 'int8' : 'float16';
      editor.bypass(n);
      ctx?.fired('drop-float-cast', name);
    }
  }
  for (const [name, t] of editor.initializers) {
    if (t.dtype === 'float16' || t.dtype === 'bfloat16') {
      editor.initializers.set(name, tensor('float32', t.shape, toFloat32(t)));
      if (precision === 'float32') precision = 'float16';
    }
  }
  const io = (v: Graph['inputs'][number]) => (v.dtype === 'float16' ? { ...v, dtype: 'float32' as const } : v);
  const out = editor.finish();
  return { graph: { ...out, inputs: out.inputs.map(io), outputs: out.outputs.map(io) }, precision };
}

// (q − z)·s with per-channel scales along `axis` when the scale is a vector
function dequantize(q: Tensor, scale: Tensor, zero: Tensor | undefined, axis: number): Tensor {
  const values = toFloat32(q);
  const s = toFloat32(scale);
  const z = zero ? toFloat32(zero) : undefined;
  const out = new Float32Array(values.length);
  const rank = q.shape.length;
  const ax = (axis + rank) % rank;
  const inner = q.shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const channels = s.length > 1 ? q.shape[ax] : 1;
  for (let i = 0; i < values.length; i++) {
    const c = channels > 1 ? Math.floor(i / inner) % channels : 0;
    out[i] = (values[i] - (z ? z[c] : 0)) * s[c];
  }
  return tensor('float32', q.shape, out);
}
