// What timm's registry fixes for an architecture name that the weights alone do not say, read from
// timm/models/convnext.py (the @register_model functions and ConvNeXt.__init__): LayerNorm eps,
// the activation, and pieces of the network whose weights look like a plain ConvNeXt's but compute
// something else. A name we cannot reproduce exactly is refused, saying which piece and what to do.
//
// Checked against huggingface/pytorch-image-models, commit aa4b5850 (Aug 2026):
//   timm/models/convnext.py    the registry (stem_type, norm_layer of each *_ols / *_rms name);
//                              ConvNeXt.__init__'s stem (patch | overlap | overlap_tiered |
//                              overlap_act: conv 3×3 s2 p1, [GELU], conv 3×3 s2 p1, norm);
//                              _NORM_MAP / _get_norm_layers (every norm of the model one kind)
//   timm/layers/norm.py        RmsNorm, RmsNorm2d, SimpleNorm, SimpleNorm2d: weight only, eps 1e-6
//   timm/layers/fast_norm.py   rms_norm(2d): x·rsqrt(mean x² + ε)·w; simple_norm: x·rsqrt(var + ε)·w
//                              with torch.var's unbiased default, x not centred
//   timm/layers/create_norm.py get_norm_layer (the head's norm is the class it is given)
// fixtures/make_timm_variants.py rebuilds these modules from the same reading for the goldens.

import { InputError, UnsupportedError } from '../errors.js';
import type { ConvNextSpec, NormKind, StemKind } from './spec.js';

export interface TimmArchitecture {
  /** Epsilon of every LayerNorm, head included (timm passes norm_eps to all of them). */
  readonly eps?: number;
  /**
   * The head form the name or model_args fix (the weights say it too: norm_pre, head.pre_logits.fc),
   * for the loader to check against the weights. `mlpHidden` true: some hidden width.
   */
  readonly head: { readonly normFirst: boolean; readonly mlpHidden: number | boolean };
  /** The stem the name or model_args fix, for the loader to check against the weights (which say it too). */
  readonly stem: StemKind;
  /** Every norm's kind: the weights tell LayerNorm (it has a bias) from the other two, not those apart. */
  readonly norm: NormKind;
}

// The registered names whose stem or norm is not the default (convnext.py's @register_model
// functions). 'overlap_tiered' is 'overlap' with a narrower first conv, whose width the weights hold.
const REGISTERED: Readonly<Record<string, { readonly stem?: StemKind; readonly norm?: NormKind }>> = {
  convnext_atto_ols: { stem: 'overlap' }, // overlap_tiered
  convnext_femto_ols: { stem: 'overlap' }, // overlap_tiered
  convnext_pico_ols: { stem: 'overlap' }, // overlap_tiered
  convnext_nano_ols: { stem: 'overlap' },
  convnext_atto_rms: { norm: 'rmsnorm' }, // rmsnorm2d
  convnext_zepto_rms: { norm: 'simplenorm' },
  convnext_zepto_rms_ols: { norm: 'simplenorm', stem: 'overlap_act' },
};
// model_args values, as ConvNeXt.__init__ and _NORM_MAP take them (the 2d and channels-last forms
// compute the same over the channels)
const STEM_TYPES: Readonly<Record<string, StemKind>> = { patch: 'patch', overlap: 'overlap', overlap_tiered: 'overlap', overlap_act: 'overlap_act' };
const NORM_LAYERS: Readonly<Record<string, NormKind>> = {
  layernorm: 'layernorm', layernorm2d: 'layernorm', rmsnorm: 'rmsnorm', rmsnorm2d: 'rmsnorm', simplenorm: 'simplenorm', simplenorm2d: 'simplenorm',
};
// The registry's head forms (convnext.py: convnext_tiny_hnf head_norm_first=True, convnext_large_mlp
// head_hidden_size=1536); the weights carry the width, so only the form is taken from the name.
const HEAD_NORM_FIRST = /_hnf$/;
const MLP_HEAD = /_mlp$/;

// model_args a Hub config may carry that change the network; others (drop rates) do not at inference.
// conv_mlp writes the pointwise layers as 1×1 convs, the same arithmetic; head_norm_first and
// head_hidden_size are read from the weights and checked against them.
const INERT_ARGS = new Set(['drop_rate', 'drop_path_rate', 'num_classes', 'in_chans', 'global_pool', 'output_stride', 'pretrained_cfg', 'conv_mlp', 'norm_eps']);

/** The constants of a timm ConvNeXt architecture, or an UnsupportedError naming what we lack. */
export function timmArchitecture(name: string, modelArgs: Readonly<Record<string, unknown>> = {}, where?: string): TimmArchitecture {
  const base = name.split('.')[0]; // 'convnext_tiny.fb_in22k_ft_in1k' names a weight tag too
  if (!/^convnext(v2)?_/.test(base)) {
    throw new UnsupportedError(`timm architecture ${name} is not a ConvNeXt`, where, 'architecture');
  }
  const registered = REGISTERED[base];
  if (!registered && /_ols(_|$)|_rms(_|$)/.test(base)) {
    throw new UnsupportedError(`timm ${base} is not a registered ConvNeXt this tool knows the stem and norm of (the *_ols / *_rms ones are ${Object.keys(REGISTERED).join(', ')}); nothing was written`, where, 'architecture');
  }
  const changed = Object.keys(modelArgs).filter((k) => !INERT_ARGS.has(k) && !['head_norm_first', 'head_hidden_size', 'stem_type', 'norm_layer'].includes(k));
  if (changed.length) throw new UnsupportedError(`config.json's model_args change ${changed.join(', ')}, which this tool does not reproduce yet`, where, 'architecture');
  const eps = modelArgs.norm_eps;
  if (eps !== undefined && (typeof eps !== 'number' || !(eps > 0 && eps < 0.1))) throw new UnsupportedError(`model_args.norm_eps ${JSON.stringify(eps)} is not a number in (0, 0.1)`, where, 'architecture');
  const { head_norm_first: normFirst = HEAD_NORM_FIRST.test(base), head_hidden_size: hidden = MLP_HEAD.test(base) } = modelArgs;
  if (typeof normFirst !== 'boolean') throw new UnsupportedError(`model_args.head_norm_first ${JSON.stringify(normFirst)} is not true or false`, where, 'architecture');
  if (hidden !== null && typeof hidden !== 'boolean' && !(Number.isInteger(hidden) && (hidden as number) >= 0)) {
    throw new UnsupportedError(`model_args.head_hidden_size ${JSON.stringify(hidden)} is not a width`, where, 'architecture');
  }
  const pick = <T>(arg: string, table: Readonly<Record<string, T>>, fallback: T): T => {
    const v = modelArgs[arg];
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'string' && Object.hasOwn(table, v)) return table[v];
    throw new UnsupportedError(`model_args.${arg} ${JSON.stringify(v)} is not one this tool builds (${Object.keys(table).join(', ')})`, where, 'architecture');
  };
  return {
    stem: pick('stem_type', STEM_TYPES, registered?.stem ?? 'patch'),
    norm: pick('norm_layer', NORM_LAYERS, registered?.norm ?? 'layernorm'),
    // convnext_xxlarge: norm_eps=1e-5 (convnext.py); every other registered ConvNeXt keeps timm's 1e-6
    eps: (eps as number | undefined) ?? (base === 'convnext_xxlarge' ? 1e-5 : undefined),
    head: { normFirst, mlpHidden: (hidden as number | boolean | null) ?? false },
  };
}

/** A config.json whose architecture names another stem or norm than the weights hold is refused, as for the head. */
export function checkTimmBody(arch: TimmArchitecture, spec: Pick<ConvNextSpec, 'stem' | 'norm'>, name: string, where: string): void {
  const stems: Record<StemKind, string> = { patch: 'the patch stem (stem.0 conv, stem.1 norm)', overlap: 'an overlapping stem (stem.0, stem.1 convs, stem.2 norm)', overlap_act: 'an overlapping stem with GELU (stem.0, stem.2 convs, stem.3 norm)' };
  if (arch.stem !== spec.stem) throw new InputError(`config.json's ${name} has ${stems[arch.stem]}, but the weights have ${stems[spec.stem]}`, where);
  // import.ts refuses the other way round (a LayerNorm architecture whose norms have no bias)
  if (arch.norm !== 'layernorm' && spec.norm === 'layernorm') {
    throw new InputError(`config.json's ${name} has ${arch.norm === 'rmsnorm' ? 'RMSNorm' : 'SimpleNorm'} norms (weight only), but the weights' norms have a bias`, where);
  }
}

/** A config.json whose architecture names another head form than the weights hold is refused: one of them is not this model. */
export function checkTimmHead(arch: TimmArchitecture, spec: Pick<ConvNextSpec, 'headNormFirst' | 'headHidden' | 'headNorm'>, name: string, where: string): void {
  if (!spec.headNorm) return; // a backbone's weights have no head to compare
  const form = (normFirst: boolean, hidden: number | boolean) =>
    normFirst ? 'head_norm_first (norm_pre.*, no head.norm)' : hidden ? `an MLP head (head.pre_logits.fc${typeof hidden === 'number' ? `, width ${hidden}` : ''})` : 'the plain head (head.norm, head.fc)';
  const { normFirst, mlpHidden } = arch.head;
  const hiddenDiffers = typeof mlpHidden === 'number' && mlpHidden > 0 ? mlpHidden !== spec.headHidden : Boolean(mlpHidden) !== spec.headHidden > 0;
  if (normFirst !== spec.headNormFirst || hiddenDiffers) {
    throw new InputError(`config.json's ${name} has ${form(normFirst, mlpHidden)}, but the weights have ${form(spec.headNormFirst, spec.headHidden)}`, where);
  }
}
