// From a state dict in any supported layout to a ConvNextModel: unwrap, detect the layout, map keys
// to canonical names, read the architecture off the tensors, and check every shape.

import type { StateDict } from '../formats/state-dict.js';
import { InputError, UnsupportedError, Warnings } from '../errors.js';
import { asFloat32, reshape, shapeString, type Tensor } from '../graph/tensor.js';
import { detectLayout, mapKey, placeTimmStem, type Layout, type LayoutName } from './layouts.js';
import { blockParams, expectedParams, names, type ConvNextModel, type ConvNextSpec, type NormKind, type StemKind } from './spec.js';


export interface ImportOptions {
  /** Where the tensors came from, for messages. */
  readonly source: string;
  /** Which wrapper to take when a checkpoint holds several (e.g. 'model_ema'). */
  readonly stateDictKey?: string;
  /** Epsilon of the head LayerNorm when the checkpoint's config says (Hugging Face layer_norm_eps). */
  readonly headEps?: number;
  /** Epsilon of every other LayerNorm when the architecture fixes one (timm's convnext_xxlarge: 1e-5). */
  readonly eps?: number;
  /**
   * The norm the architecture has (timm's name or model_args say). The weights tell LayerNorm (with
   * a bias) from the other two but not rmsnorm from simplenorm: without this, such a checkpoint
   * is refused.
   */
  readonly norm?: NormKind;
  readonly warnings?: Warnings;
}

export interface ImportResult {
  readonly model: ConvNextModel;
  readonly layout: LayoutName;
  /** The wrapper key the weights were taken from, if any. */
  readonly stateDictKey?: string;
  /** Parameter counts by the dtype they were stored in. */
  readonly storedDtypes: Readonly<Record<string, number>>;
}

// Containers training scripts put the weights in; 'module.' is what DistributedDataParallel adds.
const WRAPPERS = ['model', 'model_ema', 'state_dict', 'state_dict_ema', 'ema', 'module', 'net', 'params'];
/**
 * Training checkpoints hold several weight sets (the official repos: model / model_ema; timm:
 * state_dict / state_dict_ema; Lightning: state_dict) beside optimizer state. The rule: the plain
 * weights, in this order; --state-dict-key takes another, and the summary names the ones left.
 */
const PLAIN_WEIGHTS = ['model', 'state_dict'];
/**
 * What detection and segmentation models keep beside their `backbone.` (mmdet/mmseg, the official
 * repo's det/seg checkpoints, transformers' UperNet): a checkpoint of these alone has no ConvNeXt.
 */
const TASK_HEADS = ['decode_head', 'auxiliary_head', 'neck', 'rpn_head', 'roi_head', 'bbox_head', 'mask_head', 'panoptic_head', 'panoptic_fusion_head', 'sem_seg_head', 'query_head'];
const DEFAULT_EPS = 1e-6;

export function importConvNext(stateDict: StateDict, options: ImportOptions): ImportResult {
  const shapes = new Map([...stateDict].map(([k, t]) => [k, t.shape]));
  const match = matchArchitecture(shapes, options);
  const params = new Map<string, Tensor>();
  const storedDtypes: Record<string, number> = {};
  for (const [name, { from, shape }] of match.sources) {
    const stored = stateDict.get(from)!;
    params.set(name, asFloat32(reshape(stored, shape)));
    storedDtypes[stored.dtype] = (storedDtypes[stored.dtype] ?? 0) + stored.data.length;
  }
  checkFinite(params, match.sources, options);
  if (match.dropped.length) {
    options.warnings?.add(`took the ConvNeXt under '${match.stateDictKey}'; dropped what is not part of it: ${match.dropped.join(', ')}`);
  }
  if (options.stateDictKey === undefined && match.stateDictKey !== undefined && match.otherWeightSets.length) {
    const others = match.otherWeightSets.map((w) => `'${w}'`).join(', ');
    options.warnings?.add(`took the weights under '${match.stateDictKey}'; the checkpoint also holds ${others}: --state-dict-key ${match.otherWeightSets[0]} takes those instead`);
  }
  return { model: { spec: match.spec, params }, layout: match.layout, stateDictKey: match.stateDictKey, storedDtypes };
}

export interface ArchitectureMatch {
  readonly layout: LayoutName;
  readonly spec: ConvNextSpec;
  /** Canonical name → the source key it comes from and the canonical shape. */
  readonly sources: ReadonlyMap<string, { readonly from: string; readonly shape: readonly number[] }>;
  readonly stateDictKey?: string;
  /** Other weight sets of a training checkpoint, left for --state-dict-key (e.g. model_ema). */
  readonly otherWeightSets: readonly string[];
  /** Beside a `backbone.`: the task heads left out, each with its tensor count ("decode_head (12 tensors)"). */
  readonly dropped: readonly string[];
}

/**
 * Reads the architecture from key names and shapes alone: wrapper, layout, version, depths, widths,
 * classes. Throws one InputError listing every missing, unexpected or misshapen key.
 */
export function matchArchitecture(shapes: ReadonlyMap<string, readonly number[]>, options: ImportOptions): ArchitectureMatch {
  const unwrapped = unwrap(shapes, options);
  const { tensors, key, dropped } = takeBackbone(unwrapped.tensors, unwrapped.key, options);
  const { alternatives } = unwrapped;
  const keys = [...tensors.keys()];
  const { layout, matched } = detectLayout(keys);
  if (matched === 0) {
    const tops = [...new Set([...shapes.keys()].map((k) => k.split('.', 1)[0]))];
    const hint = key === undefined && tops.length > 1 ? `; its top-level entries are ${tops.slice(0, 12).join(', ')}: --state-dict-key ENTRY takes the weights from one` : '';
    throw new InputError(`not a ConvNeXt checkpoint: no key matches a known ConvNeXt layout (first keys: ${preview(keys)})${hint}`, options.source);
  }
  const canonical = new Map<string, { shape: readonly number[]; from: string }>();
  const unknown: string[] = [];
  for (const k of keys) {
    const name = mapKey(layout, k);
    const full = key === undefined ? k : `${key}.${k}`;
    if (name === undefined) unknown.push(full);
    else canonical.set(name, { shape: tensors.get(k)!, from: full });
  }
  if (!canonical.has(`${names.stemConv}.weight`) && matched < keys.length / 2) {
    throw new InputError(`not a ConvNeXt checkpoint: only ${matched} of ${keys.length} keys fit the ${layout.name} layout (first keys: ${preview(keys)})`, options.source);
  }
  const stem = placeTimmStem(canonical, options.source) ?? 'patch';
  const spec = readSpec(canonical, layout, stem, options);
  const sources = checkShapes(spec, canonical, unknown, layout, options.source);
  return { layout: layout.name, spec, sources, stateDictKey: key, otherWeightSets: alternatives, dropped };
}

// A detector or segmenter keeps its ConvNeXt under `backbone.` and its heads beside it; the heads
// are not ours to convert, so they are left out and named. A file of heads alone is refused here,
// where its entries can still be named, rather than as "no key matches".
function takeBackbone<T>(tensors: ReadonlyMap<string, T>, key: string | undefined, options: ImportOptions): { tensors: ReadonlyMap<string, T>; key?: string; dropped: string[] } {
  const groups = new Map<string, number>();
  for (const k of tensors.keys()) {
    const head = k.split('.', 1)[0];
    groups.set(head, (groups.get(head) ?? 0) + 1);
  }
  if (!groups.has('backbone')) {
    const heads = [...groups.keys()].filter((g) => TASK_HEADS.includes(g));
    if (heads.length > 0 && heads.length === groups.size) {
      throw new InputError(`holds only task heads (${heads.join(', ')}), no backbone: not a ConvNeXt checkpoint; convert the checkpoint that has the backbone.* weights`, options.source);
    }
    return { tensors, key, dropped: [] };
  }
  const inner = new Map<string, T>();
  for (const [k, v] of tensors) if (k.startsWith('backbone.')) inner.set(k.slice('backbone.'.length), v);
  const dropped = [...groups].filter(([g]) => g !== 'backbone').sort(([a], [b]) => (a < b ? -1 : 1)).map(([g, n]) => `${g} (${n} tensor${n > 1 ? 's' : ''})`);
  return { tensors: inner, key: key === undefined ? 'backbone' : `${key}.backbone`, dropped };
}

function unwrap<T>(stateDict: ReadonlyMap<string, T>, options: ImportOptions): { tensors: ReadonlyMap<string, T>; key?: string; alternatives: string[] } {
  let tensors = stateDict;
  let alternatives: string[] = [];
  let chosen: string | undefined;
  // Peel wrappers while every key sits under one (a DDP model inside a 'model' entry has two).
  for (let depth = 0; depth < 3; depth++) {
    const groups = new Map<string, number>();
    for (const k of tensors.keys()) {
      const head = k.split('.', 1)[0];
      groups.set(head, (groups.get(head) ?? 0) + 1);
    }
    const wrappers = [...groups.keys()].filter((g) => WRAPPERS.includes(g));
    if (wrappers.length === 0) break;
    let pick: string;
    if (options.stateDictKey !== undefined && depth === 0) {
      if (!groups.has(options.stateDictKey)) {
        throw new InputError(`no entry '${options.stateDictKey}' in the checkpoint (it has: ${[...groups.keys()].join(', ')})`, options.source);
      }
      pick = options.stateDictKey;
    } else if (wrappers.length === 1 && groups.get(wrappers[0]) === tensors.size) {
      pick = wrappers[0];
    } else if (PLAIN_WEIGHTS.some((w) => wrappers.includes(w))) {
      pick = PLAIN_WEIGHTS.find((w) => wrappers.includes(w))!;
    } else if (wrappers.length === 1 && groups.get(wrappers[0])! > tensors.size / 2) {
      pick = wrappers[0];
    } else {
      break;
    }
    const prefix = `${pick}.`;
    const inner = new Map<string, T>();
    for (const [k, v] of tensors) if (k.startsWith(prefix)) inner.set(k.slice(prefix.length), v);
    tensors = inner;
    if (depth === 0) alternatives = wrappers.filter((w) => w !== pick);
    chosen = chosen === undefined ? pick : `${chosen}.${pick}`;
  }
  return { tensors, key: chosen, alternatives };
}

function readSpec(canonical: Map<string, { shape: readonly number[]; from: string }>, layout: Layout, stem: StemKind, options: ImportOptions): ConvNextSpec {
  const shape = (name: string) => canonical.get(name)?.shape;
  const stemConv = shape(`${names.stemConv}.weight`);
  if (!stemConv || stemConv.length !== 4) {
    throw new InputError(`checkpoint in ${layout.name} layout has no 4-D stem convolution weight`, options.source);
  }
  const depths: number[] = [];
  const widths: number[] = [];
  for (let s = 0; ; s++) {
    const first = shape(`${names.block(s, 0)}.${blockParams.dwconv}.weight`);
    if (!first) break;
    let d = 0;
    while (canonical.has(`${names.block(s, d)}.${blockParams.dwconv}.weight`)) d++;
    depths.push(d);
    widths.push(first[0]);
  }
  if (depths.length === 0) throw new InputError(`checkpoint in ${layout.name} layout has no blocks`, options.source);
  const dw = shape(`${names.block(0, 0)}.${blockParams.dwconv}.weight`)!;
  const keys = [...canonical.keys()];
  const fc = shape(`${names.headFc}.weight`);
  const hidden = shape(`${names.headPreLogits}.weight`);
  const headNormFirst = canonical.has(`${names.normPre}.weight`);
  const outputNorms: number[] = [];
  for (let tap = 0; tap <= depths.length; tap++) if (canonical.has(`${names.outputNorm(tap)}.weight`)) outputNorms.push(tap);
  return {
    version: keys.some((k) => k.endsWith(blockParams.grnGamma)) ? 'v2' : 'v1',
    depths,
    widths,
    inChannels: stemConv[1],
    // an overlapping stem is two stride-2 convolutions
    patchSize: stem === 'patch' ? stemConv[2] : 4,
    stem,
    stemWidth: stem === 'patch' ? 0 : stemConv[0],
    norm: readNorm(canonical, options),
    kernelSize: dw[dw.length - 1],
    numClasses: fc ? fc[0] : 0,
    layerScale: keys.some((k) => k.endsWith(blockParams.layerScale)),
    eps: options.eps ?? DEFAULT_EPS,
    // transformers' ConvNextConfig defaults layer_norm_eps to 1e-12, and only the head LayerNorm uses it
    headEps: options.headEps ?? (layout.name === 'hf' ? 1e-12 : DEFAULT_EPS),
    grnEps: 1e-6,
    outputNorms,
    // a backbone (it has feature-map norms) comes without a head; anything else must have its final norm
    headNorm: outputNorms.length === 0 || fc !== undefined || canonical.has(`${names.headNorm}.weight`) || headNormFirst,
    headNormFirst,
    headHidden: hidden ? hidden[0] : 0,
  };
}

// A norm with a weight and no bias is timm's RmsNorm or SimpleNorm (norm.py), which compute different
// things from the same tensors: only the architecture name tells them apart.
function readNorm(canonical: Map<string, { from: string }>, options: ImportOptions): NormKind {
  const weight = canonical.get(`${names.stemNorm}.weight`);
  if (!weight || canonical.has(`${names.stemNorm}.bias`)) return 'layernorm';
  if (options.norm === 'layernorm') throw new InputError(`the architecture's norms are LayerNorms (weight and bias), but ${weight.from} has no bias beside it`, options.source);
  if (options.norm) return options.norm;
  throw new UnsupportedError(
    `the norms have a weight and no bias (${weight.from}): timm's RMSNorm or SimpleNorm, which the weights alone do not tell apart; convert the timm Hub folder, whose config.json names the architecture (convnext_*_rms)`,
    options.source,
    'architecture',
  );
}

/** Where each canonical parameter comes from; one error listing every missing, unknown or misshapen key. */
function checkShapes(
  spec: ConvNextSpec,
  canonical: Map<string, { shape: readonly number[]; from: string }>,
  unknown: string[],
  layout: Layout,
  source: string,
): Map<string, { from: string; shape: readonly number[] }> {
  const expected = expectedParams(spec);
  const sources = new Map<string, { from: string; shape: readonly number[] }>();
  const missing: string[] = [];
  const wrongShape: string[] = [];
  for (const [name, want] of expected) {
    const got = canonical.get(name);
    if (!got) missing.push(name);
    else if (fits(got.shape, want)) sources.set(name, { from: got.from, shape: want });
    else wrongShape.push(`${got.from} is ${shapeString(got.shape)}, expected ${shapeString(want)}`);
  }
  for (const [name, { from }] of canonical) if (!expected.has(name)) unknown.push(from);
  const problems: string[] = [];
  if (wrongShape.length) problems.push(`shape mismatch: ${wrongShape.join('; ')}`);
  if (missing.length) problems.push(`missing keys (canonical names): ${missing.join(', ')}`);
  if (unknown.length) problems.push(`unexpected keys: ${unknown.join(', ')}`);
  if (problems.length) {
    throw new InputError(`${layout.name} layout ConvNeXt checkpoint does not fit the architecture read from it: ${problems.join(' | ')}`, source);
  }
  return sources;
}

// The layouts store the same numbers with extra unit dimensions: (C,1,1), (1,1,1,4C), (4C,C,1,1).
function fits(shape: readonly number[], want: readonly number[]): boolean {
  const squeeze = (s: readonly number[]) => s.filter((d) => d !== 1).join();
  return shape.join() === want.join() || squeeze(shape) === squeeze(want);
}

function checkFinite(params: Map<string, Tensor>, canonical: ReadonlyMap<string, { from: string }>, options: ImportOptions): void {
  for (const [name, t] of params) {
    const data = t.data as Float32Array;
    if (allFinite(data)) continue;
    let bad = 0;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) bad++;
    if (bad) options.warnings?.add(`${canonical.get(name)?.from ?? name} has ${bad} NaN/Inf value${bad > 1 ? 's' : ''}`);
  }
}

// x·0 is 0 for every finite x and NaN for NaN and ±Inf, so one sum answers for the whole tensor;
// four independent sums let the loop run without a branch (3× faster than testing each value).
function allFinite(data: Float32Array): boolean {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = data.length & ~3;
  for (let i = 0; i < n; i += 4) {
    s0 += data[i] * 0;
    s1 += data[i + 1] * 0;
    s2 += data[i + 2] * 0;
    s3 += data[i + 3] * 0;
  }
  for (let i = n; i < data.length; i++) s0 += data[i] * 0;
  return s0 + s1 + s2 + s3 === 0;
}

function preview(keys: readonly string[]): string {
  return keys.length ? keys.slice(0, 5).join(', ') + (keys.length > 5 ? ', …' : '') : '(none)';
}
