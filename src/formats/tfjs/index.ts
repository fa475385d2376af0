// The TensorFlow.js graph-model writer: model.json (a TF GraphDef in JSON, a signature, the weights
// manifest, our metadata) plus binary weight shards, loadable with tfjs-converter's loadGraphModel.
// The graph is translated op by op from ONNX semantics (tfjs-ops.ts) into NHWC (tfjs-layout.ts);
// the image input is fed as [batch, H, W, C].

import { existsSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InputError, UnsupportedError } from '../../errors.js';
import { producers, topologicalOrder, type Graph, type Node } from '../../graph/graph.js';
import { TOOL_NAME, TOOL_VERSION } from '../../version.js';
import { writeFolderAtomic } from '../files.js';
import { Emitter, tfAttr, type TfNode } from './emit.js';
import { physicalShape, samePerm, transposeBetween } from './layout.js';
import { TFJS_OPS, unsupportedOutputs } from './ops.js';
import { constantValues } from '../../graph/evaluate.js';
import { applyPasses } from '../../passes/pipeline.js';
import { tfjsFoldGeluScales, tfjsFuseGelu } from '../../passes/tfjs-gelu.js';
import { SHARD_FILE, shardWeights, WEIGHT_FORMATS, type WeightFormat, type WeightSpec } from './weights.js';

export { WEIGHT_FORMATS, type WeightFormat } from './weights.js';

export interface TfjsOptions {
  /** Storage of conv/matmul weights (other constants stay float32). Default 'float32'. */
  readonly weights?: WeightFormat;
  /** Exact GELU ('erf', default) or the tanh approximation. */
  readonly gelu?: 'erf' | 'tanh';
  /** Bytes per weight shard file; default 4 MiB, as tensorflowjs_converter. */
  readonly shardSize?: number;
  /** model.json's generatedBy; by default the graph's converter metadata. */
  readonly generatedBy?: string;
}

export interface WriteTfjsOptions extends TfjsOptions {
  /** Write into a folder that holds files other than a previous TF.js model. */
  readonly force?: boolean;
}

interface TensorInfo {
  name: string;
  dtype: string;
  tensorShape: { dim: { size: string }[] };
}

export interface TfjsModelJson {
  format: 'graph-model';
  generatedBy: string;
  convertedBy: string;
  modelTopology: { node: TfNode[]; library: Record<string, never>; versions: { producer: number } };
  signature: { inputs: Record<string, TensorInfo>; outputs: Record<string, TensorInfo> };
  userDefinedMetadata: Record<string, unknown>;
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
}

export interface EncodedTfjs {
  readonly modelJson: TfjsModelJson;
  readonly shards: Uint8Array[];
}

export const DEFAULT_SHARD_SIZE = 4 * 1024 * 1024;
// A GraphDef version as TensorFlow 2.x writes it; TF.js does not read it.
const GRAPH_DEF_PRODUCER = 1645;

export function encodeTfjs(graph: Graph, options: TfjsOptions = {}): EncodedTfjs {
  const gelu = options.gelu ?? 'erf';
  if (gelu !== 'erf' && gelu !== 'tanh') throw new InputError(`unknown GELU form '${gelu}' (erf or tanh)`);
  if (options.weights !== undefined && !WEIGHT_FORMATS.includes(options.weights)) {
    throw new InputError(`unknown weight format '${options.weights}' (${WEIGHT_FORMATS.join(', ')})`);
  }
  const g = applyPasses(graph, [tfjsFuseGelu, tfjsFoldGeluScales(gelu)]);
  const live = liveNodes(g);
  checkSupported(g, live);

  const e = new Emitter(g, { weights: options.weights ?? 'float32', gelu });
  for (const [name, t] of constantValues(g)) e.consts.set(name, t);
  for (const v of g.inputs) e.placeholder(v.name, v.dtype, v.shape.map(size));
  for (const n of topologicalOrder(g)) if (live.has(n) && !e.fused.has(n)) TFJS_OPS[n.op](n, e);

  const signature: TfjsModelJson['signature'] = { inputs: {}, outputs: {} };
  for (const v of g.inputs) signature.inputs[v.name] = info(e, v.name, v.dtype);
  for (const o of g.outputs) {
    presentOutput(e, o.name);
    signature.outputs[o.name] = info(e, o.name, o.dtype);
  }

  const { manifest, shards } = shardWeights(e.weights, options.shardSize ?? DEFAULT_SHARD_SIZE);
  const converter = `${TOOL_NAME} ${TOOL_VERSION}`;
  return {
    modelJson: {
      format: 'graph-model',
      generatedBy: options.generatedBy ?? graph.metadata.converter ?? converter,
      convertedBy: converter,
      modelTopology: { node: e.nodes, library: {}, versions: { producer: GRAPH_DEF_PRODUCER } },
      signature,
      userDefinedMetadata: userMetadata(graph.metadata),
      weightsManifest: manifest,
    },
    shards,
  };
}

const size = (d: number | string) => (typeof d === 'number' ? d : -1);

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

function info(e: Emitter, value: string, dtype: string): TensorInfo {
  const v = e.get(value);
  return {
    name: `${v.ref}:0`,
    dtype: dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32',
    tensorShape: { dim: physicalShape(v.shape, v.perm).map((d) => ({ size: String(d) })) },
  };
}

/**
 * Graph metadata as structured values where they are JSON (labels, preprocessing, source). Keys
 * that TF.js itself reads from userDefinedMetadata (signature, structuredOutputKeys) are left out
 * so that metadata can never change how the model runs.
 */
function userMetadata(meta: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta)) {
    if (k === 'signature' || k === 'structuredOutputKeys') continue;
    let value: unknown = v;
    if (/^\s*[[{]/.test(v)) {
      try {
        value = JSON.parse(v);
      } catch {
        value = v;
      }
    }
    out[k] = value;
  }
  return out;
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
function checkSupported(g: Graph, live: Set<Node>): void {
  const used = new Set([...g.outputs.map((o) => o.name), ...[...live].flatMap((n) => n.inputs)]);
  const problems = new Map<string, string>();
  for (const n of g.nodes) {
    if (!live.has(n)) continue;
    const what = n.domain !== '' && n.domain !== 'ai.onnx' ? `${n.domain}::${n.op}` : !TFJS_OPS[n.op] ? n.op : unsupportedOutputs(n, (v) => used.has(v));
    if (what && !problems.has(what)) problems.set(what, n.name);
  }
  if (problems.size === 0) return;
  const list = [...problems].map(([op, node]) => `${op} (node ${node})`).join(', ');
  throw new UnsupportedError(`TF.js export does not support ${problems.size === 1 ? 'op' : 'ops'} ${list}`, undefined, 'tfjs-op');
}

/** Op type → count in a model.json, for reports and tests. */
export function tfjsOpCounts(modelJson: TfjsModelJson): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of modelJson.modelTopology.node) counts[n.op] = (counts[n.op] ?? 0) + 1;
  return counts;
}

/**
 * Writes dir/model.json and its shards through writeFolderAtomic (model.json last); shards of a
 * previous model that the new one does not use are removed afterwards. A folder with
 * anything besides a TF.js model in it is refused unless `force`.
 */
export function writeTfjsModel(graph: Graph, dir: string, options: WriteTfjsOptions = {}): { files: string[]; bytes: number; modelJson: TfjsModelJson } {
  const target = resolve(dir);
  const parent = dirname(target);
  if (!existsSync(parent) || !statSync(parent).isDirectory()) throw new InputError(`output folder ${parent} does not exist`, dir);
  const exists = existsSync(target);
  if (exists && !statSync(target).isDirectory()) throw new InputError('output path is a file; TF.js models are written to a folder', dir);
  const previous = exists ? readdirSync(target) : [];
  const foreign = previous.filter((f) => f !== 'model.json' && !SHARD_FILE.test(f));
  if (foreign.length && !options.force) {
    throw new InputError(`folder holds other files (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}); choose an empty folder or pass --force`, dir);
  }

  const { modelJson, shards } = encodeTfjs(graph, options);
  const paths = modelJson.weightsManifest[0].paths;
  const files = [
    { path: 'model.json', chunks: [new TextEncoder().encode(JSON.stringify(modelJson))] },
    ...shards.map((s, k) => ({ path: paths[k], chunks: [s] })),
  ];
  writeFolderAtomic(target, files);
  if (exists) for (const f of previous) if (SHARD_FILE.test(f) && !paths.includes(f)) unlinkSync(join(target, f));
  return { files: files.map((f) => join(target, f.path)), bytes: files.reduce((n, f) => n + f.chunks[0].byteLength, 0), modelJson };
}
