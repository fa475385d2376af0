import type { Preprocessing } from './data/images.js';
import type { Graph } from './graph/graph.js';

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

const DEFAULT_PREPROCESSING = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], interpolation: 'bicubic' };

/** The model's own preprocessing (from its metadata), with the user's overrides applied. */
export function preprocessingOf(graph: Graph, overrides: PreprocessingOverrides): Preprocessing {
  const meta = metadataJson<Partial<Preprocessing>>(graph.metadata, 'preprocessing') ?? {};
  const size = graph.inputs[0]?.shape[3];
  const crop = meta.crop ?? (typeof size === 'number' ? size : 224);
  const resize = overrides.cropPct !== undefined ? Math.floor(crop / overrides.cropPct) : meta.resize ?? Math.floor(crop / 0.875);
  return {
    resize,
    crop,
    interpolation: meta.interpolation ?? DEFAULT_PREPROCESSING.interpolation,
    mean: overrides.mean ?? meta.mean ?? DEFAULT_PREPROCESSING.mean,
    std: overrides.std ?? meta.std ?? DEFAULT_PREPROCESSING.std,
  };
}

