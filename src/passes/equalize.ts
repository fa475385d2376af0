// equalize-channels: LN(x)·W = (LN(x)·diag(1/s))·(diag(s)·W)
// SmoothQuant-style channel equalization for int8. LayerNorm outputs of a ConvNeXt differ strongly
// in range between channels, and one per-tensor scale must cover the widest. Dividing channel j of
// the LayerNorm's affine by s_j = a_j^α / w_j^(1−α) (a_j: the activation's observed max |x|, w_j:
// the max |weight| it meets) and multiplying row j of the following weight by s_j moves range from
// the activations into the weights, which are quantized per channel anyway. Inference cost is
// unchanged: both factors are folded into constants that exist already.

import type { Graph } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { tensor, toFloat32 } from '../graph/tensor.js';
import { linearReading, type Linear } from './linear.js';

/** LayerNorm → linear layer pairs that can be equalized: LN output value → the layer reading it. */
export function equalizablePairs(graph: Graph): Map<string, { ln: string; linear: Linear }> {
  const editor = new GraphEditor(graph);
  const out = new Map<string, { ln: string; linear: Linear }>();
  for (const n of graph.nodes) {
    if (n.op !== 'LayerNormalization' || !editor.constant(n.inputs[1])) continue;
    const v = n.outputs[0];
    if (editor.isGraphOutput(v)) continue;
    const users = editor.consumers(v);
    if (users.length !== 1 || (users[0].op !== 'MatMul' && users[0].op !== 'Gemm')) continue;
    const linear = linearReading(editor, users[0], v);
    if (linear && linear.kind === 'matmul') out.set(v, { ln: n.name, linear });
  }
  return out;
}

export function equalizeChannels(graph: Graph, absmax: ReadonlyMap<string, Float32Array>, alpha = 0.5): Graph {
  const editor = new GraphEditor(graph);
  for (const [value, { ln: lnName, linear }] of equalizablePairs(graph)) {
    const a = absmax.get(value);
    const ln = editor.node(lnName);
    if (!a || !ln || a.length !== linear.inChannels) continue;
    const w = toFloat32(linear.weight); // [in, out]
    const out = linear.outChannels;
    const s = new Float32Array(a.length);
    for (let j = 0; j < a.length; j++) {
      let wmax = 0;
      for (let o = 0; o < out; o++) wmax = Math.max(wmax, Math.abs(w[j * out + o]));
      const raw = a[j] > 0 && wmax > 0 ? a[j] ** alpha / wmax ** (1 - alpha) : 1;
      s[j] = Math.min(1e4, Math.max(1e-4, raw));
    }
    const scaled = Float32Array.from(w, (v, i) => v * s[Math.floor(i / out)]);
    const wName = editor.addConstant(`${linear.node.inputs[1]}.equalized`, tensor('float32', linear.weight.shape, scaled));
    const mm = editor.node(linear.node.name)!;
    editor.withInputs(mm, [mm.inputs[0], wName, ...mm.inputs.slice(2)]);
    const divide = (name: string) => editor.addConstant(`${name}.equalized`, tensor('float32', [a.length], Float32Array.from(toFloat32(editor.constant(name)!), (v, j) => v / s[j])));
    editor.withInputs(ln, [ln.inputs[0], divide(ln.inputs[1]), ...(ln.inputs[2] ? [divide(ln.inputs[2])] : [])]);
  }
  return editor.finish();
}
