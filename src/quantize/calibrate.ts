// Calibration: run the float model over the calibration images batch by batch, with the activations
// to be quantized exposed as extra outputs, and feed each into its HistogramObserver. Only one
// batch of activations is alive at a time.

import { batchSizeFor, type Dataset } from '../data/images.js';
import type { Graph, ValueInfo } from '../graph/graph.js';
import { inferShapes } from '../graph/shapes.js';
import { createGraphSession, type ExecutionProvider } from '../runtime/onnxruntime.js';
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

export interface Observer {
  observe(values: Float32Array): void;
}

/**
 * Runs the model over the data with `values` exposed as extra outputs and hands each batch's
 * activations to that value's observer. Only one batch of activations is alive at a time.
 */
export async function observeActivations(
  graph: Graph,
  observers: ReadonlyMap<string, Observer>,
  data: Dataset,
  options: Pick<CalibrationOptions, 'batchSize' | 'provider' | 'onProgress'>,
): Promise<void> {
  const inputName = graph.inputs[0].name;
  const observed = [...observers.keys()].filter((v) => v !== inputName);
  const shapes = inferShapes(graph);
  const extra: ValueInfo[] = observed
    .filter((v) => !graph.outputs.some((o) => o.name === v))
    .map((v) => ({ name: v, dtype: 'float32', shape: shapes.get(v)?.shape ?? [] }));
  const probe: Graph = { ...graph, outputs: [...graph.outputs, ...extra] };
  const session = await createGraphSession(probe, 'calibration', { provider: options.provider });
  try {
    let done = 0;
    options.onProgress?.(0, data.size); // the clock for images/s and the ETA starts now
    for await (const batch of data.batches(batchSizeFor(data, options.batchSize ?? 8))) {
      const x = batch.input.data as Float32Array;
      const out = await session.run({ [inputName]: new ort.Tensor('float32', x, [...batch.input.shape]) }, observed);
      for (const v of observed) observers.get(v)!.observe(out[v].data as Float32Array);
      observers.get(inputName)?.observe(x);
      done += batch.input.shape[0];
      options.onProgress?.(done, data.size);
    }
  } finally {
    await session.release();
  }
}

/** Activation ranges for quantization, from histograms over the calibration data. */
export async function calibrate(graph: Graph, values: readonly string[], data: Dataset, options: CalibrationOptions): Promise<Map<string, Range>> {
  const observers = new Map(values.map((v) => [v, new HistogramObserver()]));
  await observeActivations(graph, observers, data, options);
  return new Map([...observers].map(([v, o]) => [v, o.finalize(options.method, options.percentile)]));
}

/** max |x| per channel of the last axis (what channel equalization needs). */
export class ChannelAbsMax implements Observer {
  absmax: Float32Array;
  constructor(readonly channels: number) {
    this.absmax = new Float32Array(channels);
  }
  observe(values: Float32Array): void {
    const c = this.channels;
    const m = this.absmax;
    for (let i = 0; i < values.length; i++) {
      const a = Math.abs(values[i]);
      const k = i % c;
      if (a > m[k]) m[k] = a;
    }
  }
}
