// The folder Hugging Face transformers.js (@huggingface/transformers 4.x) loads for
// pipeline('image-classification', folder). Every name below is the one its source uses:
//   utils/dtypes.js          a dtype picks the file suffix (DEFAULT_DTYPE_SUFFIX_MAPPING)
//   utils/model-loader.js    models live in onnx/ (from_pretrained's subfolder), external data in
//                            `<file>.onnx_data`, listed per file in use_external_data_format
//   models/session.js        config.json's transformers.js_config.device_config[device].dtype
//                            overlays its dtype when the caller names none
//   models/registry.js       model_type convnext / convnextv2 → *ForImageClassification
//   models/convnext/image_processing_convnext.js  shortest_edge < 384: resize the shorter side to
//                            floor(shortest_edge / crop_pct), centre-crop shortest_edge²; ≥ 384: warp
//   pipelines/image-classification.js  feeds `pixel_values`, reads `logits`, softmax, top_k 5

import { existsSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Preprocessing } from '../../data/preprocessing.js';
import { InputError, type Warnings } from '../../errors.js';
import type { Graph } from '../../graph/graph.js';
import { compactNames } from '../../passes/compact-names.js';
import { recordingContext } from '../../passes/pass.js';
import { TOOL_VERSION } from '../../version.js';
import { writeFolderAtomic, type PendingFile } from '../files.js';
import { encodeOnnx, EXTERNAL_DATA_THRESHOLD, initializerBytes } from '../onnx.js';
import { modelCard, type CardFacts, type Measurement } from './card.js';

export type { Measurement } from './card.js';

/** transformers.js's dtype names, all of them: a name outside this list is a typo. */
const KNOWN_DTYPES = ['fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'bnb4', 'q4f16', 'q2', 'q2f16', 'q1', 'q1f16'];

/** The dtypes we write: file suffix (transformers.js's) and what the file holds. */
export const DTYPES = {
  fp32: { suffix: '', holds: 'float32' },
  fp16: { suffix: '_fp16', holds: 'float16 weights and activations, LayerNorm in float32, float32 input and output' },
  q8: { suffix: '_quantized', holds: 'int8 weights per output channel, dequantized in the graph; float activations (no calibration)' },
  int8: { suffix: '_int8', holds: 'int8 weights and activations (QDQ), activation ranges calibrated on images' },
  q4: { suffix: '_q4', holds: "4-bit weights in blocks (onnxruntime's MatMulNBits) for the pointwise and head layers, int8 for the convolutions; float activations (no calibration)" },
  q4f16: { suffix: '_q4f16', holds: 'q4 with float16 scales and activations, LayerNorm in float32, float32 input and output (WebGPU with shader-f16)' },
} as const;
export type TjsDtype = keyof typeof DTYPES;
export const TJS_DTYPES = Object.keys(DTYPES) as TjsDtype[];

// What a device loads when the caller names no dtype: the first of its list that the folder holds
// (fp32 always is). Only what was validated on that runtime is listed: int8 on onnxruntime's CPU
// kernels (Node and wasm); on onnxruntime-web's WebGPU our int8 (QDQ) model computes garbage, and
// fp16 needs an adapter with shader-f16, which config.json cannot ask about. Other devices: fp32.
export const DEVICE_DEFAULTS: Readonly<Record<string, readonly TjsDtype[]>> = {
  cpu: ['int8', 'fp32'],
  wasm: ['int8', 'fp32'],
  webgpu: ['fp32'],
};

export const onnxFile = (dtype: TjsDtype) => `model${DTYPES[dtype].suffix}.onnx`;
/** Any dtype's model file or its external data, as transformers.js names them. */
const MODEL_FILE = /^model(_[a-z0-9]+)?\.onnx(_data(_\d+)?)?$/;

/** Refuses a --dtypes list with a name that is not a transformers.js dtype, one we do not write, or no fp32. */
export function checkDtypes(names: readonly string[]): TjsDtype[] {
  for (const n of names) {
    if (!KNOWN_DTYPES.includes(n)) throw new InputError(`--dtypes: '${n}' is not a transformers.js dtype (this tool writes ${TJS_DTYPES.join(', ')})`);
    if (!(n in DTYPES)) throw new InputError(`--dtypes: '${n}' is a transformers.js dtype this tool does not write (it writes ${TJS_DTYPES.join(', ')})`);
  }
  // fp32 is every other device's default and the reference the model card measures against
  if (!names.includes('fp32')) throw new InputError(`--dtypes ${names.join(',')} must include fp32`);
  return TJS_DTYPES.filter((d) => names.includes(d));
}

/** transformers.js feeds `pixel_values` and reads `logits`: the classifier's one input and output get those names. */
export function withTransformersJsNames(graph: Graph): Graph {
  const [input] = graph.inputs;
  const [output] = graph.outputs;
  const rank = output?.shape.length;
  if (graph.inputs.length !== 1 || graph.outputs.length !== 1 || rank !== 2) {
    throw new InputError(`transformers.js image classification needs one image input and one logits output [batch, classes]; the model has ${graph.inputs.length} input(s) and outputs ${graph.outputs.map((o) => `${o.name} [${o.shape.join(', ')}]`).join(', ')}`);
  }
  const names = new Map([[input.name, 'pixel_values'], [output.name, 'logits']]);
  const taken = [...graph.initializers.keys(), ...graph.nodes.flatMap((n) => n.outputs)].find((v) => !names.has(v) && (v === 'pixel_values' || v === 'logits'));
  if (taken) throw new InputError(`the model has an inner value named '${taken}', the name transformers.js gives its input or output`);
  const rename = (v: string) => names.get(v) ?? v;
  return {
    ...graph,
    inputs: [{ ...input, name: 'pixel_values' }],
    outputs: [{ ...output, name: 'logits' }],
    nodes: graph.nodes.map((n) => ({ ...n, inputs: n.inputs.map(rename), outputs: n.outputs.map(rename) })),
  };
}

// PIL's resampling numbers, as transformers.js reads `resample` (utils/image.js RESAMPLING_MAPPING).
const PIL_RESAMPLE: Record<string, number> = { nearest: 0, bilinear: 2, bicubic: 3 };
// image_processing_convnext.js: at this size and above the image is warped to a square, not cropped
const WARP_FROM = 384;

/**
 * preprocessor_config.json for ConvNextImageProcessor, from our recorded preprocessing. What it
 * cannot say is refused (a crop at 384 px or more); what it computes differently is warned about.
 */
export function preprocessorConfig(p: Preprocessing, warnings: Warnings): Record<string, unknown> {
  if (p.crop >= WARP_FROM && p.resize !== p.crop) {
    throw new InputError(`transformers.js's ConvNextImageProcessor warps images of ${WARP_FROM} px and more straight to the input size: it cannot resize to ${p.resize} and centre-crop ${p.crop} as the model's preprocessing says (give --crop-pct 1 to record a resize without crop)`);
  }
  if (p.crop >= WARP_FROM) warnings.add(`transformers.js warps images to ${p.crop}×${p.crop} at this size: a non-square image is squashed where convnext validate resizes its shorter side and centre-crops`);
  // the crop_pct whose floor(crop / crop_pct) is our resize exactly, in the plainest form that does
  const cropPct = [p.crop / p.resize, p.crop / (p.resize + 0.5)].find((c) => Math.floor(p.crop / c) === p.resize)!;
  warnings.add("transformers.js resizes with sharp's affine in Node (a canvas in a browser): 8-bit, no antialiasing, pixels placed differently from convnext's PIL-style float resize, crop offset floored; on images that need resizing its inputs and scores differ a little (see the model card)");
  return {
    image_processor_type: 'ConvNextImageProcessor',
    do_resize: true,
    size: { shortest_edge: p.crop },
    crop_pct: cropPct,
    resample: PIL_RESAMPLE[p.interpolation],
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: p.mean,
    image_std: p.std,
  };
}

/** Refuses, before any work, an output that is a file or a folder with files in it (unless `force`). */
export function checkTransformersJsFolder(dir: string, force: boolean): void {
  const target = resolve(dir);
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) throw new InputError('output path is a file; a transformers.js model is a folder', dir);
  const held = readdirSync(target);
  if (held.length && !force) throw new InputError(`folder holds files (${held.slice(0, 3).join(', ')}${held.length > 3 ? ', …' : ''}); choose a new or empty folder or pass --force`, dir);
}

export interface TransformersJsModel {
  readonly dtype: TjsDtype;
  /** The model as it is to be shipped (see withTransformersJsNames). */
  readonly graph: Graph;
}

export interface TransformersJsFolder {
  readonly models: readonly TransformersJsModel[];
  readonly preprocessing: Preprocessing;
  /** preprocessor_config.json, as preprocessorConfig made it (before any work, so its refusal comes first). */
  readonly processor: Record<string, unknown>;
  /** Class names in index order. */
  readonly labels: readonly string[];
  readonly measurements: readonly Measurement[];
  readonly card: Omit<CardFacts, 'files' | 'defaults' | 'preprocessing'>;
}

/** Writes config.json, preprocessor_config.json, onnx/model*.onnx and README.md as one folder. */
export function writeTransformersJsFolder(dir: string, folder: TransformersJsFolder): { files: string[]; bytes: number } {
  const onnx: PendingFile[] = [];
  const external: Record<string, number> = {};
  for (const { dtype, graph } of folder.models) {
    const name = onnxFile(dtype);
    const big = initializerBytes(graph) > EXTERNAL_DATA_THRESHOLD;
    // a model is shipped for download: short inner names (layers keep theirs)
    const encoded = encodeOnnx(compactNames.run(graph, recordingContext()), { producerVersion: TOOL_VERSION, external: big ? { location: `${name}_data`, minBytes: 1024 } : undefined });
    onnx.push({ path: `onnx/${name}`, chunks: encoded.model });
    if (encoded.externalData) {
      onnx.push({ path: `onnx/${name}_data`, chunks: encoded.externalData });
      external[name] = 1;
    }
  }
  const have = new Set(folder.models.map((m) => m.dtype));
  const defaults = Object.fromEntries(Object.entries(DEVICE_DEFAULTS).map(([device, order]) => [device, order.find((d) => have.has(d))!]));
  const config = {
    ...classifierConfig(folder.labels, folder.card.modelType, folder.preprocessing.crop),
    'transformers.js_config': {
      dtype: 'fp32',
      device_config: Object.fromEntries(Object.entries(defaults).map(([device, dtype]) => [device, { dtype }])),
      ...(Object.keys(external).length ? { use_external_data_format: external } : {}),
    },
  };
  const sizes = onnx.map((f) => ({ path: f.path, bytes: f.chunks.reduce((n, c) => n + c.byteLength, 0) }));
  const card = modelCard({
    ...folder.card,
    preprocessing: folder.preprocessing,
    files: folder.models.map((m) => ({ dtype: m.dtype, holds: DTYPES[m.dtype].holds, bytes: sizes.filter((s) => s.path.startsWith(`onnx/${onnxFile(m.dtype)}`)).reduce((n, s) => n + s.bytes, 0), path: `onnx/${onnxFile(m.dtype)}` })),
    defaults,
  }, folder.measurements);
  const text = (value: unknown) => [new TextEncoder().encode(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`)];
  // config.json first: in an existing folder it is renamed into place last, so a loader never sees it before the models
  const files: PendingFile[] = [
    { path: 'config.json', chunks: text(config) },
    { path: 'preprocessor_config.json', chunks: text(folder.processor) },
    ...onnx,
    { path: 'README.md', chunks: text(card) },
  ];
  const existed = existsSync(resolve(dir, 'onnx'));
  writeFolderAtomic(dir, files);
  // a model of a dtype not written this time would still load under that dtype: remove it
  if (existed) for (const f of readdirSync(resolve(dir, 'onnx'))) if (MODEL_FILE.test(f) && !files.some((w) => w.path === `onnx/${f}`)) unlinkSync(resolve(dir, 'onnx', f));
  return { files: files.map((f) => f.path), bytes: files.reduce((n, f) => n + f.chunks.reduce((m, c) => m + c.byteLength, 0), 0) };
}

/** The Hugging Face config of an image classifier: model type, labels, image size. */
function classifierConfig(labels: readonly string[], modelType: 'convnext' | 'convnextv2', imageSize: number): Record<string, unknown> {
  return {
    architectures: [modelType === 'convnextv2' ? 'ConvNextV2ForImageClassification' : 'ConvNextForImageClassification'],
    model_type: modelType,
    num_labels: labels.length,
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
    image_size: imageSize,
    num_channels: 3,
  };
}
