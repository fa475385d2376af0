// How an image becomes the model's input, the defaults every reader and verb falls back to, and
// the limits any value (a flag, a config, a model's metadata) must keep before images are decoded.

import { InputError } from '../errors.js';

export interface Preprocessing {
  /** The shorter side is resized to this many pixels… */
  readonly resize: number;
  /** …then the centre crop×crop is taken. */
  readonly crop: number;
  readonly interpolation: string;
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** ImageNet's statistics and timm's evaluation interpolation: what ConvNeXt weights are published with. */
export const DEFAULT_MEAN: readonly number[] = [0.485, 0.456, 0.406];
export const DEFAULT_STD: readonly number[] = [0.229, 0.224, 0.225];
export const DEFAULT_INTERPOLATION = 'bicubic';
/** timm's crop_pct: resize to crop / 0.875, then centre-crop. */
export const DEFAULT_CROP_PCT = 0.875;
export const DEFAULT_IMAGE_SIZE = 224;

/** Largest input height/width taken: a 4096² image is 192 MiB of float input already. */
export const MAX_IMAGE_SIZE = 4096;
/** The stem (stride 4) and three 2× downsamplings need at least this many pixels. */
export const MIN_IMAGE_SIZE = 32;
/** crop_pct below this would resize to more than 8× the crop: no model is evaluated that way. */
export const MIN_CROP_PCT = 0.125;
export const INTERPOLATIONS = ['bilinear', 'bicubic', 'nearest'] as const;

/** Refuses an input size the architecture cannot take or memory cannot hold. */
export function checkImageSize(size: unknown, where: string): number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < MIN_IMAGE_SIZE || size > MAX_IMAGE_SIZE) {
    throw new InputError(`image size ${JSON.stringify(size)} must be a whole number from ${MIN_IMAGE_SIZE} to ${MAX_IMAGE_SIZE}`, where);
  }
  return size;
}

/** Refuses a crop percentage outside [MIN_CROP_PCT, 1]. */
export function checkCropPct(cropPct: number, where?: string): number {
  if (!(cropPct >= MIN_CROP_PCT && cropPct <= 1)) throw new InputError(`crop-pct ${cropPct} must be between ${MIN_CROP_PCT} and 1`, where);
  return cropPct;
}

/**
 * Refuses preprocessing no image could go through (from flags, a config or a model's metadata):
 * sizes that are not whole numbers in range, a resize that is not between the crop and 8× it, an
 * unknown interpolation, a mean or std that is not three finite numbers, a std that is not positive.
 */
export function checkPreprocessing(p: Preprocessing, where: string): Preprocessing {
  const bad = (what: string) => new InputError(`preprocessing: ${what}`, where);
  if (!Number.isInteger(p.crop) || p.crop < 1 || p.crop > MAX_IMAGE_SIZE) throw bad(`crop ${JSON.stringify(p.crop)} must be a whole number from 1 to ${MAX_IMAGE_SIZE}`);
  if (!Number.isInteger(p.resize) || p.resize < p.crop || p.resize > Math.floor(p.crop / MIN_CROP_PCT)) {
    throw bad(`resize ${JSON.stringify(p.resize)} must be a whole number from the crop (${p.crop}) to ${Math.floor(p.crop / MIN_CROP_PCT)}`);
  }
  if (!(INTERPOLATIONS as readonly unknown[]).includes(p.interpolation)) throw bad(`interpolation ${JSON.stringify(p.interpolation)} is not one of ${INTERPOLATIONS.join(', ')}`);
  for (const [name, v] of [['mean', p.mean], ['std', p.std]] as const) {
    if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) throw bad(`${name} ${JSON.stringify(v)} must be three finite numbers`);
  }
  if (p.std.some((x) => x <= 0)) throw bad(`std ${JSON.stringify(p.std)} must be positive`);
  return p;
}

/** Largest float input one batch may allocate: a bound that holds before onnxruntime adds its own. */
export const MAX_BATCH_BYTES = 1 << 30;

/** Refuses a batch whose input alone would not fit the bound (e.g. --batch 100000 at 224²). */
export function checkBatch(batch: number, itemShape: readonly number[], flag: string): number {
  const bytes = batch * itemShape.reduce((a, b) => a * b, 1) * Float32Array.BYTES_PER_ELEMENT;
  if (!Number.isSafeInteger(batch) || batch < 1 || !(bytes <= MAX_BATCH_BYTES)) {
    throw new InputError(`a batch of ${batch} images of [${itemShape.join(', ')}] is ${(bytes / 2 ** 30).toFixed(1)} GiB of input; the limit is ${MAX_BATCH_BYTES / 2 ** 30} GiB: give a smaller batch`, flag);
  }
  return batch;
}
