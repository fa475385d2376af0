// What a ConvNeXt is, independent of where its weights came from: the architecture numbers, the
// canonical parameter names every layout maps to, and the published variants.

import type { Tensor } from '../graph/tensor.js';

export type ConvNextVersion = 'v1' | 'v2';

/**
 * The stem (timm's stem_type): 'patch', one k×k stride-k convolution (every release's); 'overlap',
 * two 3×3 stride-2 convolutions with padding 1 (timm's 'overlap' and 'overlap_tiered', which differ
 * only in the first one's width); 'overlap_act', the same with an exact GELU between them.
 */
export type StemKind = 'patch' | 'overlap' | 'overlap_act';

/**
 * What every norm of the network is (timm's norm_layer; one kind for the whole model), over the
 * channels: 'layernorm' (x − E[x]) / √(Var[x] + ε) · w + b; 'rmsnorm' x / √(E[x²] + ε) · w (timm's
 * RmsNorm / RmsNorm2d); 'simplenorm' x / √(Var₁[x] + ε) · w, Var₁ the unbiased variance (divided by
 * C − 1) and x itself not centred (timm's SimpleNorm / SimpleNorm2d). The last two have no bias.
 */
export type NormKind = 'layernorm' | 'rmsnorm' | 'simplenorm';

export interface ConvNextSpec {
  readonly version: ConvNextVersion;
  readonly depths: readonly number[];
  readonly widths: readonly number[];
  readonly inChannels: number;
  /** The stem's total stride (its kernel too for a 'patch' stem). */
  readonly patchSize: number;
  readonly stem: StemKind;
  /** Width of an overlapping stem's first convolution (0 for a patch stem). */
  readonly stemWidth: number;
  readonly norm: NormKind;
  readonly kernelSize: number;
  /** 0: a feature extractor, whose output is the normalised pooled features. */
  readonly numClasses: number;
  /** V1 blocks may carry LayerScale (all of them or none). */
  readonly layerScale: boolean;
  /** Epsilon of every LayerNorm but the head's. */
  readonly eps: number;
  /** Epsilon of the LayerNorm before the classifier (Hugging Face takes it from config.layer_norm_eps). */
  readonly headEps: number;
  /** GRN's epsilon, added to the channel mean of the spatial L2 norms. */
  readonly grnEps: number;
  /**
   * Taps (see `names.outputNorm`) whose feature map has its own channels-first LayerNorm in the
   * weights: a detection/segmentation backbone's. Empty for a classifier.
   */
  readonly outputNorms: readonly number[];
  /** False for a backbone checkpoint, which has no head at all (no final LayerNorm, no classifier). */
  readonly headNorm: boolean;
  /**
   * timm's head_norm_first (`*_hnf`): the final LayerNorm runs channels-first on the feature map
   * (`names.normPre`) before the pooling, and the head is the classifier alone.
   */
  readonly headNormFirst: boolean;
  /** Width of timm's NormMlpClassifierHead hidden layer (`names.headPreLogits`, then GELU); 0: none. */
  readonly headHidden: number;
}

/** A ConvNeXt with its float32 weights under canonical names (see `names`). */
export interface ConvNextModel {
  readonly spec: ConvNextSpec;
  readonly params: ReadonlyMap<string, Tensor>;
}

// Canonical names, and the shapes they must have. Every layout maps onto these; nothing else in the
// project spells a ConvNeXt parameter name.
export const names = {
  stemConv: 'stem.conv',
  /** An overlapping stem's second 3×3 convolution (the first is `stemConv`). */
  stemConv2: 'stem.conv2',
  stemNorm: 'stem.norm',
  downsampleNorm: (s: number) => `stages.${s}.downsample.norm`,
  downsampleConv: (s: number) => `stages.${s}.downsample.conv`,
  block: (s: number, i: number) => `stages.${s}.blocks.${i}`,
  headNorm: 'head.norm',
  /** timm's norm_pre: the head-norm-first models' final LayerNorm, on the feature map. */
  normPre: 'norm_pre',
  /** The hidden Linear of timm's NormMlpClassifierHead (head.pre_logits.fc). */
  headPreLogits: 'head.pre_logits',
  headFc: 'head.fc',
  /**
   * The LayerNorm a backbone applies to the feature map at a tap: 0 is the stem's output, s + 1
   * the output of stage s's blocks (transformers' hidden_states order).
   */
  outputNorm: (tap: number) => (tap === 0 ? 'stem.out_norm' : `stages.${tap - 1}.out_norm`),
};

/** Block sub-parameters, relative to `names.block(s, i)`. */
export const blockParams = {
  dwconv: 'dwconv',
  norm: 'norm',
  fc1: 'fc1',
  fc2: 'fc2',
  layerScale: 'layer_scale',
  grnGamma: 'grn.gamma',
  grnBeta: 'grn.beta',
};

/** Every canonical parameter this spec needs, with its shape. */
export function expectedParams(spec: ConvNextSpec): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const { widths, depths, kernelSize: k, patchSize: p } = spec;
  const linear = (name: string, outC: number, inC: number) => {
    out.set(`${name}.weight`, [outC, inC]);
    out.set(`${name}.bias`, [outC]);
  };
  const norm = (name: string, c: number) => {
    out.set(`${name}.weight`, [c]);
    if (spec.norm === 'layernorm') out.set(`${name}.bias`, [c]);
  };
  if (spec.stem === 'patch') {
    out.set(`${names.stemConv}.weight`, [widths[0], spec.inChannels, p, p]);
    out.set(`${names.stemConv}.bias`, [widths[0]]);
  } else {
    out.set(`${names.stemConv}.weight`, [spec.stemWidth, spec.inChannels, 3, 3]);
    out.set(`${names.stemConv}.bias`, [spec.stemWidth]);
    out.set(`${names.stemConv2}.weight`, [widths[0], spec.stemWidth, 3, 3]);
    out.set(`${names.stemConv2}.bias`, [widths[0]]);
  }
  norm(names.stemNorm, widths[0]);
  for (let s = 0; s < depths.length; s++) {
    const c = widths[s];
    if (s > 0) {
      norm(names.downsampleNorm(s), widths[s - 1]);
      out.set(`${names.downsampleConv(s)}.weight`, [c, widths[s - 1], 2, 2]);
      out.set(`${names.downsampleConv(s)}.bias`, [c]);
    }
    for (let i = 0; i < depths[s]; i++) {
      const b = names.block(s, i);
      out.set(`${b}.${blockParams.dwconv}.weight`, [c, 1, k, k]);
      out.set(`${b}.${blockParams.dwconv}.bias`, [c]);
      norm(`${b}.${blockParams.norm}`, c);
      linear(`${b}.${blockParams.fc1}`, 4 * c, c);
      linear(`${b}.${blockParams.fc2}`, c, 4 * c);
      if (spec.version === 'v2') {
        out.set(`${b}.${blockParams.grnGamma}`, [4 * c]);
        out.set(`${b}.${blockParams.grnBeta}`, [4 * c]);
      } else if (spec.layerScale) {
        out.set(`${b}.${blockParams.layerScale}`, [c]);
      }
    }
  }
  for (const tap of spec.outputNorms) norm(names.outputNorm(tap), tapWidth(spec, tap));
  const last = widths[widths.length - 1];
  if (spec.headNorm) norm(spec.headNormFirst ? names.normPre : names.headNorm, last);
  if (spec.headHidden > 0) linear(names.headPreLogits, spec.headHidden, last);
  if (spec.numClasses > 0) linear(names.headFc, spec.numClasses, spec.headHidden || last);
  return out;
}

/** Height (or width) of the stem's output for an input of `size`: floor for a patch, ⌈·/2⌉ per 3×3 stride-2 padded conv. */
export function stemSide(spec: Pick<ConvNextSpec, 'stem' | 'patchSize'>, size: number): number {
  return spec.stem === 'patch' ? Math.floor(size / spec.patchSize) : Math.ceil(Math.ceil(size / 2) / 2);
}

/** Channels of the feature map at a tap (the stem's output has the first stage's width). */
export function tapWidth(spec: Pick<ConvNextSpec, 'widths'>, tap: number): number {
  return spec.widths[Math.max(0, tap - 1)];
}

interface Variant {
  readonly name: string;
  readonly version: ConvNextVersion;
  readonly depths: readonly number[];
  readonly widths: readonly number[];
}

// The published sizes (ConvNeXt paper table, ConvNeXt-V2 paper table 1).
export const VARIANTS: readonly Variant[] = [
  { name: 'convnext_tiny', version: 'v1', depths: [3, 3, 9, 3], widths: [96, 192, 384, 768] },
  { name: 'convnext_small', version: 'v1', depths: [3, 3, 27, 3], widths: [96, 192, 384, 768] },
  { name: 'convnext_base', version: 'v1', depths: [3, 3, 27, 3], widths: [128, 256, 512, 1024] },
  { name: 'convnext_large', version: 'v1', depths: [3, 3, 27, 3], widths: [192, 384, 768, 1536] },
  { name: 'convnext_xlarge', version: 'v1', depths: [3, 3, 27, 3], widths: [256, 512, 1024, 2048] },
  // timm's small V1 models (conv_mlp form)
  { name: 'convnext_atto', version: 'v1', depths: [2, 2, 6, 2], widths: [40, 80, 160, 320] },
  { name: 'convnext_femto', version: 'v1', depths: [2, 2, 6, 2], widths: [48, 96, 192, 384] },
  { name: 'convnext_pico', version: 'v1', depths: [2, 2, 6, 2], widths: [64, 128, 256, 512] },
  { name: 'convnext_nano', version: 'v1', depths: [2, 2, 8, 2], widths: [80, 160, 320, 640] },
  // timm registers this size only with its RMS-style norm (convnext_zepto_rms, _rms_ols)
  { name: 'convnext_zepto', version: 'v1', depths: [2, 2, 4, 2], widths: [32, 64, 128, 256] },
  { name: 'convnextv2_atto', version: 'v2', depths: [2, 2, 6, 2], widths: [40, 80, 160, 320] },
  { name: 'convnextv2_femto', version: 'v2', depths: [2, 2, 6, 2], widths: [48, 96, 192, 384] },
  { name: 'convnextv2_pico', version: 'v2', depths: [2, 2, 6, 2], widths: [64, 128, 256, 512] },
  { name: 'convnextv2_nano', version: 'v2', depths: [2, 2, 8, 2], widths: [80, 160, 320, 640] },
  { name: 'convnextv2_tiny', version: 'v2', depths: [3, 3, 9, 3], widths: [96, 192, 384, 768] },
  { name: 'convnextv2_base', version: 'v2', depths: [3, 3, 27, 3], widths: [128, 256, 512, 1024] },
  { name: 'convnextv2_large', version: 'v2', depths: [3, 3, 27, 3], widths: [192, 384, 768, 1536] },
  { name: 'convnextv2_huge', version: 'v2', depths: [3, 3, 27, 3], widths: [352, 704, 1408, 2816] },
];

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** The published variant with these numbers (timm's suffixes `_rms`, `_ols` for its norms and stems), or 'custom'. */
export function variantName(spec: Pick<ConvNextSpec, 'version' | 'depths' | 'widths' | 'stem' | 'norm'>): string {
  const v = VARIANTS.find((x) => x.version === spec.version && same(x.depths, spec.depths) && same(x.widths, spec.widths));
  if (!v) return 'custom';
  return `${v.name}${spec.norm !== 'layernorm' ? '_rms' : ''}${spec.stem !== 'patch' ? '_ols' : ''}`;
}

/** The stem and norm in words, for inspect and the assumptions list. */
export const describe = {
  stem: { patch: 'patch stem', overlap: 'overlapping stem (two 3×3 stride-2 convolutions)', overlap_act: 'overlapping stem (two 3×3 stride-2 convolutions, GELU between)' } as Record<StemKind, string>,
  norm: { layernorm: 'LayerNorm', rmsnorm: 'RMSNorm: x / √(mean x² + ε) · w', simplenorm: 'SimpleNorm: x / √(unbiased var x + ε) · w, x not centred' } as Record<NormKind, string>,
};

export function parameterCount(params: ReadonlyMap<string, Tensor>): number {
  let n = 0;
  for (const t of params.values()) n += t.data.length;
  return n;
}
