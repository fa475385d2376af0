// A Hugging Face model folder: config.json (architecture numbers, labels, eps), optional
// preprocessor_config.json, and weights as model.safetensors or pytorch_model.bin, possibly
// sharded behind an *.index.json. Two writers make such folders: transformers (config.json with
// model_type) and timm's Hub export (config.json with architecture and pretrained_cfg, which holds
// the evaluation preprocessing itself).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { parseErrorMessage } from './json-values.js';
import type { Tensor } from '../graph/tensor.js';
import { readPytorchCheckpoint } from './pytorch.js';
import { readSafetensors } from './safetensors.js';
import { JSON_MAX_BYTES, readTextFile } from './sniff.js';
import type { StateDict } from './state-dict.js';

export interface HfConfig {
  /** Which library wrote it: transformers, or timm (whose `architecture` fixes the constants). */
  readonly writer: 'transformers' | 'timm';
  readonly modelType: 'convnext' | 'convnextv2';
  /** timm: the registered model name, e.g. convnext_tiny, and the arguments it was built with. */
  readonly architecture?: string;
  readonly modelArgs?: Readonly<Record<string, unknown>>;
  readonly depths?: readonly number[];
  readonly hiddenSizes?: readonly number[];
  readonly numLabels?: number;
  /** Class names in index order, when config.json has id2label. */
  readonly labels?: readonly string[];
  /** transformers: the head LayerNorm's eps (1e-12 by default); timm: undefined (the architecture says). */
  readonly layerNormEps?: number;
  readonly imageSize?: number;
  /** timm: pretrained_cfg.test_input_size's side, the resolution timm evaluates at with use_test_size. */
  readonly testImageSize?: number;
  /** transformers: the model class, e.g. ConvNextBackbone (a backbone's out_features matter then). */
  readonly architectures?: readonly string[];
  /** transformers' backbone settings (BackboneConfigMixin), as written; src/convnext/backbone.ts aligns them. */
  readonly outFeatures?: readonly string[];
  readonly outIndices?: readonly number[];
}

export interface HfPreprocessing {
  readonly cropPct?: number;
  /** timm: pretrained_cfg.test_crop_pct, which goes with test_input_size. */
  readonly testCropPct?: number;
  /** timm's crop_mode: only 'center' (resize the shorter side, centre crop) is what we reproduce. */
  readonly cropMode?: string;
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

export async function readHfFolder(dir: string): Promise<HfFolder> {
  const raw = readJson(join(dir, 'config.json'));
  const timm = isObject(raw) && raw.model_type === undefined && typeof raw.architecture === 'string';
  const config = timm ? parseTimmConfig(raw, join(dir, 'config.json')) : parseConfig(raw, join(dir, 'config.json'));
  const preprocPath = join(dir, 'preprocessor_config.json');
  const preprocessing = existsSync(preprocPath)
    ? parsePreprocessing(readJson(preprocPath), preprocPath)
    : timm ? parseTimmPreprocessing(raw, join(dir, 'config.json')) : undefined;
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
  const index = readJson(indexPath);
  const weightMap = isObject(index) ? index.weight_map : undefined;
  if (!isObject(weightMap)) throw new InputError(`shard index has no weight_map object (got ${shown(isObject(index) ? weightMap : index)})`, indexPath);
  const names = Object.values(weightMap);
  if (names.length === 0) throw new InputError('shard index has an empty weight_map', indexPath);
  for (const f of names) {
    if (typeof f !== 'string') throw new InputError(`weight_map names a shard ${shown(f)}, not a file name`, indexPath);
    if (!f || f === '.' || f === '..' || /[/\\\0]/.test(f)) throw new InputError(`shard name ${shown(f)} points outside the folder`, indexPath);
  }
  const out = new Map<string, Tensor>();
  for (const f of [...new Set(names as string[])].sort()) {
    for (const [k, v] of await readWeights(join(dir, f))) out.set(k, v);
  }
  return out;
}

function readJson(path: string): unknown {
  const text = readTextFile(path, 'a JSON config', JSON_MAX_BYTES);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`cannot read JSON (${parseErrorMessage(e)})`, path);
  }
}

// The largest image side we accept anywhere in a config: beyond any ConvNeXt use, and small enough
// that resize buffers stay allocatable.
const MAX_IMAGE_SIDE = 16384;

/**
 * An object's optional fields, each checked as it is read: a missing or null field is undefined
 * (transformers writes None as null), any other value must be valid or it is an InputError naming
 * the file and the field.
 */
class Fields {
  constructor(private readonly obj: Record<string, unknown>, private readonly where: string) {}

  get(key: string, valid: (v: unknown) => boolean, expected: string): unknown {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (!valid(v)) throw new InputError(`${key} must be ${expected}, got ${shown(v)}`, this.where);
    return v;
  }

  integer(key: string, min: number, max: number): number | undefined {
    return this.get(key, (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max, `an integer from ${min} to ${max}`) as number | undefined;
  }

  integers(key: string, min: number, max: number): number[] | undefined {
    const ok = (v: unknown) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
    return this.get(key, (v) => Array.isArray(v) && v.length > 0 && v.every(ok), `a list of integers from ${min} to ${max}`) as number[] | undefined;
  }

  /** Three finite numbers (an RGB mean or std), each passing `each`. */
  rgb(key: string, each: (x: number) => boolean, expected: string): number[] | undefined {
    const ok = (v: unknown) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && each(x));
    return this.get(key, ok, expected) as number[] | undefined;
  }

  real(key: string, valid: (x: number) => boolean, expected: string): number | undefined {
    return this.get(key, (v) => typeof v === 'number' && Number.isFinite(v) && valid(v), expected) as number | undefined;
  }
}

function parseConfig(raw: unknown, where: string): HfConfig {
  if (!isObject(raw)) throw new InputError('config is not a JSON object', where);
  if (raw.model_type === 'upernet') return parseUperNetConfig(raw, where);
  const modelType = raw.model_type;
  if (modelType !== 'convnext' && modelType !== 'convnextv2') {
    throw new InputError(`not a ConvNeXt model: model_type is ${JSON.stringify(modelType)}, expected "convnext" or "convnextv2"`, where);
  }
  const f = new Fields(raw, where);
  const labels = parseId2Label(f.get('id2label', isObject, 'an object of class names') as Record<string, unknown> | undefined, where);
  return {
    writer: 'transformers',
    modelType,
    depths: f.integers('depths', 1, 1000),
    hiddenSizes: f.integers('hidden_sizes', 1, 65536),
    numLabels: f.integer('num_labels', 0, 1_000_000) ?? labels?.length,
    labels,
    // transformers' ConvNextConfig default; a LayerNorm eps of 0.1 or more would be a different model.
    layerNormEps: f.real('layer_norm_eps', (x) => x > 0 && x < 0.1, 'a number between 0 and 0.1 (exclusive)') ?? 1e-12,
    imageSize: f.integer('image_size', 1, MAX_IMAGE_SIDE),
    architectures: f.get('architectures', isStrings, 'a list of class names') as string[] | undefined,
    outFeatures: f.get('out_features', isStrings, 'a list of stage names') as string[] | undefined,
    // negative indices count from the end, as in Python
    outIndices: f.integers('out_indices', -1000, 1000),
  };
}

// transformers' UperNetConfig (models/upernet/configuration_upernet.py): the backbone's own config
// under backbone_config; UperNetForSemanticSegmentation keeps it as `backbone` (AutoBackbone, for a
// ConvNeXt a ConvNextBackbone, with its hidden_states_norms) beside decode_head and auxiliary_head,
// which the importer drops. The backbone's config is what describes the weights we convert; the
// segmentation labels belong to the dropped head.
function parseUperNetConfig(raw: Record<string, unknown>, where: string): HfConfig {
  const backbone = raw.backbone_config;
  if (!isObject(backbone)) {
    const named = typeof raw.backbone === 'string' ? ` (it names backbone ${shown(raw.backbone)} instead)` : '';
    throw new InputError(`an UperNet config without backbone_config${named}: the ConvNeXt's depths and widths are not recorded`, where);
  }
  if (backbone.model_type !== 'convnext' && backbone.model_type !== 'convnextv2') {
    throw new InputError(`an UperNet whose backbone is not a ConvNeXt: backbone_config.model_type is ${shown(backbone.model_type)}, expected "convnext" or "convnextv2"`, where);
  }
  const inner = parseConfig(backbone, `${where}: backbone_config`);
  return { ...inner, labels: undefined, numLabels: undefined, architectures: new Fields(raw, where).get('architectures', isStrings, 'a list of class names') as string[] | undefined ?? ['UperNetForSemanticSegmentation'] };
}

function isStrings(v: unknown): boolean {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

// timm's save_config_for_hf: architecture, num_classes, num_features, global_pool, pretrained_cfg
// (input_size, crop_pct, crop_mode, interpolation, mean, std, …), label_names, model_args.
function parseTimmConfig(raw: Record<string, unknown>, where: string): HfConfig {
  const f = new Fields(raw, where);
  const architecture = String(raw.architecture);
  const names = f.get('label_names', (v) => Array.isArray(v) || isObject(v), 'a list or an object of class names');
  const labels = Array.isArray(names) ? names.map(String) : parseId2Label(names as Record<string, unknown> | undefined, where);
  const cfg = f.get('pretrained_cfg', isObject, 'an object') as Record<string, unknown> | undefined;
  const side = (key: string) => {
    const size = cfg ? new Fields(cfg, `${where}: pretrained_cfg`).integers(key, 1, MAX_IMAGE_SIDE) : undefined;
    if (size && (size.length !== 3 || size[1] !== size[2])) throw new InputError(`pretrained_cfg.${key} ${shown(size)} is not [3, N, N] (a square image)`, where);
    return size?.[1];
  };
  return {
    writer: 'timm',
    modelType: architecture.startsWith('convnextv2') ? 'convnextv2' : 'convnext',
    architecture,
    modelArgs: f.get('model_args', isObject, 'an object') as Record<string, unknown> | undefined,
    numLabels: f.integer('num_classes', 0, 1_000_000) ?? labels?.length,
    labels,
    imageSize: side('input_size'),
    testImageSize: side('test_input_size'),
  };
}

/** timm's pretrained_cfg, as the evaluation transforms its create_transform builds read it. */
function parseTimmPreprocessing(raw: Record<string, unknown>, where: string): HfPreprocessing | undefined {
  if (!isObject(raw.pretrained_cfg)) return undefined;
  const f = new Fields(raw.pretrained_cfg, `${where}: pretrained_cfg`);
  return {
    cropPct: f.real('crop_pct', (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
    testCropPct: f.real('test_crop_pct', (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
    cropMode: f.get('crop_mode', (v) => typeof v === 'string', 'a string') as string | undefined,
    mean: f.rgb('mean', () => true, 'a list of three finite numbers'),
    std: f.rgb('std', (x) => x > 0, 'a list of three positive numbers'),
    interpolation: f.get('interpolation', (v) => v === 'bicubic' || v === 'bilinear' || v === 'nearest', 'bicubic, bilinear or nearest') as string | undefined,
  };
}

/** id2label as class names in index order: its ids must be exactly 0 … n-1. */
function parseId2Label(id2label: Record<string, unknown> | undefined, where: string): string[] | undefined {
  if (!id2label) return undefined;
  const entries = Object.entries(id2label);
  const labels: string[] = [];
  for (const [id, label] of entries) {
    const i = Number(id);
    // String(i) === id refuses "01" and "1.0", which would name the same class twice and leave a hole.
    if (!Number.isInteger(i) || i < 0 || i >= entries.length || String(i) !== id) throw new InputError(`id2label has a bad id ${JSON.stringify(id)}`, where);
    if (typeof label !== 'string' && typeof label !== 'number') throw new InputError(`id2label[${id}] must be a class name, got ${shown(label)}`, where);
    labels[i] = String(label);
  }
  return labels;
}

// transformers' ConvNextImageProcessor: for sizes under 384 it resizes the shortest edge to
// shortest_edge / crop_pct and centre-crops; resample 3 is PIL's bicubic.
function parsePreprocessing(raw: unknown, where: string): HfPreprocessing {
  if (!isObject(raw)) throw new InputError('preprocessor config is not a JSON object', where);
  const f = new Fields(raw, where);
  const size = f.get('size', (v) => isObject(v) || Number.isInteger(v), 'an integer or an object with shortest_edge');
  const shortestEdge = isObject(size) ? new Fields(size, where).integer('shortest_edge', 1, MAX_IMAGE_SIDE) : f.integer('size', 1, MAX_IMAGE_SIDE);
  const resample: Record<number, string> = { 0: 'nearest', 2: 'bilinear', 3: 'bicubic' };
  const filter = f.integer('resample', 0, 5);
  return {
    cropPct: f.real('crop_pct', (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
    shortestEdge,
    mean: f.rgb('image_mean', () => true, 'a list of three finite numbers'),
    std: f.rgb('image_std', (x) => x > 0, 'a list of three positive numbers'),
    interpolation: filter === undefined ? undefined : resample[filter],
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON value as an error message shows it, cut short. */
function shown(v: unknown): string {
  // String() for numbers: JSON.stringify writes Infinity (from 1e999 in the file) as null.
  const s = typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
