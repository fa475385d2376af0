// The NHWC lowering that the TF.js and TFLite writers share: an ONNX-semantics graph becomes TF ops
// (tensorflow's names and attributes, as tfjs-converter reads them) over NHWC tensors, with fused
// convolutions and no Transpose in a ConvNeXt. TF.js serialises the result as model.json; the TFLite
// writer translates each TF op into its builtin (formats/tflite/ops.ts).

import { UnsupportedError } from '../../errors.js';
import { producers, topologicalOrder, type Graph, type Node } from '../../graph/graph.js';
import { constantValues } from '../../graph/evaluate.js';
import { applyPasses } from '../../passes/pipeline.js';
import { tfjsFoldGeluScales, tfjsFuseGelu } from '../../passes/tfjs-gelu.js';
import { Emitter, tfAttr, type EmitOptions } from './emit.js';
import { samePerm, transposeBetween } from './layout.js';
import { TFJS_OPS, unsupportedOutputs } from './ops.js';

export interface Lowered {
  /** The TF nodes, in execution order, and the weights of their Const nodes. */
  readonly emitter: Emitter;
  /** The graph after the writer's GELU passes: its inputs and outputs name the signature. */
  readonly graph: Graph;
}

/** Lowers `graph` for `target` (named in the error listing the ops it cannot translate). */
export function lowerToTf(graph: Graph, options: EmitOptions, target: string): Lowered {
  // a target with a GELU op of its own keeps the node whole; TF.js folds its constant factors away
  const g = applyPasses(graph, options.geluOp ? [tfjsFuseGelu] : [tfjsFuseGelu, tfjsFoldGeluScales(options.gelu)]);
  const live = liveNodes(g);
  checkSupported(g, live, target);
  const e = new Emitter(g, options);
  for (const [name, t] of constantValues(g)) e.consts.set(name, t);
  for (const v of g.inputs) e.placeholder(v.name, v.dtype, v.shape.map((d) => (typeof d === 'number' ? d : -1)));
  for (const n of topologicalOrder(g)) if (live.has(n) && !e.fused.has(n)) TFJS_OPS[n.op](n, e);
  for (const o of g.outputs) presentOutput(e, o.name);
  return { emitter: e, graph: g };
}

/**
 * Gives a graph output its public node name and layout: NHWC when 4-D (like the input), logical
 * order otherwise. Usually the producing op already has both; else a Transpose or Identity is added.
 */
function presentOutput(e: Emitter, value: string): void {
  const want = Emitter.outputLayout(e.get(value).shape.length);
  if (!samePerm(e.get(value).perm, want)) {
    const name = e.publicName(value); // renames the producer if it holds the name
    const v = e.get(value);
    const perm = e.ints(`${name}/perm`, transposeBetween(v.perm, want));
    e.define(value, e.op('Transpose', name, [v.ref, perm], { T: tfAttr.float32, Tperm: tfAttr.int32 }), want, v.shape);
  } else if (e.get(value).ref !== e.reservedName(value)) {
    const v = e.get(value);
    e.define(value, e.op('Identity', e.publicName(value), [v.ref], { T: tfAttr.float32 }), want, v.shape);
  }
}

/** Nodes that the outputs depend on; the rest would only bloat the model. */
function liveNodes(g: Graph): Set<Node> {
  const producedBy = producers(g);
  const live = new Set<Node>();
  const stack = g.outputs.map((o) => o.name);
  while (stack.length) {
    const n = producedBy.get(stack.pop()!);
    if (!n || live.has(n)) continue;
    live.add(n);
    stack.push(...n.inputs.filter(Boolean));
  }
  return live;
}

/** One error naming every op (and an example node) that the writer cannot translate. */
function checkSupported(g: Graph, live: Set<Node>, target: string): void {
  const used = new Set([...g.outputs.map((o) => o.name), ...[...live].flatMap((n) => n.inputs)]);
  const problems = new Map<string, string>();
  for (const n of g.nodes) {
    if (!live.has(n)) continue;
    const what = n.domain !== '' && n.domain !== 'ai.onnx' ? `${n.domain}::${n.op}` : !TFJS_OPS[n.op] ? n.op : unsupportedOutputs(n, (v) => used.has(v));
    if (what && !problems.has(what)) problems.set(what, n.name);
  }
  if (problems.size === 0) return;
  const list = [...problems].map(([op, node]) => `${op} (node ${node})`).join(', ');
  throw new UnsupportedError(`${target} export does not support ${problems.size === 1 ? 'op' : 'ops'} ${list}`, undefined, 'tfjs-op');
}
