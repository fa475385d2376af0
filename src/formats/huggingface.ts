// A Hugging Face model folder: config.json (architecture numbers, labels, eps), optional
// preprocessor_config.json, and weights as model.safetensors or pytorch_model.bin, possibly
// sharded behind an *.index.json.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { Tensor } from '../graph/tensor.js';
import { readPytorchCheckpoint } from './pytorch.js';
import { readSafetensors } from './safetensors.js';
import { JSON_MAX_BYTES, readTextFile } from './sniff.js';
import type { StateDict } from './state-dict.js';

export interface HfConfig {
  readonly modelType: 'convnext' | 'convnextv2';
  readonly depths?: readonly number[];
  readonly hiddenSizes?: readonly number[];
  readonly numLabels?: number;
  /** Class names in index order, when config.json has id2label. */
  readonly labels?: readonly string[];
  readonly layerNormEps: number;
  readonly imageSize?: number;
}

export interface HfPreprocessing {
  readonly cropPct?: number;
  readonly shortestEdge?: number;
  readonly mean?: readonly number[];
  readonly std?: readonly number[];
  readonly interpolation?: string;
}

export interface HfFolder {
  readonly config: HfConfig;
  readonly preprocessing?: HfPreprocessing;
  readonly tensors: StateDict;
  readonly weightsFile: string;
}

const WEIGHT_FILES = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'];

export function isHfFolder(dir: string): boolean {
  return existsSync(join(dir, 'config.json'));
}

export async function readHfFolder(dir: string): Promise<HfFolder> {
  const config = parseConfig(readJson(join(dir, 'config.json')), join(dir, 'config.json'));
  const preprocPath = join(dir, 'preprocessor_config.json');
  const preprocessing = existsSync(preprocPath) ? parsePreprocessing(readJson(preprocPath)) : undefined;
  const weightsFile = WEIGHT_FILES.find((f) => existsSync(join(dir, f)));
  if (!weightsFile) throw new InputError(`no weights found (looked for ${WEIGHT_FILES.join(', ')})`, dir);
  const path = join(dir, weightsFile);
  const tensors = weightsFile.endsWith('.index.json') ? await readShards(dir, path) : await readWeights(path);
  return { config, preprocessing, tensors, weightsFile };
}

async function readWeights(path: string): Promise<StateDict> {
  return path.endsWith('.safetensors') ? (await readSafetensors(path)).tensors : readPytorchCheckpoint(path);
}

async function readShards(dir: string, indexPath: string): Promise<StateDict> {
  const index = readJson(indexPath) as { weight_map?: Record<string, string> };
  if (!index.weight_map || typeof index.weight_map !== 'object') throw new InputError('shard index has no weight_map', indexPath);
  const files = [...new Set(Object.values(index.weight_map))].sort();
  const out = new Map<string, Tensor>();
  for (const f of files) {
    if (f.includes('/') || f.includes('\\')) throw new InputError(`shard name '${f}' points outside the folder`, indexPath);
    for (const [k, v] of await readWeights(join(dir, f))) out.set(k, v);
  }
  return out;
}

function readJson(path: string): unknown {
  const text = readTextFile(path, 'a JSON config', JSON_MAX_BYTES);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`cannot read JSON (${(e as Error).message})`, path);
  }
}

function parseConfig(raw: unknown, where: string): HfConfig {
  const c = raw as Record<string, unknown>;
  if (!c || typeof c !== 'object') throw new InputError('config is not a JSON object', where);
  const modelType = c.model_type;
  if (modelType !== 'convnext' && modelType !== 'convnextv2') {
    throw new InputError(`not a ConvNeXt model: model_type is ${JSON.stringify(modelType)}, expected "convnext" or "convnextv2"`, where);
  }
  const numbers = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined);
  let labels: string[] | undefined;
  if (c.id2label && typeof c.id2label === 'object') {
    const entries = Object.entries(c.id2label as Record<string, unknown>);
    labels = [];
    for (const [id, label] of entries) {
      const i = Number(id);
      if (!Number.isInteger(i) || i < 0 || i >= entries.length) throw new InputError(`id2label has a bad id ${JSON.stringify(id)}`, where);
      labels[i] = String(label);
    }
  }
  return {
    modelType,
    depths: numbers(c.depths),
    hiddenSizes: numbers(c.hidden_sizes),
    numLabels: typeof c.num_labels === 'number' ? c.num_labels : labels?.length,
    labels,
    layerNormEps: typeof c.layer_norm_eps === 'number' ? c.layer_norm_eps : 1e-12,
    imageSize: typeof c.image_size === 'number' ? c.image_size : undefined,
  };
}

// transformers' ConvNextImageProcessor: for sizes under 384 it resizes the shortest edge to
// shortest_edge / crop_pct and centre-crops; resample 3 is PIL's bicubic.
function parsePreprocessing(raw: unknown): HfPreprocessing {
  const p = (raw ?? {}) as Record<string, unknown>;
  const size = p.size as Record<string, unknown> | number | undefined;
  const shortestEdge = typeof size === 'number' ? size : typeof size?.shortest_edge === 'number' ? size.shortest_edge : undefined;
  const resample: Record<number, string> = { 0: 'nearest', 2: 'bilinear', 3: 'bicubic' };
  return {
    cropPct: typeof p.crop_pct === 'number' ? p.crop_pct : undefined,
    shortestEdge,
    mean: Array.isArray(p.image_mean) ? (p.image_mean as number[]) : undefined,
    std: Array.isArray(p.image_std) ? (p.image_std as number[]) : undefined,
    interpolation: typeof p.resample === 'number' ? resample[p.resample] : undefined,
  };
}
