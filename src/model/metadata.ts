import { checkCropPct, checkPreprocessing, DEFAULT_CROP_PCT, DEFAULT_IMAGE_SIZE, DEFAULT_INTERPOLATION, DEFAULT_MEAN, DEFAULT_STD, type Preprocessing } from '../data/preprocessing.js';
import { existsSync } from 'node:fs';
import { LABELS_MAX_BYTES, readTextFile } from '../formats/sniff.js';
import { basename } from 'node:path';
import type { LoadedCheckpoint } from '../convnext/load.js';
import { InputError } from '../errors.js';
import type { Graph } from '../graph/graph.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';

// Model metadata values are strings (ONNX metadata_props); the structured ones hold JSON. A value
// that does not parse is treated as absent: metadata written by other tools must not stop a run.

export function metadataJson<T>(metadata: Readonly<Record<string, string>>, key: string): T | undefined {
  const text = metadata[key];
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Class names in index order, from the `labels` entry. */
export function labelsOf(metadata: Readonly<Record<string, string>>): string[] | undefined {
  const labels = metadataJson<unknown>(metadata, 'labels');
  return Array.isArray(labels) ? labels.map(String) : undefined;
}

export interface PreprocessingOverrides {
  /** Resize to crop / cropPct before the centre crop; 1 resizes straight to the crop size. */
  readonly cropPct?: number;
  readonly mean?: readonly number[];
  readonly std?: readonly number[];
}

/**
 * The model's own preprocessing (from its metadata), with the user's overrides applied, checked:
 * metadata written by another tool, or edited, may hold values no image can go through.
 */
export function preprocessingOf(graph: Graph, overrides: PreprocessingOverrides, where = "the model's preprocessing metadata"): Preprocessing {
  const meta = metadataJson<Partial<Preprocessing>>(graph.metadata, 'preprocessing') ?? {};
  const size = graph.inputs[0]?.shape[3];
  const crop = meta.crop ?? (typeof size === 'number' ? size : DEFAULT_IMAGE_SIZE);
  if (overrides.cropPct !== undefined) checkCropPct(overrides.cropPct, '--crop-pct');
  const resize = overrides.cropPct !== undefined ? Math.floor(crop / overrides.cropPct) : meta.resize ?? Math.floor(crop / DEFAULT_CROP_PCT);
  return checkPreprocessing(
    {
      resize,
      crop,
      interpolation: meta.interpolation ?? DEFAULT_INTERPOLATION,
      mean: overrides.mean ?? meta.mean ?? DEFAULT_MEAN,
      std: overrides.std ?? meta.std ?? DEFAULT_STD,
    },
    where,
  );
}

/** What travels inside the model (ONNX metadata_props): labels, preprocessing, provenance. */
export function modelMetadata(loaded: LoadedCheckpoint, input: string): Record<string, string> {
  const { spec } = loaded.model;
  const meta: Record<string, string> = {
    converter: `${TOOL_NAME} ${TOOL_VERSION}`,
    preprocessing: JSON.stringify(loaded.preprocessing),
    source: JSON.stringify({
      file: basename(input),
      format: loaded.format,
      layout: loaded.layout,
      state_dict_key: loaded.stateDictKey ?? null,
      variant: loaded.variant,
      version: spec.version,
      depths: spec.depths,
      widths: spec.widths,
      ...(spec.stem !== 'patch' && { stem: spec.stem }),
      ...(spec.norm !== 'layernorm' && { norm: spec.norm }),
      ...(loaded.features && { out_features: loaded.features.map((f) => f.name) }),
    }),
  };
  if (loaded.labels) meta.labels = JSON.stringify(loaded.labels);
  return meta;
}

/** Class names from a labels file (one per line), which must name every class. */
export function readClassNames(path: string, classes: number): string[] {
  if (!existsSync(path)) throw new InputError('no such labels file', path);
  const names = readTextFile(path, 'labels file', LABELS_MAX_BYTES).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (names.length !== classes) throw new InputError(`has ${names.length} class names, the model has ${classes} classes`, path);
  return names;
}
