// fold-constants relies on: a node whose inputs are all constants computes the same values every
// run, so replacing its outputs by initializers holding those values changes nothing — provided we
// compute exactly what the runtime would. Hence the evaluator (graph/evaluate.ts) only takes ops it can reproduce
// bit for bit: data movement (any dtype), int64 arithmetic, and float32 +, −, ×, ÷, √, negation,
// x^1 and x^2, which are correctly rounded when computed in float64 and rounded once to float32
// (float64 has more than 2·24+2 bits). Erf, Tanh, general Pow… depend on the runtime's libm: kept.
//
// A graph input is never a constant, even when an initializer of the same name gives it a default.
// Graph outputs keep their producing node, so public names stay node outputs. Shape also folds when
// only its input's shape is fixed (from shape inference), not its values.

import { topologicalOrder } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { constantValue, evaluate, shapeOf } from '../graph/evaluate.js';
import { inferShapes, isStatic, type Shapes } from '../graph/shapes.js';
import { byteSize, numel } from '../graph/tensor.js';
import type { Pass } from './pass.js';

/**
 * Folding must not blow a small constant up into a big one (Expand, ConstantOfShape): at most 4096
 * values more than its inputs hold; nor widen one to a bigger type (the Cast of an int8 weight to
 * float32, which onnxruntime folds itself at load: passes/dequantize-as-cast-mul.ts) by over 256 bytes.
 */
const GROWTH_LIMIT = 4096;
const WIDENING_LIMIT_BYTES = 256;

export const foldConstants: Pass = {
  name: 'fold-constants',
  purpose: 'turn Constant nodes into initializers and precompute nodes whose inputs are all constant',
  run(graph, ctx) {
    const editor = new GraphEditor(graph);
    const graphInputs = new Set(graph.inputs.map((v) => v.name));
    const outputs = new Set(graph.outputs.map((v) => v.name));
    const constant = (name: string) => (name && !graphInputs.has(name) ? editor.constant(name) : undefined);
    let shapes: Shapes | undefined;
    for (const node of topologicalOrder(graph)) {
      if (node.domain !== '' || node.outputs.some((o) => outputs.has(o))) continue;
      if (node.op === 'Constant') {
        const t = constantValue(node);
        if (!t) continue;
        editor.initializers.set(node.outputs[0], t);
        editor.removeNode(node);
        ctx.fired('constant-node', node.name);
        continue;
      }
      if (node.op === 'Shape' && !constant(node.inputs[0])) {
        shapes ??= inferShapes(graph);
        const shape = shapes.get(node.inputs[0])?.shape;
        if (!shape || !isStatic(shape)) continue;
        editor.initializers.set(node.outputs[0], shapeOf(node, shape));
        editor.removeNode(node);
        ctx.fired('static-shape', node.name);
        continue;
      }
      const inputs = node.inputs.map((i) => (i ? constant(i) : undefined));
      if (node.inputs.length === 0 || node.inputs.some((i, k) => i && !inputs[k])) continue;
      const out = evaluate(node, inputs);
      if (!out || node.outputs.length !== 1) continue;
      const inputSize = inputs.reduce((n, t) => n + (t ? numel(t.shape) : 0), 0);
      const inputBytes = inputs.reduce((n, t) => n + (t ? byteSize(t) : 0), 0);
      if (numel(out.shape) > Math.max(inputSize, GROWTH_LIMIT)) continue;
      if (numel(out.shape) <= inputSize && byteSize(out) > inputBytes + WIDENING_LIMIT_BYTES) continue;
      editor.initializers.set(node.outputs[0], out);
      editor.removeNode(node);
      ctx.fired('evaluate', node.name);
    }
    return editor.finish();
  },
};
