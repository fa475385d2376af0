// Calibration: run the float model over the calibration images batch by batch, with the activations
// to be quantized exposed as extra outputs, and feed each into its HistogramObserver. Only one
// batch of activations is alive at a time.

import type { Dataset } from '../formats/images.js';
import type { Graph, ValueInfo } from '../graph/graph.js';
import { inferShapes } from '../graph/shapes.js';
import { createSession, type ExecutionProvider } from '../runtime/onnxruntime.js';
import { encodeOnnx, joinChunks } from '../formats/onnx.js';
import { HistogramObserver, type CalibrationMethod, type Range } from './observer.js';
import * as ort from 'onnxruntime-node';

export interface CalibrationOptions {
  readonly method: CalibrationMethod;
  /** For 'percentile': the share of values kept inside the range, e.g. 99.99. */
  readonly percentile?: number;
  readonly batchSize?: number;
  readonly provider?: ExecutionProvider;
  readonly onProgress?: (done: number, total: number) => void;
}

export async function calibrate(graph: Graph, values: readonly string[], data: Dataset, options: CalibrationOptions): Promise<Map<string, Range>> {
  const inputName = graph.inputs[0].name;
  const observed = values.filter((v) => v !== inputName);
  const shapes = inferShapes(graph);
  const extra: ValueInfo[] = observed
    .filter((v) => !graph.outputs.some((o) => o.name === v))
    .map((v) => ({ name: v, dtype: 'float32', shape: shapes.get(v)?.shape ?? [] }));
  const probe: Graph = { ...graph, outputs: [...graph.outputs, ...extra] };
  const session = await createSession(joinChunks(encodeOnnx(probe, { producerVersion: 'calibration' }).model), { provider: options.provider });
  const observers = new Map(values.map((v) => [v, new HistogramObserver()]));
  let done = 0;
  for await (const batch of data.batches(options.batchSize ?? 8)) {
    const x = batch.input.data as Float32Array;
    const out = await session.run({ [inputName]: new ort.Tensor('float32', x, [...batch.input.shape]) }, observed);
    for (const v of observed) observers.get(v)!.observe(out[v].data as Float32Array);
    if (observers.has(inputName)) observers.get(inputName)!.observe(x);
    done += batch.input.shape[0];
    options.onProgress?.(done, data.size);
  }
  await session.release();
  return new Map([...observers].map(([v, o]) => [v, o.finalize(options.method, options.percentile)]));
}
