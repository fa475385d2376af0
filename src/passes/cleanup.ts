// Generic clean-ups that every importer's graph benefits from. Each pass relies on one identity:
//   remove-identity    y = x: a node that passes its input through unchanged can be bypassed, its
//                      readers reading x. "Unchanged" includes shape: x·1 where 1 broadcasts x to a
//                      bigger shape is not an identity, so shapes come from inference.
//   cancel-transposes  Transpose(q)(Transpose(p)(x)) = Transpose(r)(x) with r[i] = p[q[i]]; when r
//                      is the identity both go. Only when nothing else reads the middle value, or
//                      it would have to be computed anyway.
//   remove-dead        a node whose outputs nothing reads (and no graph output names) cannot change
//                      the outputs; neither can an initializer nothing reads.
// Graph inputs and outputs keep their names: GraphEditor.rewire renames a producer to the public
// name, and a rule that could only keep it by adding an Identity does not fire.

import { GraphEditor } from '../graph/edit.js';
import { attrInt, attrInts, topologicalOrder, type Node } from '../graph/graph.js';
import { dtypeFromOnnx } from '../graph/dtypes.js';
import { inferShapes, sameShape, type Shapes } from '../graph/shapes.js';
import type { Tensor } from '../graph/tensor.js';
import type { Pass } from './pass.js';

export const removeIdentity: Pass = {
  name: 'remove-identity',
  purpose: 'bypass nodes that return their input unchanged: Identity, inference Dropout, same-type Cast, same-shape Reshape/Flatten, identity Transpose, x·1, x+0, x/1',
  run(graph, ctx) {
    const editor = new GraphEditor(graph);
    // Bypassing an identity never changes any remaining value's shape, so one inference serves.
    const shapes = inferShapes(graph);
    const graphInputs = new Set(graph.inputs.map((v) => v.name));
    // Walk the editor's live list: a bypass rewrites the readers of what it removed.
    for (let i = 0; i < editor.nodeList.length; i++) {
      const node = editor.nodeList[i];
      if (node.domain !== '') continue;
      const found = passThrough(node, editor, shapes, graphInputs);
      if (!found) continue;
      const through = node.inputs[found.input];
      if (editor.isGraphOutput(node.outputs[0]) && (!editor.producer(through) || editor.isGraphOutput(through) || graphInputs.has(through))) continue;
      editor.bypass(node, found.input);
      ctx.fired(found.rule, node.name);
      i--;
    }
    return editor.finish();
  },
};

/** Which input `node` passes through unchanged, and the rule that says so; undefined if none. */
function passThrough(node: Node, editor: GraphEditor, shapes: Shapes, graphInputs: Set<string>): { input: number; rule: string } | undefined {
  const [x] = node.inputs;
  const out = node.outputs[0];
  if (!x || !out) return undefined;
  const constant = (name: string | undefined) => (name && !graphInputs.has(name) ? editor.constant(name) : undefined);
  const sameAsInput = (input: string) => {
    const a = shapes.get(input);
    const b = shapes.get(out);
    return a !== undefined && b !== undefined && a.dtype === b.dtype && sameShape(a.shape, b.shape);
  };
  switch (node.op) {
    case 'Identity':
      return { input: 0, rule: 'identity' };
    case 'Dropout': {
      // Inference mode unless training_mode is given and not a constant false; the mask must be unread.
      const mask = node.outputs[1];
      if (mask && (editor.consumers(mask).length > 0 || editor.isGraphOutput(mask))) return undefined;
      const training = node.inputs[2];
      if (training && !allEqual(constant(training), 0)) return undefined;
      return { input: 0, rule: 'dropout' };
    }
    case 'Cast': {
      const from = shapes.get(x)?.dtype;
      return from !== undefined && from === dtypeFromOnnx(attrInt(node, 'to')) ? { input: 0, rule: 'cast-same-type' } : undefined;
    }
    case 'Reshape':
    case 'Flatten':
      return sameAsInput(x) ? { input: 0, rule: 'reshape-same-shape' } : undefined;
    case 'Transpose': {
      const rank = shapes.get(x)?.shape.length;
      const perm = permOf(node, rank);
      return perm && perm.every((p, i) => p === i) ? { input: 0, rule: 'transpose-identity' } : undefined;
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div': {
      // x+0, 0+x, x−0, x·1, 1·x, x/1 — when the result has x's own shape and dtype.
      const neutral = node.op === 'Add' || node.op === 'Sub' ? 0 : 1;
      const commutes = node.op === 'Add' || node.op === 'Mul';
      for (const [keep, other] of commutes ? [[0, 1], [1, 0]] : [[0, 1]]) {
        const c = constant(node.inputs[other]);
        if (c && allEqual(c, neutral) && sameAsInput(node.inputs[keep])) return { input: keep, rule: 'neutral-element' };
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** True when `t` is a non-empty tensor whose every element equals `value` (−0 counts as 0). */
function allEqual(t: Tensor | undefined, value: number): boolean {
  if (!t || t.data.length === 0) return false;
  if (t.dtype === 'float16' || t.dtype === 'bfloat16') return false; // raw bits; not worth decoding here
  for (const v of t.data) if (Number(v) !== value) return false;
  return true;
}

/** A Transpose's permutation; without the attribute it reverses the axes (needs the rank). */
function permOf(node: Node, rank: number | undefined): readonly number[] | undefined {
  if (node.attrs.perm) return attrInts(node, 'perm');
  return rank === undefined ? undefined : Array.from({ length: rank }, (_, i) => rank - 1 - i);
}

export const cancelTransposes: Pass = {
  name: 'cancel-transposes',
  purpose: 'compose back-to-back Transposes into one, or none when they cancel',
  run(graph, ctx) {
    const editor = new GraphEditor(graph);
    const shapes = inferShapes(graph);
    let changed = true;
    while (changed) {
      changed = false;
      for (const second of editor.nodeList) {
        if (second.op !== 'Transpose' || second.domain !== '') continue;
        const middle = second.inputs[0];
        const first = editor.producer(middle);
        if (!first || first.op !== 'Transpose' || first.domain !== '' || !editor.onlyUse(middle, second)) continue;
        const x = first.inputs[0];
        const p = permOf(first, shapes.get(x)?.shape.length);
        const q = permOf(second, p?.length);
        if (!p || !q || p.length !== q.length) continue;
        const composed = q.map((i) => p[i]);
        editor.removeNode(first);
        if (composed.every((v, i) => v === i)) {
          editor.removeNode(second);
          editor.rewire(second.outputs[0], x);
          ctx.fired('cancel', second.name);
        } else {
          editor.replaceNode(second, { ...second, inputs: [x], attrs: { ...second.attrs, perm: { kind: 'ints', value: composed } } });
          ctx.fired('merge', second.name);
        }
        changed = true;
        break; // the list changed under us; start again
      }
    }
    return editor.finish();
  },
};

export const removeDead: Pass = {
  name: 'remove-dead',
  purpose: 'drop nodes whose outputs nothing reads and initializers nothing uses',
  run(graph, ctx) {
    const editor = new GraphEditor(graph);
    // Liveness flows backwards from the graph outputs, so a whole dead chain goes in one walk.
    const live = new Set(graph.outputs.map((o) => o.name));
    const order = topologicalOrder(graph);
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i];
      if (node.outputs.some((o) => live.has(o))) {
        for (const input of node.inputs) if (input) live.add(input);
      } else {
        editor.removeNode(node);
        ctx.fired('dead-node', node.name);
      }
    }
    for (const name of graph.initializers.keys()) if (!live.has(name)) ctx.fired('unused-initializer', name);
    return editor.finish(); // finish drops the initializers nothing reads
  },
};
