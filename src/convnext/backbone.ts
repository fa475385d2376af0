// What a backbone returns: its feature maps, each tapped after the stem or after a stage's blocks,
// with its own channels-first LayerNorm where the checkpoint has one. Three kinds of checkpoint
// define them: transformers' ConvNextBackbone / ConvNextV2Backbone (config.json out_features /
// out_indices over stage_names stem, stage1 … stageN; one hidden_states_norms entry per
// out_feature), the same weights under `backbone.` in UperNet-style checkpoints (no config: the
// norms say which maps), and the official repo's detection/segmentation backbone (norm0 … norm3 on
// the four stages' outputs). A classification checkpoint has none: `--outputs stages` then gives
// the four stages' plain outputs.

import { InputError } from '../errors.js';
import type { HfConfig } from '../formats/huggingface.js';
import type { LayoutName } from './layouts.js';
import type { ConvNextSpec } from './spec.js';

/** What a checkpoint's graph returns: the logits, the pooled normalised features, or feature maps. */
export type ModelOutputs = 'logits' | 'pooled' | 'stages';

export interface FeatureMap {
  /** The graph output's name: transformers' stage name for HF checkpoints, else stage0 … stage3. */
  readonly name: string;
  /** Where it is taken (see `names.outputNorm`): 0 the stem's output, s + 1 stage s's. */
  readonly tap: number;
  /** Whether the checkpoint's LayerNorm for this map is applied. */
  readonly norm: boolean;
}

/** transformers' ConvNextConfig.stage_names, which it computes from the depths (a stored list is overwritten). */
export function hfStageNames(stages: number): string[] {
  return ['stem', ...Array.from({ length: stages }, (_, i) => `stage${i + 1}`)];
}

/** `--outputs stages` of a classifier: every stage's output, as its blocks leave it. */
export function stageMaps(spec: Pick<ConvNextSpec, 'depths'>): FeatureMap[] {
  return spec.depths.map((_, s) => ({ name: `stage${s}`, tap: s + 1, norm: false }));
}

/** The feature maps a backbone checkpoint defines, or undefined when it is not a backbone. */
export function backboneFeatures(spec: ConvNextSpec, layout: LayoutName, config: HfConfig | undefined, where: string): FeatureMap[] | undefined {
  // an UperNet folder's config is its backbone_config (formats/huggingface.ts), its class UperNet…
  const backboneClass = config?.architectures?.find((a) => a.endsWith('Backbone') || a.startsWith('UperNet'));
  if (spec.outputNorms.length === 0) {
    if (backboneClass) throw new InputError(`config.json says ${backboneClass}, but the weights have no hidden_states_norms`, where);
    return undefined;
  }
  if (layout !== 'hf') return spec.outputNorms.map((tap) => ({ name: `stage${tap - 1}`, tap, norm: true }));
  const stages = hfStageNames(spec.depths.length);
  const normed = spec.outputNorms.map((tap) => stages[tap]);
  if (!config) return spec.outputNorms.map((tap) => ({ name: stages[tap], tap, norm: true }));
  const wanted = alignOutFeatures(config, stages, `${where}/config.json`);
  const extra = normed.filter((n) => !wanted.includes(n));
  if (extra.length) {
    throw new InputError(`the weights hold hidden_states_norms for ${extra.join(', ')}, which out_features [${wanted.join(', ')}] does not list`, `${where}/config.json`);
  }
  const missing = wanted.filter((n) => !normed.includes(n));
  if (missing.length) throw new InputError(`out_features lists ${missing.join(', ')}, but the weights have no hidden_states_norms for it`, `${where}/config.json`);
  return wanted.map((name) => ({ name, tap: stages.indexOf(name), norm: true }));
}

// transformers' get_aligned_output_features_output_indices: either list gives the other, both must
// agree, each in stage order without repeats; neither means the last stage.
function alignOutFeatures(config: HfConfig, stages: readonly string[], where: string): string[] {
  const { outFeatures, outIndices } = config;
  const fromIndices = outIndices?.map((i) => {
    if (i < -stages.length || i >= stages.length) throw new InputError(`out_indices has ${i}, outside the ${stages.length} stages (${stages.join(', ')})`, where);
    return stages[i < 0 ? i + stages.length : i];
  });
  for (const name of outFeatures ?? []) {
    if (!stages.includes(name)) throw new InputError(`out_features has '${name}', which is not a stage (the stages are ${stages.join(', ')})`, where);
  }
  const wanted = outFeatures ?? fromIndices ?? [stages[stages.length - 1]];
  if (fromIndices && fromIndices.join() !== wanted.join()) {
    throw new InputError(`out_features [${wanted.join(', ')}] and out_indices [${outIndices!.join(', ')}] name different stages`, where);
  }
  const order = wanted.map((n) => stages.indexOf(n));
  if (order.some((v, i) => i > 0 && v <= order[i - 1])) throw new InputError(`out_features [${wanted.join(', ')}] must follow the stage order without repeats`, where);
  return [...wanted];
}

/**
 * What a checkpoint's graph returns: a backbone's feature maps unless asked otherwise, and a
 * backbone without a head cannot give logits or pooled features.
 */
export function checkpointOutputs(spec: ConvNextSpec, features: readonly FeatureMap[] | undefined, requested: ModelOutputs | undefined, where: string): ModelOutputs | undefined {
  if (!features) return requested;
  if (requested !== undefined && requested !== 'stages' && !spec.headNorm) {
    throw new InputError(`a backbone (feature maps ${features.map((f) => f.name).join(', ')}) has no head for --outputs ${requested}; --outputs stages, its default, gives the feature maps`, where);
  }
  return requested ?? 'stages';
}
