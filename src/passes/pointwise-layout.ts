// Where a ConvNeXt block's pointwise layers run: channels-last as MatMuls, or NCHW as 1×1 Convs.
// PyTorch writes Transpose → LayerNorm → MatMul → GELU → MatMul → Transpose back. onnxruntime's CPU
// runs the float layers faster as 1×1 convolutions in NCHW: its blocked (NCHWc) convolution kernels
// beat its MatMul on these shapes, take the bias and the residual Add into the kernel, and keep the
// layout from block to block. Its int8 kernels are the other way round: DQ→MatMul becomes
// MatMulIntegerToFloat with the bias and GELU fused after it, while QLinearConv needs its output
// quantized and then the GELU is left in five pieces (ConvNeXt-T: 44 vs 51 ms). So:
//   pointwise-to-conv    moves the closing Transpose up to the value the layers start from (the
//                        LayerNorm's output): MatMul (+ bias Add) → 1×1 Conv;
//   pointwise-to-matmul  the inverse, for quantize: the opening Transpose moves down to the value the
//                        layers end in: 1×1 Conv → MatMul + bias Add.
// Every node the Transpose passes is rewritten for the other layout (per-channel constants transposed,
// reduction axes remapped): the same arithmetic, only the summation order inside kernels differs.

import { attr, attrInt, attrInts, topologicalOrder, type Graph, type Node } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { inferShapes } from '../graph/shapes.js';
import { int64, numel, reshape, tensor, transpose2d, type Tensor } from '../graph/tensor.js';
import { isPointwiseConv, linearReading, mayRewrite } from './linear.js';
import { ARITHMETIC_OPS, REDUCE_OPS, reduceAxes, UNARY_OPS } from '../graph/ops.js';
import { transpose } from '../graph/evaluate.js';
import type { Pass, PassContext } from './pass.js';

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

/**
 * Which way a region is rewritten. The Transpose that moves is NHWC → NCHW either way: it closes the
 * region (after the last MatMul) and moves up to its start, or opens it (after the LayerNorm) and
 * moves down to its end.
 */
interface Direction {
  readonly transposeAt: 'end' | 'start';
  /** The layout the region is rewritten into (a suffix for new value names). */
  readonly to: 'nchw' | 'nhwc';
  /** The permutation that takes the region's values and constants to that layout. */
  readonly perm: readonly number[];
  /** The linear layer the region holds in its current layout. */
  readonly linear: 'MatMul' | 'Conv';
}
const TO_CONV: Direction = { transposeAt: 'end', to: 'nchw', perm: TO_NCHW, linear: 'MatMul' };
const TO_MATMUL: Direction = { transposeAt: 'start', to: 'nhwc', perm: TO_NHWC, linear: 'Conv' };

export const pointwiseToConv: Pass = {
  name: 'pointwise-to-conv',
  purpose: 'run channels-last pointwise layers as 1×1 Convs in NCHW, moving the Transpose up to the LayerNorm (faster float kernels in onnxruntime)',
  run: (graph, ctx) => moveTransposes(graph, TO_CONV, ctx),
};

export const pointwiseToMatMul: Pass = {
  name: 'pointwise-to-matmul',
  purpose: 'the inverse of pointwise-to-conv, for int8: 1×1 Convs after a LayerNorm become channels-last MatMuls (faster int8 kernels in onnxruntime)',
  run: (graph, ctx) => moveTransposes(graph, TO_MATMUL, ctx),
};

function moveTransposes(graph: Graph, dir: Direction, ctx: PassContext): Graph {
  // ranks from the graph as it came: a value an earlier rewrite made has none, so a region touching
  // one is left alone (regions of different blocks never touch)
  const shapes = inferShapes(graph);
  const rank = (v: string) => shapes.get(v)?.shape.length;
  const editor = new GraphEditor(graph);
  for (const t of graph.nodes) {
    if (t.op !== 'Transpose' || !sameInts(attrInts(t, 'perm', []), TO_NCHW)) continue;
    const region = dir.transposeAt === 'end' ? regionBefore(editor, t, dir, rank) : regionAfter(editor, t, dir, rank);
    if (region) rewrite(editor, region, t, dir, ctx);
  }
  return editor.finish();
}

interface Region {
  /** The one value the region reads (besides constants) and the one value read from outside it. */
  readonly entry: string;
  readonly exit: string;
  /** Its nodes, in graph order. */
  readonly nodes: readonly Node[];
}

// The nodes between the closing Transpose and the single value they all derive from.
function regionBefore(editor: GraphEditor, t: Node, dir: Direction, rank: (v: string) => number | undefined): Region | undefined {
  const inside = new Set<Node>();
  let entry: string | undefined;
  const stack = [t.inputs[0]];
  const seen = new Set<string>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (rank(v) !== 4) return undefined;
    const p = editor.producer(v);
    if (!p || !convertible(editor, p, dir)) {
      if (entry !== undefined) return undefined; // a second way in: the layout cannot change in one place
      entry = v;
      continue;
    }
    inside.add(p);
    for (const i of p.inputs) if (i && !editor.constant(i)) stack.push(i);
  }
  if (entry === undefined || !editor.onlyUse(t.inputs[0], t)) return undefined;
  return closedRegion(editor, inside, entry, t.inputs[0], t, dir);
}

// The nodes after the opening Transpose that read only it, each other and constants.
function regionAfter(editor: GraphEditor, t: Node, dir: Direction, rank: (v: string) => number | undefined): Region | undefined {
  // the Transpose goes away, so its output must be read by the region alone (not a graph output)
  if (editor.isGraphOutput(t.outputs[0])) return undefined;
  const inside = new Set<Node>();
  const made = new Set([t.outputs[0]]);
  for (const n of topologicalOrder({ ...editor.source, nodes: editor.nodeList, initializers: editor.initializers })) {
    if (!n.inputs.some((i) => made.has(i))) continue;
    const within = n.inputs.every((i) => !i || made.has(i) || editor.constant(i));
    if (!within || !convertible(editor, n, dir) || n.outputs.some((o) => rank(o) !== 4)) continue;
    inside.add(n);
    for (const o of n.outputs) made.add(o);
  }
  // the exit: the one value that something outside the region reads
  const exits = [...inside].flatMap((n) => n.outputs).filter((o) => editor.isGraphOutput(o) || editor.consumers(o).some((r) => !inside.has(r)));
  if (exits.length !== 1 || editor.consumers(t.outputs[0]).some((r) => !inside.has(r))) return undefined;
  return closedRegion(editor, inside, t.outputs[0], exits[0], undefined, dir);
}

// A region qualifies when it holds a linear layer and nothing outside reads its inner values.
function closedRegion(editor: GraphEditor, inside: Set<Node>, entry: string, exit: string, closingTranspose: Node | undefined, dir: Direction): Region | undefined {
  if (![...inside].some((n) => n.op === dir.linear)) return undefined;
  for (const n of inside) {
    for (const o of n.outputs) {
      if (o === exit) continue;
      if (editor.isGraphOutput(o) || editor.consumers(o).some((r) => !inside.has(r) && r !== closingTranspose)) return undefined;
    }
  }
  return { entry, exit, nodes: editor.nodeList.filter((n) => inside.has(n)) };
}

function convertible(editor: GraphEditor, n: Node, dir: Direction): boolean {
  if (n.domain) return false;
  const constants = n.inputs.filter((i) => i && editor.constant(i));
  if (n.op === 'MatMul' && dir.linear === 'MatMul') {
    const w = editor.constant(n.inputs[1]);
    return !editor.constant(n.inputs[0]) && w?.dtype === 'float32' && w.shape.length === 2;
  }
  if (n.op === 'Conv' && dir.linear === 'Conv') {
    const w = editor.constant(n.inputs[1]);
    return w !== undefined && (!n.inputs[2] || editor.constant(n.inputs[2])?.shape.length === 1) && isPointwiseConv(n, w);
  }
  if (ARITHMETIC_OPS.has(n.op)) return constants.length <= 1 && constants.every((c) => editor.constant(c)!.shape.length <= 4);
  if (UNARY_OPS.has(n.op)) return true;
  if (REDUCE_OPS.has(n.op)) return attrInt(n, 'keepdims', 1) === 1 && axesOf(editor, n) !== undefined;
  return false;
}

/** The axes a reduction reads, [] when it reduces all of them (or none: either way no axis to move). */
function axesOf(editor: GraphEditor, n: Node): readonly number[] | undefined {
  const axes = reduceAxes(n, (v) => editor.constant(v));
  return axes === 'all' || axes === 'none' ? [] : axes;
}

function rewrite(editor: GraphEditor, region: Region, t: Node, dir: Direction, ctx: PassContext): void {
  const renamed = new Map<string, string>();
  const layout = dir.to;
  const fresh = (v: string) => editor.uniqueName(`${v}/${layout}`);
  // the Transpose that was at one end of the region goes to the other
  if (dir.transposeAt === 'end') {
    const entry = fresh(region.entry);
    editor.insertAfter(region.nodes[0], transposeNode(editor, region.entry, entry));
    renamed.set(region.entry, entry);
    renamed.set(region.exit, t.outputs[0]); // the closing Transpose's readers now read the region's end
  } else {
    renamed.set(t.outputs[0], t.inputs[0]);
    const exit = fresh(region.exit);
    renamed.set(region.exit, exit);
    editor.insertAfter(region.nodes[region.nodes.length - 1], transposeNode(editor, exit, region.exit));
  }
  const value = (v: string) => renamed.get(v) ?? v;
  const output = (v: string) => {
    if (!renamed.has(v)) renamed.set(v, fresh(v));
    return renamed.get(v)!;
  };
  const absorbed = new Set<Node>();
  for (const n of region.nodes) {
    if (absorbed.has(n)) continue;
    if (n.op === 'MatMul') {
      // the layer's bias Add, when it is in the region, becomes the Conv's bias
      const linear = linearReading(editor, n, n.inputs[0]);
      const add = linear?.biasAdd && region.nodes.includes(linear.biasAdd) ? linear.biasAdd : undefined;
      if (add) absorbed.add(add);
      const bias = add ? [add.inputs.find((i) => editor.constant(i))!] : [];
      const [inC, outC] = editor.constant(n.inputs[1])!.shape;
      const weight = transposedWeight(editor, n.inputs[1], [inC, outC], [outC, inC, 1, 1], 'conv', ctx);
      editor.replaceNode(n, { name: n.name, op: 'Conv', domain: '', inputs: [value(n.inputs[0]), weight, ...bias], outputs: [output((add ?? n).outputs[0])], attrs: { kernel_shape: attr.ints([1, 1]) } });
    } else if (n.op === 'Conv') {
      const [outC, inC] = editor.constant(n.inputs[1])!.shape;
      const weight = transposedWeight(editor, n.inputs[1], [outC, inC], [inC, outC], 'matmul', ctx);
      if (!n.inputs[2]) {
        editor.replaceNode(n, { name: n.name, op: 'MatMul', domain: '', inputs: [value(n.inputs[0]), weight], outputs: [output(n.outputs[0])], attrs: {} });
        continue;
      }
      const product = editor.uniqueName(`${n.outputs[0]}/matmul`);
      editor.replaceNode(n, { name: n.name, op: 'MatMul', domain: '', inputs: [value(n.inputs[0]), weight], outputs: [product], attrs: {} });
      editor.insertAfter(editor.producer(product)!, { name: editor.uniqueName(`${n.name}/Add`), op: 'Add', domain: '', inputs: [product, n.inputs[2]], outputs: [output(n.outputs[0])], attrs: {} });
    } else if (REDUCE_OPS.has(n.op)) {
      const axes = axesOf(editor, n)!.map((a) => dir.perm.indexOf(a < 0 ? a + 4 : a)).sort((a, b) => a - b);
      const inputs = n.inputs.map(value);
      const attrs = { ...n.attrs };
      if (n.attrs.axes) attrs.axes = attr.ints(axes);
      else if (inputs[1]) inputs[1] = editor.addConstant(`${n.inputs[1]}.${layout}`, int64(axes));
      editor.replaceNode(n, { ...n, inputs, outputs: n.outputs.map(output), attrs });
    } else {
      const inputs = n.inputs.map((i) => {
        const c = i ? editor.constant(i) : undefined;
        return c ? relaidConstant(editor, i, c, dir, layout) : value(i);
      });
      editor.replaceNode(n, { ...n, inputs, outputs: n.outputs.map(output) });
    }
  }
  for (const n of absorbed) editor.removeNode(n);
  editor.removeNode(t);
  ctx.fired(dir.transposeAt === 'end' ? 'pointwise-to-conv' : 'pointwise-to-matmul', t.name);
}

// A [rows, cols] weight (seen through `view`) transposed and given `shape`. Where the pass may rewrite
// the constant it is transposed within its own array (convert: no second copy of every pointwise
// weight), else into a new constant.
function transposedWeight(editor: GraphEditor, name: string, view: readonly number[], shape: readonly number[], tag: string, ctx: PassContext): string {
  const w = editor.constant(name)!;
  if (!mayRewrite(editor, name, ctx)) return editor.addConstant(`${name}.${tag}`, reshape(transpose2d(reshape(w, view)), shape));
  const own = w.data as Float32Array;
  transpose2d(tensor('float32', view, own.slice()), own);
  editor.initializers.set(name, tensor('float32', shape, own));
  return name;
}

function transposeNode(editor: GraphEditor, input: string, output: string): Node {
  return { name: editor.uniqueName(`${input}/Transpose`), op: 'Transpose', domain: '', inputs: [input], outputs: [output], attrs: { perm: attr.ints(TO_NCHW) } };
}

/** A constant that broadcast against one layout, laid out to broadcast against the other. */
function relaidConstant(editor: GraphEditor, name: string, c: Tensor, dir: Direction, layout: string): string {
  if (numel(c.shape) === 1) return name;
  const four = reshape(c, [...Array(4 - c.shape.length).fill(1), ...c.shape]);
  return editor.addConstant(`${name}.${layout}`, transpose(four, dir.perm)!);
}

const sameInts = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
