// Running models over a whole data set, batch by batch, keeping only the logits. Several models
// take each batch in turn, so images are decoded once however many models are compared.

import { InputError } from '../errors.js';
import { batchSizeFor, type Dataset } from '../data/images.js';
import { concatFloat32, type Tensor } from '../graph/tensor.js';

/** One model: a batch [n, C, H, W] in, its first output out. */
export type RunBatch = (input: Tensor) => Promise<{ data: Float32Array; dims: readonly number[] }>;

export interface Predictions {
  /** Per model, [images, classes] row-major. */
  readonly logits: Float32Array[];
  readonly classes: number;
  readonly labels: readonly number[];
}

export async function predict(
  models: readonly RunBatch[],
  data: Dataset,
  options: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<Predictions> {
  const parts: Float32Array[][] = models.map(() => []);
  const labels: number[] = [];
  let classes = 0;
  let done = 0;
  options.onProgress?.(0, data.size); // the clock for images/s and the ETA starts now, not after the first batch
  for await (const batch of data.batches(batchSizeFor(data, options.batchSize ?? 32))) {
    for (let k = 0; k < models.length; k++) {
      const y = await models[k](batch.input);
      const width = y.dims[y.dims.length - 1];
      if (classes && width !== classes) throw new InputError(`the models give ${classes} and ${width} outputs per image: they cannot be compared`);
      classes = width;
      parts[k].push(y.data.slice());
    }
    const bad = batch.labels.find((l) => l >= classes);
    if (bad !== undefined) throw new InputError(`label ${bad} is not a class of the model (it has ${classes})`, data.source);
    labels.push(...batch.labels);
    done += batch.labels.length;
    options.onProgress?.(done, data.size);
  }
  return { logits: parts.map(concatFloat32), classes, labels };
}
