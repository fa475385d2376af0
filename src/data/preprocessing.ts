// How an image becomes the model's input, and the defaults every reader and verb falls back to.

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
