// A pass is a named function from graph to graph with a one-line purpose. Passes never do I/O; they
// say which rule fired where through the context, so `--verify` and tests can show it.

import type { Warnings } from '../errors.js';
import type { Graph } from '../graph/graph.js';

export interface PassContext {
  /** Records that `rule` rewrote the graph at `where` (a node name). */
  fired(rule: string, where: string): void;
  readonly warnings?: Warnings;
  /**
   * The caller has handed the input graph over and will not use it again, so a pass may overwrite
   * the data of a constant that only one node reads instead of copying it (convert does this: it
   * saves a copy of every pointwise weight per folding pass on a 100 MB model).
   */
  readonly inPlace?: boolean;
}

export interface Pass {
  readonly name: string;
  /** One line: what the pass does and why. */
  readonly purpose: string;
  run(graph: Graph, ctx: PassContext): Graph;
}

/** A context that collects what fired, for tests and reports. */
export function recordingContext(options: { warnings?: Warnings; inPlace?: boolean } = {}): PassContext & { readonly log: { rule: string; where: string }[] } {
  const log: { rule: string; where: string }[] = [];
  return { log, ...options, fired: (rule, where) => log.push({ rule, where }) };
}
