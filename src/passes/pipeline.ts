// The pass pipeline: a flat, named list. `convert` runs all of it by default; --passes and
// --skip-pass choose; every pass is followed by the structural check, and an optional probe (the
// CLI's --verify runs the graph in onnxruntime) measures how much each pass moved the outputs.

import { InputError } from '../errors.js';
import { checkGraph, type Graph } from '../graph/graph.js';
import { biasFullRank } from './bias-full-rank.js';
import { cancelTransposes, removeDead, removeIdentity } from './cleanup.js';
import { foldConstants } from './fold-constants.js';
import { foldGrnBeta } from './fold-grn-beta.js';
import { foldLayerNormAffine } from './fold-layernorm-affine.js';
import { foldLayerScale } from './fold-layerscale.js';
import { fuseLayerNorm } from './fuse-layernorm.js';
import { recordingContext, type Pass, type PassContext } from './pass.js';
import { pointwiseToConv, pointwiseToMatMul } from './pointwise-layout.js';
import { compactNames } from './compact-names.js';
import { matmulIntegerToFloat } from './matmul-integer-to-float.js';
import { dequantizeAsCastMul } from './dequantize-as-cast-mul.js';
import { matmulNBits } from './matmul-nbits.js';
import { tfjsFoldGeluScales, tfjsFuseGelu } from './tfjs-gelu.js';

/** Every pass, in the order the default pipeline runs them. */
export const PASSES: readonly Pass[] = [
  foldConstants,
  removeIdentity,
  fuseLayerNorm,
  foldLayerScale,
  foldLayerNormAffine,
  foldGrnBeta,
  cancelTransposes,
  pointwiseToConv,
  removeDead,
];

/**
 * Passes outside the default pipeline, which --passes can name: quantize runs pointwise-to-matmul
 * and bias-full-rank for int8, matmul-integer-to-float after it for onnxruntime's CPU targets and
 * dequantize-as-cast-mul for int8-weights (--skip-pass leaves any out), and compact-names runs as a
 * file is written.
 */
export const OPTIONAL_PASSES: readonly Pass[] = [pointwiseToMatMul, biasFullRank, matmulIntegerToFloat, dequantizeAsCastMul, matmulNBits(), compactNames];

/** Passes the TF.js writer runs on its way out; not selectable, since their op is TF.js's alone. */
export const TFJS_WRITER_PASSES: readonly Pass[] = [tfjsFuseGelu, tfjsFoldGeluScales('erf')];

export interface PassSelection {
  /** Exactly these passes, in this order. */
  readonly passes?: readonly string[];
  /** Leave these out. */
  readonly skip?: readonly string[];
}

export function selectPasses(selection: PassSelection = {}): Pass[] {
  const known = new Map([...PASSES, ...OPTIONAL_PASSES].map((p) => [p.name, p]));
  const lookup = (name: string) => {
    const p = known.get(name);
    if (!p) throw new InputError(`unknown pass '${name}' (passes: ${[...known.keys()].join(', ')})`);
    return p;
  };
  const chosen = selection.passes ? selection.passes.map(lookup) : [...PASSES];
  const skip = new Set((selection.skip ?? []).map((n) => lookup(n).name));
  return chosen.filter((p) => !skip.has(p.name));
}

export interface PassReport {
  readonly name: string;
  readonly nodesBefore: number;
  readonly nodesAfter: number;
  /** Rule firings: how often, and where (node names). */
  readonly fired: readonly { rule: string; where: string }[];
  readonly ms: number;
  /** From the probe, when one was given: max |Δoutput| / max |output| against the previous graph and the original. */
  readonly change?: { readonly step: number; readonly total: number };
}

export interface PipelineOptions {
  /** Runs a graph on a fixed probe input and returns its output (for --verify). */
  readonly probe?: (graph: Graph) => Promise<Float32Array>;
  readonly onPass?: (pass: Pass) => void;
  /** The caller gives up `graph`: passes may reuse its constant buffers (see PassContext.inPlace). */
  readonly inPlace?: boolean;
}

export async function runPipeline(graph: Graph, passes: readonly Pass[], options: PipelineOptions = {}): Promise<{ graph: Graph; reports: PassReport[] }> {
  const reports: PassReport[] = [];
  const original = options.probe ? await options.probe(graph) : undefined;
  let previous = original;
  for (const pass of passes) {
    options.onPass?.(pass);
    const ctx = recordingContext({ inPlace: options.inPlace });
    const start = performance.now();
    const next = checkedRun(pass, graph, ctx);
    const ms = performance.now() - start;
    let change: PassReport['change'];
    if (options.probe && original && previous) {
      const out = await options.probe(next);
      change = { step: relativeChange(out, previous), total: relativeChange(out, original) };
      previous = out;
    }
    reports.push({ name: pass.name, nodesBefore: graph.nodes.length, nodesAfter: next.nodes.length, fired: ctx.log, ms, change });
    graph = next;
  }
  return { graph, reports };
}

/** Runs one pass and checks the graph it returns (every value defined once, no cycle, outputs produced). */
function checkedRun(pass: Pass, graph: Graph, ctx: PassContext): Graph {
  const next = pass.run(graph, ctx);
  const problems = checkGraph(next);
  if (problems.length) throw new Error(`pass ${pass.name} broke the graph: ${problems.slice(0, 3).join('; ')}`);
  return next;
}

/** The passes in order, each checked, for writers that rewrite on the way out (no probe, no report). */
export function applyPasses(graph: Graph, passes: readonly Pass[]): Graph {
  for (const pass of passes) graph = checkedRun(pass, graph, recordingContext());
  return graph;
}

/** max |a − b| / max |b| (the tolerance measure every test uses). */
export function relativeChange(a: Float32Array, b: Float32Array): number {
  let maxRef = 0;
  let maxErr = 0;
  for (let i = 0; i < b.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(b[i]));
    maxErr = Math.max(maxErr, Math.abs(a[i] - b[i]));
  }
  return maxRef === 0 ? maxErr : maxErr / maxRef;
}
