// Running a model over a whole data set, batch by batch, keeping only the logits.

import * as ort from 'onnxruntime-node';
import type { Dataset } from '../formats/images.js';
import { concatFloat32 } from '../graph/tensor.js';

export interface Predictions {
  /** [images, classes] row-major. */
  readonly logits: Float32Array;
  readonly classes: number;
  readonly labels: readonly number[];
}

export async function predict(session: ort.InferenceSession, data: Dataset, options: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<Predictions> {
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  let classes = 0;
  let done = 0;
  for await (const batch of data.batches(options.batchSize ?? 32)) {
    const feed = { [session.inputNames[0]]: new ort.Tensor('float32', batch.input.data as Float32Array, [...batch.input.shape]) };
    const out = (await session.run(feed))[session.outputNames[0]];
    classes = out.dims[out.dims.length - 1];
    parts.push((out.data as Float32Array).slice());
    labels.push(...batch.labels);
    done += batch.labels.length;
    options.onProgress?.(done, data.size);
  }
  return { logits: concatFloat32(parts), classes, labels };
}
