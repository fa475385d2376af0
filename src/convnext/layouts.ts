// The key layouts ConvNeXt checkpoints come in, each a table of (source key pattern → canonical
// name). Verified against the projects' sources; fixtures/KEYS.md lists the patterns side by side.
// Shapes differ too (torchvision's LayerScale is (C,1,1), official/HF GRN is (1,1,1,4C), timm's
// conv_mlp pointwise layers are 1×1 convs): `import.ts` squeezes singleton dims to the canonical shape.

import { InputError } from '../errors.js';
import { blockParams as bp, names, type StemKind } from './spec.js';

export type LayoutName = 'official' | 'timm' | 'torchvision' | 'hf';

type Rule = readonly [RegExp, (m: RegExpMatchArray) => string | undefined];

export interface Layout {
  readonly name: LayoutName;
  readonly description: string;
  readonly rules: readonly Rule[];
}

const wb = '(weight|bias)';
/** Where the timm rules put `stem.I.*` until placeTimmStem knows what entry I is. */
const TIMM_STEM = 'stem.timm.';
const int = (s: string) => Number.parseInt(s, 10);
const block = (s: string, i: string, param: string, suffix?: string) =>
  `${names.block(int(s), int(i))}.${param}${suffix ? `.${suffix}` : ''}`;

const official: Layout = {
  name: 'official',
  description: 'facebookresearch/ConvNeXt and ConvNeXt-V2',
  rules: [
    [new RegExp(`^downsample_layers\\.0\\.0\\.${wb}$`), (m) => `${names.stemConv}.${m[1]}`],
    [new RegExp(`^downsample_layers\\.0\\.1\\.${wb}$`), (m) => `${names.stemNorm}.${m[1]}`],
    [new RegExp(`^downsample_layers\\.([1-9]\\d*)\\.0\\.${wb}$`), (m) => `${names.downsampleNorm(int(m[1]))}.${m[2]}`],
    [new RegExp(`^downsample_layers\\.([1-9]\\d*)\\.1\\.${wb}$`), (m) => `${names.downsampleConv(int(m[1]))}.${m[2]}`],
    [new RegExp(`^stages\\.(\\d+)\\.(\\d+)\\.dwconv\\.${wb}$`), (m) => block(m[1], m[2], bp.dwconv, m[3])],
    [new RegExp(`^stages\\.(\\d+)\\.(\\d+)\\.norm\\.${wb}$`), (m) => block(m[1], m[2], bp.norm, m[3])],
    [new RegExp(`^stages\\.(\\d+)\\.(\\d+)\\.pwconv1\\.${wb}$`), (m) => block(m[1], m[2], bp.fc1, m[3])],
    [new RegExp(`^stages\\.(\\d+)\\.(\\d+)\\.pwconv2\\.${wb}$`), (m) => block(m[1], m[2], bp.fc2, m[3])],
    [/^stages\.(\d+)\.(\d+)\.gamma$/, (m) => block(m[1], m[2], bp.layerScale)],
    [/^stages\.(\d+)\.(\d+)\.grn\.gamma$/, (m) => block(m[1], m[2], bp.grnGamma)],
    [/^stages\.(\d+)\.(\d+)\.grn\.beta$/, (m) => block(m[1], m[2], bp.grnBeta)],
    [new RegExp(`^norm\\.${wb}$`), (m) => `${names.headNorm}.${m[1]}`],
    [new RegExp(`^head\\.${wb}$`), (m) => `${names.headFc}.${m[1]}`],
    // the detection/segmentation backbone (object_detection/mmdet/models/backbones/convnext.py):
    // normI is the LayerNorm on stage I's output
    [new RegExp(`^norm([0-9])\\.${wb}$`), (m) => `${names.outputNorm(int(m[1]) + 1)}.${m[2]}`],
  ],
};

const timm: Layout = {
  name: 'timm',
  description: 'timm (pytorch-image-models), including the conv_mlp form of the small models',
  rules: [
    // placed by placeTimmStem, from the shapes: the names alone do not say what stem.1 is
    [new RegExp(`^stem\\.([0-9])\\.${wb}$`), (m) => `${TIMM_STEM}${m[1]}.${m[2]}`],
    [new RegExp(`^stages\\.(\\d+)\\.downsample\\.0\\.${wb}$`), (m) => `${names.downsampleNorm(int(m[1]))}.${m[2]}`],
    [new RegExp(`^stages\\.(\\d+)\\.downsample\\.1\\.${wb}$`), (m) => `${names.downsampleConv(int(m[1]))}.${m[2]}`],
    [new RegExp(`^stages\\.(\\d+)\\.blocks\\.(\\d+)\\.conv_dw\\.${wb}$`), (m) => block(m[1], m[2], bp.dwconv, m[3])],
    [new RegExp(`^stages\\.(\\d+)\\.blocks\\.(\\d+)\\.norm\\.${wb}$`), (m) => block(m[1], m[2], bp.norm, m[3])],
    [new RegExp(`^stages\\.(\\d+)\\.blocks\\.(\\d+)\\.mlp\\.fc1\\.${wb}$`), (m) => block(m[1], m[2], bp.fc1, m[3])],
    [new RegExp(`^stages\\.(\\d+)\\.blocks\\.(\\d+)\\.mlp\\.fc2\\.${wb}$`), (m) => block(m[1], m[2], bp.fc2, m[3])],
    [/^stages\.(\d+)\.blocks\.(\d+)\.gamma$/, (m) => block(m[1], m[2], bp.layerScale)],
    // current timm names GRN's parameters weight/bias; releases before 0.9 used gamma/beta
    [/^stages\.(\d+)\.blocks\.(\d+)\.mlp\.grn\.(weight|gamma)$/, (m) => block(m[1], m[2], bp.grnGamma)],
    [/^stages\.(\d+)\.blocks\.(\d+)\.mlp\.grn\.(bias|beta)$/, (m) => block(m[1], m[2], bp.grnBeta)],
    [new RegExp(`^head\\.norm\\.${wb}$`), (m) => `${names.headNorm}.${m[1]}`],
    [new RegExp(`^norm_pre\\.${wb}$`), (m) => `${names.normPre}.${m[1]}`],
    [new RegExp(`^head\\.pre_logits\\.fc\\.${wb}$`), (m) => `${names.headPreLogits}.${m[1]}`],
    [new RegExp(`^head\\.fc\\.${wb}$`), (m) => `${names.headFc}.${m[1]}`],
  ],
};

// torchvision keeps everything in one Sequential `features`: index 0 is the stem, odd indices are
// stages, even indices from 2 on are the downsampling layers before stage index/2.
const torchvision: Layout = {
  name: 'torchvision',
  description: 'torchvision.models.convnext',
  rules: [
    [new RegExp(`^features\\.0\\.0\\.${wb}$`), (m) => `${names.stemConv}.${m[1]}`],
    [new RegExp(`^features\\.0\\.1\\.${wb}$`), (m) => `${names.stemNorm}.${m[1]}`],
    [new RegExp(`^features\\.([2468])\\.0\\.${wb}$`), (m) => `${names.downsampleNorm(int(m[1]) / 2)}.${m[2]}`],
    [new RegExp(`^features\\.([2468])\\.1\\.${wb}$`), (m) => `${names.downsampleConv(int(m[1]) / 2)}.${m[2]}`],
    [new RegExp(`^features\\.([1357])\\.(\\d+)\\.block\\.0\\.${wb}$`), (m) => block(`${(int(m[1]) - 1) / 2}`, m[2], bp.dwconv, m[3])],
    [new RegExp(`^features\\.([1357])\\.(\\d+)\\.block\\.2\\.${wb}$`), (m) => block(`${(int(m[1]) - 1) / 2}`, m[2], bp.norm, m[3])],
    [new RegExp(`^features\\.([1357])\\.(\\d+)\\.block\\.3\\.${wb}$`), (m) => block(`${(int(m[1]) - 1) / 2}`, m[2], bp.fc1, m[3])],
    [new RegExp(`^features\\.([1357])\\.(\\d+)\\.block\\.5\\.${wb}$`), (m) => block(`${(int(m[1]) - 1) / 2}`, m[2], bp.fc2, m[3])],
    [/^features\.([1357])\.(\d+)\.layer_scale$/, (m) => block(`${(int(m[1]) - 1) / 2}`, m[2], bp.layerScale)],
    [new RegExp(`^classifier\\.0\\.${wb}$`), (m) => `${names.headNorm}.${m[1]}`],
    [new RegExp(`^classifier\\.2\\.${wb}$`), (m) => `${names.headFc}.${m[1]}`],
  ],
};

// Hugging Face prefixes the backbone with the model type (convnext / convnextv2) in the
// classification model, and not at all in the bare ConvNextModel.
const hfPrefix = '(?:convnext(?:v2)?\\.)?';
const hf: Layout = {
  name: 'hf',
  description: 'Hugging Face transformers (ConvNextForImageClassification, ConvNextV2…, bare models, ConvNextBackbone)',
  rules: [
    [new RegExp(`^${hfPrefix}embeddings\\.patch_embeddings\\.${wb}$`), (m) => `${names.stemConv}.${m[1]}`],
    [new RegExp(`^${hfPrefix}embeddings\\.layernorm\\.${wb}$`), (m) => `${names.stemNorm}.${m[1]}`],
    [new RegExp(`^${hfPrefix}encoder\\.stages\\.(\\d+)\\.downsampling_layer\\.0\\.${wb}$`), (m) => `${names.downsampleNorm(int(m[1]))}.${m[2]}`],
    [new RegExp(`^${hfPrefix}encoder\\.stages\\.(\\d+)\\.downsampling_layer\\.1\\.${wb}$`), (m) => `${names.downsampleConv(int(m[1]))}.${m[2]}`],
    [new RegExp(`^${hfPrefix}encoder\\.stages\\.(\\d+)\\.layers\\.(\\d+)\\.dwconv\\.${wb}$`), (m) => block(m[1], m[2], bp.dwconv, m[3])],
    [new RegExp(`^${hfPrefix}encoder\\.stages\\.(\\d+)\\.layers\\.(\\d+)\\.layernorm\\.${wb}$`), (m) => block(m[1], m[2], bp.norm, m[3])],
    [new RegExp(`^${hfPrefix}encoder\\.stages\\.(\\d+)\\.layers\\.(\\d+)\\.pwconv1\\.${wb}$`), (m) => block(m[1], m[2], bp.fc1, m[3])],
    [new RegExp(`^${hfPrefix}encoder\\.stages\\.(\\d+)\\.layers\\.(\\d+)\\.pwconv2\\.${wb}$`), (m) => block(m[1], m[2], bp.fc2, m[3])],
    [new RegExp(`^${hfPrefix}encoder\\.stages\\.(\\d+)\\.layers\\.(\\d+)\\.layer_scale_parameter$`), (m) => block(m[1], m[2], bp.layerScale)],
    [new RegExp(`^${hfPrefix}encoder\\.stages\\.(\\d+)\\.layers\\.(\\d+)\\.grn\\.(weight|gamma)$`), (m) => block(m[1], m[2], bp.grnGamma)],
    [new RegExp(`^${hfPrefix}encoder\\.stages\\.(\\d+)\\.layers\\.(\\d+)\\.grn\\.(bias|beta)$`), (m) => block(m[1], m[2], bp.grnBeta)],
    [new RegExp(`^${hfPrefix}layernorm\\.${wb}$`), (m) => `${names.headNorm}.${m[1]}`],
    // ConvNextBackbone's stage_names: stem (the embeddings' output), stage1 … stageN (stage N-1's)
    [new RegExp(`^hidden_states_norms\\.stem\\.${wb}$`), (m) => `${names.outputNorm(0)}.${m[1]}`],
    [new RegExp(`^hidden_states_norms\\.stage([1-9]\\d*)\\.${wb}$`), (m) => `${names.outputNorm(int(m[1]))}.${m[2]}`],
    [new RegExp(`^classifier\\.${wb}$`), (m) => `${names.headFc}.${m[1]}`],
  ],
};

/**
 * timm's stem is one Sequential (convnext.py, ConvNeXt.__init__): [conv k×k stride k, norm] for
 * stem_type 'patch'; [conv 3×3, conv 3×3, norm] for 'overlap' and 'overlap_tiered'; [conv, GELU,
 * conv, norm] for 'overlap_act', whose GELU holds no parameter and leaves index 1 empty. Entries are
 * told apart by their weights' ranks (4-D a conv, 1-D the norm) and renamed to canonical names in
 * place. Returns the stem's kind; undefined when `canonical` has no timm stem entries.
 */
export function placeTimmStem<T extends { readonly shape: readonly number[]; readonly from: string }>(canonical: Map<string, T>, where: string): StemKind | undefined {
  const entries = new Map<number, Map<string, T>>();
  for (const [name, v] of canonical) {
    if (!name.startsWith(TIMM_STEM)) continue;
    const [index, param] = name.slice(TIMM_STEM.length).split('.');
    if (!entries.has(int(index))) entries.set(int(index), new Map());
    entries.get(int(index))!.set(param, v);
  }
  if (entries.size === 0) return undefined;
  const rank = (i: number) => entries.get(i)?.get('weight')?.shape.length;
  const at = [...entries.keys()].sort((a, b) => a - b);
  const forms: [StemKind, string[]][] = [
    ['patch', [names.stemConv, names.stemNorm]],
    ['overlap', [names.stemConv, names.stemConv2, names.stemNorm]],
    ['overlap_act', [names.stemConv, '', names.stemConv2, names.stemNorm]],
  ];
  const form = forms.find(([, parts]) => parts.length === at[at.length - 1] + 1 && parts.every((p, i) => (p === '' ? !entries.has(i) : rank(i) === (p === names.stemNorm ? 1 : 4))));
  if (!form) {
    const seen = at.map((i) => `stem.${i} (${rank(i) ?? 'no weight'}${rank(i) ? '-D' : ''})`).join(', ');
    throw new InputError(`timm stem ${seen} is none of timm's stems (patch: conv, norm; overlap: conv, conv, norm; overlap_act: conv, GELU, conv, norm)`, where);
  }
  for (const name of [...canonical.keys()]) if (name.startsWith(TIMM_STEM)) canonical.delete(name);
  form[1].forEach((part, i) => {
    for (const [param, v] of entries.get(i) ?? []) canonical.set(`${part}.${param}`, v);
  });
  return form[0];
}

export const LAYOUTS: readonly Layout[] = [official, timm, torchvision, hf];

/** The canonical name of `key` under `layout`, or undefined when no rule matches. */
export function mapKey(layout: Layout, key: string): string | undefined {
  for (const [pattern, to] of layout.rules) {
    const m = key.match(pattern);
    if (m) return to(m);
  }
  return undefined;
}

/** The layout that explains the most keys, with how many it explains. */
export function detectLayout(keys: readonly string[]): { layout: Layout; matched: number } {
  let best = { layout: LAYOUTS[0], matched: -1 };
  for (const layout of LAYOUTS) {
    let matched = 0;
    for (const k of keys) if (mapKey(layout, k) !== undefined) matched++;
    if (matched > best.matched) best = { layout, matched };
  }
  return best;
}
