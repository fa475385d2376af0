// Short names for the smallest file. On a small quantized model the names are a tenth of the bytes
// (the 356 k-parameter Fashion model: 48 KB of 447 KB), because every weight brings a quantized
// tensor, a scale and a DequantizeLinear, each named after the layer. Graph inputs and outputs keep
// their names (callers feed and read them), and so do the layers: a layer's name is what reports,
// --exclude and the `layers_kept_float` metadata refer to.

import type { Graph, Node } from '../graph/graph.js';
import type { Pass } from './pass.js';

/** Nodes whose names are kept: the ones that own weights, which is what a user looks a model up by. */
const NAMED_OPS = new Set(['Conv', 'ConvTranspose', 'MatMul', 'Gemm', 'LayerNormalization']);

export const compactNames: Pass = {
  name: 'compact-names',
  purpose: 'rename internal values to short ids and drop the names of nodes that are not layers, for the smallest file',
  run(graph, ctx) {
    const kept = new Set([...graph.inputs, ...graph.outputs].map((v) => v.name));
    const renamed = new Map<string, string>();
    let next = 0;
    const rename = (name: string): string => {
      if (!name || kept.has(name)) return name;
      let short = renamed.get(name);
      if (short === undefined) {
        do short = (next++).toString(36);
        while (kept.has(short));
        renamed.set(name, short);
      }
      return short;
    };
    // numbered in the order the nodes read and write values, so the ids run along the graph
    const nodes: Node[] = graph.nodes.map((n) => {
      const inputs = n.inputs.map(rename);
      const outputs = n.outputs.map(rename);
      const name = NAMED_OPS.has(n.op) ? n.name : '';
      return { ...n, name, inputs, outputs };
    });
    const initializers = new Map([...graph.initializers].map(([name, t]) => [rename(name), t]));
    if (renamed.size) ctx.fired('renamed values', `${renamed.size}`);
    return { ...graph, nodes, initializers };
  },
};
