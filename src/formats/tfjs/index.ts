// The TensorFlow.js graph-model writer: model.json (a TF GraphDef in JSON, a signature, the weights
// manifest, our metadata) plus binary weight shards, loadable with tfjs-converter's loadGraphModel.
// The graph is translated op by op from ONNX semantics (tfjs-ops.ts) into NHWC (tfjs-layout.ts);
// the image input is fed as [batch, H, W, C].

import { existsSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InputError } from '../../errors.js';
import type { Graph } from '../../graph/graph.js';
import { TOOL_NAME, TOOL_VERSION } from '../../version.js';
import { writeFolderAtomic } from '../files.js';
import type { Emitter, TfNode } from './emit.js';
import { physicalShape } from './layout.js';
import { lowerToTf } from './lower.js';
import { structuredMetadata } from '../json-values.js';
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
  const { emitter: e, graph: g } = lowerToTf(graph, { weights: options.weights ?? 'float32', gelu, geluOp: false }, 'TF.js');

  const signature: TfjsModelJson['signature'] = { inputs: {}, outputs: {} };
  for (const v of g.inputs) signature.inputs[v.name] = info(e, v.name, v.dtype);
  for (const o of g.outputs) signature.outputs[o.name] = info(e, o.name, o.dtype);

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
  return structuredMetadata(Object.fromEntries(Object.entries(meta).filter(([k]) => k !== 'signature' && k !== 'structuredOutputKeys')));
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
