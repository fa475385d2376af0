// A fixed probe input for a graph, and a function that runs any graph on it: how --verify measures
// what each pass did to the outputs.

import { MAX_IMAGE_SIZE } from '../data/preprocessing.js';
import { InputError } from '../errors.js';
import type { Graph } from '../graph/graph.js';
import { float32, numel, type Tensor } from '../graph/tensor.js';
import { runGraph } from './onnxruntime.js';

/** Deterministic values in [-2, 2] (a small LCG: the same probe on every machine). */
export function probeInput(graph: Graph): Tensor {
  const input = graph.inputs[0];
  if (!input) throw new InputError('the model has no input');
  const crop = recordedCrop(graph.metadata);
  const shape = input.shape.map((d, i) => {
    if (typeof d === 'number') return d;
    if (i === 0) return 1; // the batch dimension
    if (i >= 2 && crop) return crop; // a dynamic-size model: the size it was converted for
    throw new InputError(`input ${input.name} has a symbolic dimension '${d}' at axis ${i}; give --image-size`);
  });
  const t = float32(shape);
  let state = 12345;
  const data = t.data as Float32Array;
  for (let i = 0; i < numel(shape); i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    data[i] = (state / 2 ** 32) * 4 - 2;
  }
  return t;
}

export function makeProbe(graph: Graph): (g: Graph) => Promise<Float32Array> {
  const input = probeInput(graph);
  return async (g) => (await runGraph(g, input)).data;
}

/** The crop size a model's preprocessing metadata records, if it is a plausible one. */
export function recordedCrop(metadata: Readonly<Record<string, string>>): number | undefined {
  try {
    const crop = (JSON.parse(metadata.preprocessing ?? '{}') as { crop?: unknown }).crop;
    return typeof crop === 'number' && Number.isInteger(crop) && crop > 0 && crop <= MAX_IMAGE_SIZE ? crop : undefined;
  } catch {
    return undefined;
  }
}
