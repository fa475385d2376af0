// A mutable working copy of a Graph for passes: find producers and consumers, replace or remove
// nodes, add constants, and hand back an immutable Graph in topological order with unused
// initializers dropped. Graph inputs and outputs keep their names whatever is rewired.

import type { Attr, Graph, Node } from './graph.js';
import { withNodes } from './graph.js';
import type { Tensor } from './tensor.js';

export class GraphEditor {
  private nodes: Node[];
  readonly initializers: Map<string, Tensor>;
  private readonly taken = new Set<string>();

  constructor(readonly source: Graph) {
    this.nodes = [...source.nodes];
    this.initializers = new Map(source.initializers);
    for (const v of source.inputs) this.taken.add(v.name);
    for (const k of this.initializers.keys()) this.taken.add(k);
    for (const n of this.nodes) {
      this.taken.add(n.name);
      for (const o of n.outputs) this.taken.add(o);
    }
  }

  get nodeList(): readonly Node[] {
    return this.nodes;
  }

  /** The node called `name` as it is now (passes replace nodes as they edit), if still present. */
  node(name: string): Node | undefined {
    return this.nodes.find((n) => n.name === name);
  }

  /** The node producing `value`, if any (undefined for inputs and constants). */
  producer(value: string): Node | undefined {
    return this.nodes.find((n) => n.outputs.includes(value));
  }

  /** Nodes reading `value`, in graph order. */
  consumers(value: string): Node[] {
    return this.nodes.filter((n) => n.inputs.includes(value));
  }

  isGraphOutput(value: string): boolean {
    return this.source.outputs.some((o) => o.name === value);
  }

  /** True when only `node` reads `value` and it is not a graph output: safe to change in place. */
  onlyUse(value: string, node: Node): boolean {
    if (this.isGraphOutput(value)) return false;
    const users = this.consumers(value);
    return users.length === 1 && users[0] === node;
  }

  constant(value: string): Tensor | undefined {
    return this.initializers.get(value);
  }

  /** A fresh name derived from `base`. */
  uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  addConstant(base: string, t: Tensor): string {
    const name = this.uniqueName(base);
    this.initializers.set(name, t);
    return name;
  }

  replaceNode(old: Node, next: Node): void {
    const i = this.nodes.indexOf(old);
    if (i < 0) throw new Error(`node ${old.name} is not in the graph`);
    this.nodes[i] = next;
  }

  withInputs(node: Node, inputs: readonly string[]): Node {
    const next = { ...node, inputs: [...inputs] };
    this.replaceNode(node, next);
    return next;
  }

  withAttrs(node: Node, attrs: Record<string, Attr>): Node {
    const next = { ...node, attrs: { ...node.attrs, ...attrs } };
    this.replaceNode(node, next);
    return next;
  }

  insertAfter(anchor: Node, node: Node): void {
    const i = this.nodes.indexOf(anchor);
    this.nodes.splice(i + 1, 0, node);
  }

  removeNode(node: Node): void {
    this.nodes = this.nodes.filter((n) => n !== node);
  }

  /**
   * Makes every reader of `from` read `to` instead. When `from` is a graph output, the producer of
   * `to` is renamed to produce `from`, so public names survive.
   */
  rewire(from: string, to: string): void {
    if (this.isGraphOutput(from)) {
      const p = this.producer(to);
      if (!p || this.source.inputs.some((i) => i.name === to) || this.isGraphOutput(to)) {
        this.nodes.push({ name: this.uniqueName(`${from}/Identity`), op: 'Identity', domain: '', inputs: [to], outputs: [from], attrs: {} });
        return;
      }
      this.replaceNode(p, { ...p, outputs: p.outputs.map((o) => (o === to ? from : o)) });
      for (const n of [...this.nodes]) if (n !== p && n.inputs.includes(to)) this.withInputs(n, n.inputs.map((i) => (i === to ? from : i)));
      return;
    }
    for (const n of [...this.nodes]) if (n.inputs.includes(from)) this.withInputs(n, n.inputs.map((i) => (i === from ? to : i)));
  }

  /** Removes `node`, whose first output becomes its input `inputIndex` for every reader. */
  bypass(node: Node, inputIndex = 0): void {
    const out = node.outputs[0];
    const through = node.inputs[inputIndex];
    this.removeNode(node);
    this.rewire(out, through);
  }

  /** The edited graph: topologically ordered, without initializers nothing reads. */
  finish(changes: Partial<Pick<Graph, 'metadata' | 'opsets'>> = {}): Graph {
    return withNodes(this.source, this.nodes, this.initializers, changes);
  }
}
