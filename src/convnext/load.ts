// From a path on disk to a ConvNextModel and what travels with it (labels, preprocessing): picks the
// reader by content, not by extension, then imports the tensors.

import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { InputError, UnsupportedError, Warnings } from '../errors.js';
import { readHfFolder, type HfPreprocessing } from '../formats/huggingface.js';
import { checkImageSize, DEFAULT_CROP_PCT, DEFAULT_IMAGE_SIZE, DEFAULT_INTERPOLATION, DEFAULT_MEAN, DEFAULT_STD, type Preprocessing } from '../data/preprocessing.js';
import { readPytorchCheckpoint } from '../formats/pytorch.js';
import { readSafetensors } from '../formats/safetensors.js';
import { identify } from '../formats/registry.js';
import type { StateDict } from '../formats/state-dict.js';
import { backboneFeatures, type FeatureMap } from './backbone.js';
import { importConvNext } from './import.js';
import { checkTimmBody, checkTimmHead, timmArchitecture } from './timm.js';
import type { LayoutName } from './layouts.js';
import { describe, variantName, type ConvNextModel } from './spec.js';

export type CheckpointFormat = 'pth' | 'safetensors' | 'hf';


export interface LoadedCheckpoint {
  readonly model: ConvNextModel;
  readonly format: CheckpointFormat;
  readonly layout: LayoutName;
  readonly variant: string;
  readonly stateDictKey?: string;
  /** Parameter counts by the dtype the checkpoint stored them in. */
  readonly storedDtypes: Readonly<Record<string, number>>;
  readonly labels?: readonly string[];
  readonly imageSize: number;
  readonly preprocessing: Preprocessing;
  /** Bytes of the weights file(s) read. */
  readonly fileBytes: number;
  /** Constants the weights do not hold, with where each value came from (inspect shows them). */
  readonly assumed: readonly Assumption[];
  /** A backbone checkpoint's feature maps (what `--outputs stages`, its default, returns). */
  readonly features?: readonly FeatureMap[];
}

export interface Assumption {
  readonly what: string;
  readonly value: string;
  readonly why: string;
}

export interface LoadOptions {
  readonly stateDictKey?: string;
  /**
   * Pixels, or 'test': pretrained_cfg.test_input_size (and test_crop_pct) of a timm Hub folder, as
   * timm's resolve_data_config(use_test_size=True) takes them; input_size where it has none.
   */
  readonly imageSize?: number | 'test';
  readonly warnings?: Warnings;
}

export async function loadCheckpoint(path: string, options: LoadOptions = {}): Promise<LoadedCheckpoint> {
  if (options.imageSize !== undefined && options.imageSize !== 'test') checkImageSize(options.imageSize, '--image-size');
  const { probe, format } = await identify(path);
  let tensors: StateDict;
  let hf: Awaited<ReturnType<typeof readHfFolder>> | undefined;
  let fileBytes = probe.size;
  if (probe.folder && format?.name !== 'hf') throw new InputError('a folder must be a Hugging Face model folder with config.json', path);
  if (!probe.folder && probe.size === 0) throw new InputError('file is empty', path);
  if (format?.name === 'onnx') throw new InputError('this is an ONNX model, not a checkpoint', path);
  if (format?.name === 'tflite') throw new InputError('this is a LiteRT (.tflite) model, not a checkpoint (validate runs it)', path);
  if (format?.name === 'hf') {
    hf = await readHfFolder(path);
    tensors = hf.tensors;
    fileBytes = statSync(`${path}/${hf.weightsFile}`).size;
  } else if (format?.name === 'safetensors') {
    tensors = (await readSafetensors(path)).tensors;
  } else if (format?.name === 'pth') {
    tensors = await readPytorchCheckpoint(path);
  } else {
    throw new InputError('not a checkpoint: expected a PyTorch .pth/.bin (zip), a .safetensors file or a Hugging Face folder', path);
  }
  const checkpointFormat = format.name as CheckpointFormat;
  // a timm Hub folder names its architecture: the constants the weights do not hold come from it
  const testSize = options.imageSize === 'test';
  if (testSize && hf?.config.writer !== 'timm') throw new InputError("--image-size test takes pretrained_cfg.test_input_size from a timm Hub folder's config.json; give this checkpoint a size in pixels", path);
  if (testSize && hf?.config.testImageSize === undefined) options.warnings?.add(`--image-size test: ${basename(path)}'s pretrained_cfg has no test_input_size; its input_size is taken, as timm does`);
  const timm = hf?.config.writer === 'timm' ? timmArchitecture(hf.config.architecture!, hf.config.modelArgs, `${path}/config.json`) : undefined;
  if (hf?.preprocessing?.cropMode !== undefined && hf.preprocessing.cropMode !== 'center') {
    throw new UnsupportedError(`pretrained_cfg.crop_mode '${hf.preprocessing.cropMode}' is not supported (only 'center'); give --crop-pct to record another preprocessing`, `${path}/config.json`, 'other');
  }
  const imported = importConvNext(tensors, {
    source: path,
    stateDictKey: options.stateDictKey,
    headEps: timm?.eps ?? hf?.config.layerNormEps,
    eps: timm?.eps,
    norm: timm?.norm,
    warnings: options.warnings,
  });
  const { model } = imported;
  if (hf) checkConfigAgrees(hf.config, model, path);
  if (timm) {
    checkTimmBody(timm, model.spec, hf!.config.architecture!, `${path}/config.json`);
    checkTimmHead(timm, model.spec, hf!.config.architecture!, `${path}/config.json`);
  }
  const features = backboneFeatures(model.spec, imported.layout, hf?.config, path);
  const variant = variantName(model.spec);
  const pixels = typeof options.imageSize === 'number' ? options.imageSize : undefined;
  const configSize = testSize ? hf?.config.testImageSize ?? hf?.config.imageSize : hf?.config.imageSize;
  const imageSize = checkImageSize(pixels ?? configSize ?? DEFAULT_IMAGE_SIZE, pixels === undefined && hf ? `${path}/config.json: image_size` : '--image-size');
  const labels = hf?.config.labels;
  if (labels && model.spec.numClasses && labels.length !== model.spec.numClasses) {
    options.warnings?.add(`${basename(path)}: config.json has ${labels.length} labels but the head has ${model.spec.numClasses} classes; labels dropped`);
  }
  const hfPreprocessing = testSize && hf?.preprocessing?.testCropPct !== undefined ? { ...hf.preprocessing, cropPct: hf.preprocessing.testCropPct } : hf?.preprocessing;
  const preprocessing = preprocessingFor(imported.layout, variant, imageSize, hfPreprocessing);
  const fromConfig = hf?.config.writer === 'timm' ? `timm's config.json (${hf.config.architecture})` : 'config.json';
  const epsWhy = timm?.eps !== undefined
    ? hf?.config.modelArgs?.norm_eps !== undefined ? 'config.json model_args.norm_eps' : `timm's registry for ${hf?.config.architecture}`
    : model.spec.norm !== 'layernorm' ? "timm's RmsNorm2d / SimpleNorm2d default (timm/layers/norm.py; the registry sets no norm_eps)"
    : 'the value every ConvNeXt release uses (official repositories, timm, torchvision)';
  const normName = model.spec.norm === 'layernorm' ? 'LayerNorm' : model.spec.norm === 'rmsnorm' ? 'RMSNorm' : 'SimpleNorm';
  const assumed: Assumption[] = [
    ...(model.spec.norm === 'layernorm' ? [] : [{
      what: 'norm',
      value: describe.norm[model.spec.norm],
      why: hf?.config.modelArgs?.norm_layer !== undefined ? 'config.json model_args.norm_layer' : `timm's registry for ${hf?.config.architecture} (the weights hold no bias, which rules out LayerNorm only)`,
    }]),
    { what: `${normName} eps`, value: model.spec.eps.toExponential(), why: epsWhy },
    model.spec.headNorm
      ? {
          what: `head ${normName} eps`,
          value: model.spec.headEps.toExponential(),
          why: hf?.config.writer === 'transformers' ? "config.json layer_norm_eps (transformers' default 1e-12 when absent)" : epsWhy,
        }
      : {
          what: 'feature-map LayerNorm eps',
          value: model.spec.eps.toExponential(),
          why: imported.layout === 'hf' ? "transformers' ConvNextLayerNorm default (hidden_states_norms are built without eps)" : 'the official detection/segmentation backbone (norm0…norm3, eps 1e-6)',
        },
    { what: 'GELU', value: 'exact (erf)', why: 'every published ConvNeXt uses nn.GELU() without approximation' },
    {
      what: 'image size',
      value: String(imageSize),
      why: pixels !== undefined ? '--image-size'
        : testSize && hf?.config.testImageSize !== undefined ? `${fromConfig} pretrained_cfg.test_input_size (--image-size test)`
        : hf?.config.imageSize !== undefined ? `${fromConfig} ${hf.config.writer === 'timm' ? 'pretrained_cfg.input_size' : 'image_size'}` : 'default (give --image-size for another)',
    },
    {
      what: 'preprocessing',
      value: `resize ${preprocessing.resize}, crop ${preprocessing.crop}, ${preprocessing.interpolation}, mean [${preprocessing.mean}], std [${preprocessing.std}]`,
      why: hf?.preprocessing
        ? hf.config.writer === 'timm' && !hf.preprocessing.shortestEdge ? `${fromConfig} pretrained_cfg${hfPreprocessing !== hf.preprocessing ? ' (test_crop_pct)' : ''}` : 'preprocessor_config.json'
        : imported.layout === 'torchvision' ? "torchvision's published evaluation transforms" : "timm's evaluation defaults (crop_pct 0.875, bicubic, ImageNet mean/std)",
    },
  ];
  return {
    model,
    format: checkpointFormat,
    layout: imported.layout,
    variant,
    stateDictKey: imported.stateDictKey,
    storedDtypes: imported.storedDtypes,
    labels: labels && labels.length === model.spec.numClasses ? labels : undefined,
    imageSize,
    preprocessing,
    fileBytes,
    assumed,
    features,
  };
}

function checkConfigAgrees(config: Awaited<ReturnType<typeof readHfFolder>>['config'], model: ConvNextModel, where: string): void {
  const { spec } = model;
  const differ = (a: readonly number[] | undefined, b: readonly number[]) => a !== undefined && a.join() !== b.join();
  if (differ(config.depths, spec.depths) || differ(config.hiddenSizes, spec.widths)) {
    throw new InputError(
      `config.json says depths [${config.depths}] / hidden_sizes [${config.hiddenSizes}], the weights have [${spec.depths}] / [${spec.widths}]`,
      where,
    );
  }
  if ((config.modelType === 'convnextv2') !== (spec.version === 'v2')) {
    throw new InputError(`config.json says ${config.architecture ?? config.modelType}, the weights are ConvNeXt ${spec.version.toUpperCase()}`, where);
  }
  if (config.writer === 'timm' && config.numLabels !== undefined && config.numLabels !== spec.numClasses) {
    throw new InputError(`config.json says num_classes ${config.numLabels}, the weights' head has ${spec.numClasses}`, where);
  }
}

// Evaluation transforms the weights were published with: torchvision's ConvNeXt weights resize to
// 236/230/232 bilinear before a 224 crop; timm, the official repo and HF resize by crop_pct 0.875
// with bicubic interpolation. A preprocessor_config.json, when present, wins.
function preprocessingFor(layout: LayoutName, variant: string, imageSize: number, hf?: HfPreprocessing): Preprocessing {
  const torchvisionResize: Record<string, number> = { convnext_tiny: 236, convnext_small: 230, convnext_base: 232, convnext_large: 232 };
  let resize = Math.floor(imageSize / DEFAULT_CROP_PCT);
  let interpolation = DEFAULT_INTERPOLATION;
  if (layout === 'torchvision') {
    interpolation = 'bilinear';
    if (imageSize === 224 && torchvisionResize[variant]) resize = torchvisionResize[variant];
  }
  if (hf) {
    if (hf.shortestEdge !== undefined && hf.shortestEdge >= 384) resize = imageSize;
    else if (hf.cropPct) resize = Math.floor(imageSize / hf.cropPct);
    interpolation = hf.interpolation ?? interpolation;
  }
  return { resize, crop: imageSize, interpolation, mean: hf?.mean ?? DEFAULT_MEAN, std: hf?.std ?? DEFAULT_STD };
}
