// fold-layernorm-affine: LN(x)·γ + β → L  ⇒  LN₀(x) → L'   with W' = diag(γ)·W, b' = b + β·W
// A LayerNorm whose only reader is a linear layer over the normalised axis (the block's first
// pointwise layer, the head's classifier, the 2×2 downsampling conv after a transpose back to NCHW)
// hands its affine to that layer; it keeps γ = 1 and no β. The conditions are read off the graph:
// the LayerNorm output must have exactly one reader (a residual branch would see the unfolded
// values), and a convolution must not pad (padded zeros would wrongly receive β·W).
// A norm written out in ops has only its γ (timm's RMSNorm / SimpleNorm, convnext/build.ts:
// x / √(…) · γ, a per-channel Mul of the Div): (y·γ)·W + b = y·(diag(γ)·W) + b, exact under any
// padding too (a padded zero stays zero); the Mul goes.

import { attrInt, attrInts, type Graph, type Node } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { inferShapes } from '../graph/shapes.js';
import { float32, toFloat32 } from '../graph/tensor.js';
import { absorbInputAffine, linearReading, perChannelAxis, type Linear } from './linear.js';
import type { Pass, PassContext } from './pass.js';

export const foldLayerNormAffine: Pass = {
  name: 'fold-layernorm-affine',
  purpose: "fold a LayerNorm's γ and β into the single linear layer that reads it, where that is exact",
  run(graph: Graph, ctx: PassContext): Graph {
    const shapes = inferShapes(graph);
    const editor = new GraphEditor(graph);
    for (const { name } of graph.nodes) {
      const ln = editor.node(name);
      if (ln?.op === 'Mul') foldNormWeight(editor, ln, (v) => shapes.get(v)?.shape.length, ctx);
      if (ln?.op !== 'LayerNormalization' || ln.outputs.length !== 1) continue;
      const rank = shapes.get(ln.inputs[0])?.shape.length;
      if (rank === undefined || (attrInt(ln, 'axis', -1) + rank) % rank !== rank - 1) continue;
      const gamma = editor.constant(ln.inputs[1]);
      const beta = ln.inputs[2] ? editor.constant(ln.inputs[2]) : undefined;
      if (!gamma || (ln.inputs[2] && !beta)) continue;
      const g = toFloat32(gamma);
      const b = beta ? toFloat32(beta) : undefined;
      if (g.every((v) => v === 1) && (!b || b.every((v) => v === 0))) continue; // nothing to fold
      const target = foldTarget(editor, ln, rank, (v) => shapes.get(v)?.shape);
      if (!target || target.inChannels !== g.length) continue;
      absorbInputAffine(editor, target, g, b, 'ln_folded', ctx);
      const ones = editor.addConstant(`${ln.inputs[1]}.ones`, float32([g.length], new Float32Array(g.length).fill(1)));
      editor.withInputs(ln, [ln.inputs[0], ones]);
      ctx.fired('fold-layernorm-affine', ln.name);
    }
    return editor.finish();
  },
};

function foldNormWeight(editor: GraphEditor, mul: Node, rankOf: (v: string) => number | undefined, ctx: PassContext): void {
  const at = mul.inputs.findIndex((v) => editor.constant(v) !== undefined);
  if (mul.inputs.length !== 2 || at < 0) return;
  const y = mul.inputs[1 - at];
  const rank = rankOf(y);
  const gamma = rank === undefined ? undefined : perChannelAxis(editor.constant(mul.inputs[at])!, rank);
  const out = mul.outputs[0];
  if (editor.producer(y)?.op !== 'Div' || !gamma || gamma.axis < 0 || editor.isGraphOutput(out)) return;
  const users = editor.consumers(out);
  const target = users.length === 1 ? linearReading(editor, users[0], out) : undefined;
  if (!target || gamma.axis !== (target.kind === 'conv' ? 1 : rank! - 1) || target.inChannels !== gamma.values.length) return;
  absorbInputAffine(editor, target, gamma.values, undefined, 'norm_folded', ctx);
  editor.bypass(mul, 1 - at);
  ctx.fired('fold-layernorm-affine', mul.name);
}

// The linear layer that alone reads the LayerNorm's output, with the normalised (last) axis as its
// input-channel axis: directly (MatMul, Gemm), or after one Transpose that moves it to axis 1 (Conv),
// or — torchvision's head — a Transpose to [N, C, 1, 1] and a Flatten into a Gemm.
function foldTarget(editor: GraphEditor, ln: Node, rank: number, shapeOf: (v: string) => readonly (number | string)[] | undefined): Linear | undefined {
  const out = ln.outputs[0];
  if (editor.isGraphOutput(out)) return undefined;
  const users = editor.consumers(out);
  if (users.length !== 1) return undefined;
  const [user] = users;
  if (user.op === 'MatMul' || user.op === 'Gemm') return linearReading(editor, user, out);
  if (user.op !== 'Transpose' || editor.isGraphOutput(user.outputs[0])) return undefined;
  const perm = attrInts(user, 'perm', [...Array(rank).keys()].reverse());
  if (perm[1] !== rank - 1) return undefined;
  const readers = editor.consumers(user.outputs[0]);
  if (readers.length !== 1) return undefined;
  const [next] = readers;
  if (next.op === 'Flatten' || next.op === 'Reshape') {
    // only a pure re-labelling of [N, C, 1, 1] as [N, C] keeps channel i at input i of the Gemm
    const shape = shapeOf(user.outputs[0]);
    const flat = shapeOf(next.outputs[0]);
    if (!shape || !flat || flat.length !== 2 || shape.slice(2).some((d) => d !== 1) || flat[1] !== shape[1]) return undefined;
    const gemms = editor.consumers(next.outputs[0]);
    if (gemms.length !== 1 || gemms[0].op !== 'Gemm' || editor.isGraphOutput(next.outputs[0])) return undefined;
    return linearReading(editor, gemms[0], next.outputs[0]);
  }
  if (next.op !== 'Conv') return undefined;
  const conv = next;
  const pads = attrInts(conv, 'pads', [0, 0, 0, 0]);
  const autoPad = conv.attrs.auto_pad?.kind === 'string' ? conv.attrs.auto_pad.value : 'NOTSET';
  if (pads.some((p) => p !== 0) || (autoPad !== 'NOTSET' && autoPad !== 'VALID')) return undefined;
  return linearReading(editor, conv, user.outputs[0]);
}
