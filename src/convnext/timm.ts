// What timm's registry fixes for an architecture name that the weights alone do not say, read from
// timm/models/convnext.py (the @register_model functions and ConvNeXt.__init__): LayerNorm eps,
// the activation, and pieces of the network whose weights look like a plain ConvNeXt's but compute
// something else. A name we cannot reproduce exactly is refused, saying which piece and what to do.

import { InputError, UnsupportedError } from '../errors.js';
import type { ConvNextSpec } from './spec.js';

export interface TimmArchitecture {
  /** Epsilon of every LayerNorm, head included (timm passes norm_eps to all of them). */
  readonly eps?: number;
  /**
   * The head form the name or model_args fix (the weights say it too: norm_pre, head.pre_logits.fc),
   * for the loader to check against the weights. `mlpHidden` true: some hidden width.
   */
  readonly head: { readonly normFirst: boolean; readonly mlpHidden: number | boolean };
}

// Suffixes and names whose computation differs from the plain ConvNeXt the builder makes.
const NOT_YET: readonly [RegExp, string][] = [
  [/_ols$|_ols_/, "an overlapping stem (stem_type 'overlap'/'overlap_tiered': stacked 3×3 convolutions instead of one 4×4 patchify)"],
  [/_rms/, "RMSNorm ('rmsnorm2d'/'simplenorm') in place of LayerNorm"],
];
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
  for (const [pattern, what] of NOT_YET) {
    if (pattern.test(base)) throw new UnsupportedError(`timm ${base} uses ${what}, which this tool does not convert yet; nothing was written`, where, 'architecture');
  }
  const changed = Object.keys(modelArgs).filter((k) => !INERT_ARGS.has(k) && k !== 'head_norm_first' && k !== 'head_hidden_size');
  if (changed.length) throw new UnsupportedError(`config.json's model_args change ${changed.join(', ')}, which this tool does not reproduce yet`, where, 'architecture');
  const eps = modelArgs.norm_eps;
  if (eps !== undefined && (typeof eps !== 'number' || !(eps > 0 && eps < 0.1))) throw new UnsupportedError(`model_args.norm_eps ${JSON.stringify(eps)} is not a number in (0, 0.1)`, where, 'architecture');
  const { head_norm_first: normFirst = HEAD_NORM_FIRST.test(base), head_hidden_size: hidden = MLP_HEAD.test(base) } = modelArgs;
  if (typeof normFirst !== 'boolean') throw new UnsupportedError(`model_args.head_norm_first ${JSON.stringify(normFirst)} is not true or false`, where, 'architecture');
  if (hidden !== null && typeof hidden !== 'boolean' && !(Number.isInteger(hidden) && (hidden as number) >= 0)) {
    throw new UnsupportedError(`model_args.head_hidden_size ${JSON.stringify(hidden)} is not a width`, where, 'architecture');
  }
  return {
    // convnext_xxlarge: norm_eps=1e-5 (convnext.py); every other registered ConvNeXt keeps timm's 1e-6
    eps: (eps as number | undefined) ?? (base === 'convnext_xxlarge' ? 1e-5 : undefined),
    head: { normFirst, mlpHidden: (hidden as number | boolean | null) ?? false },
  };
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
