// What timm's registry fixes for an architecture name that the weights alone do not say, read from
// timm/models/convnext.py (the @register_model functions and ConvNeXt.__init__): LayerNorm eps,
// the activation, and pieces of the network whose weights look like a plain ConvNeXt's but compute
// something else. A name we cannot reproduce exactly is refused, saying which piece and what to do.

import { UnsupportedError } from '../errors.js';

export interface TimmArchitecture {
  /** Epsilon of every LayerNorm, head included (timm passes norm_eps to all of them). */
  readonly eps?: number;
}

// Suffixes and names whose computation differs from the plain ConvNeXt the builder makes.
const NOT_YET: readonly [RegExp, string][] = [
  [/_ols$|_ols_/, "an overlapping stem (stem_type 'overlap'/'overlap_tiered': stacked 3×3 convolutions instead of one 4×4 patchify)"],
  [/_rms/, "RMSNorm ('rmsnorm2d'/'simplenorm') in place of LayerNorm"],
  [/_hnf$/, 'head_norm_first (norm, then pooling, the reverse of ConvNeXt)'],
  [/_mlp$/, 'an MLP head (head_hidden_size: a pre-logits Linear and GELU before the classifier)'],
];

// model_args a Hub config may carry that change the network; others (drop rates) do not at inference.
const INERT_ARGS = new Set(['drop_rate', 'drop_path_rate', 'num_classes', 'in_chans', 'global_pool', 'output_stride', 'pretrained_cfg']);

/** The constants of a timm ConvNeXt architecture, or an UnsupportedError naming what we lack. */
export function timmArchitecture(name: string, modelArgs: Readonly<Record<string, unknown>> = {}, where?: string): TimmArchitecture {
  const base = name.split('.')[0]; // 'convnext_tiny.fb_in22k_ft_in1k' names a weight tag too
  if (!/^convnext(v2)?_/.test(base)) {
    throw new UnsupportedError(`timm architecture ${name} is not a ConvNeXt`, where, 'architecture');
  }
  for (const [pattern, what] of NOT_YET) {
    if (pattern.test(base)) throw new UnsupportedError(`timm ${base} uses ${what}, which this tool does not convert yet; nothing was written`, where, 'architecture');
  }
  const changed = Object.keys(modelArgs).filter((k) => !INERT_ARGS.has(k) && k !== 'norm_eps');
  if (changed.length) throw new UnsupportedError(`config.json's model_args change ${changed.join(', ')}, which this tool does not reproduce yet`, where, 'architecture');
  const eps = modelArgs.norm_eps;
  if (eps !== undefined && (typeof eps !== 'number' || !(eps > 0 && eps < 0.1))) throw new UnsupportedError(`model_args.norm_eps ${JSON.stringify(eps)} is not a number in (0, 0.1)`, where, 'architecture');
  // convnext_xxlarge: norm_eps=1e-5 (convnext.py); every other registered ConvNeXt keeps timm's 1e-6
  return { eps: (eps as number | undefined) ?? (base === 'convnext_xxlarge' ? 1e-5 : undefined) };
}
