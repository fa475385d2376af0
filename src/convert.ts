// The convert verb: checkpoint (or ONNX model) in, ONNX model out. Library code: no printing; the
// caller gets timings per step and the warnings, and reports them as it likes.

import { Warnings } from './errors.js';
import type { PassReport } from './passes/pipeline.js';
import { prepareModel, type CheckpointSummary, type PrepareOptions } from './model/prepare.js';
import { Steps } from './model/steps.js';
import { checkModelOutput, writeModel, type WriteOptions } from './model/write.js';
import { filesRead } from './formats/files.js';

export type { OutputFormat } from './model/write.js';

export interface ConvertOptions extends PrepareOptions, WriteOptions {
  /** Called as each step starts, for progress display. */
  readonly onStep?: (step: string) => void;
}

export interface ConvertResult {
  readonly output: string;
  readonly externalDataFile?: string;
  /** What was read: a checkpoint (with what was learned about it) or an ONNX model. */
  readonly checkpoint?: CheckpointSummary;
  readonly onnxInput?: { readonly nodes: number; readonly opset: number };
  readonly graph: { readonly nodes: number; readonly initializers: number };
  readonly passes: readonly PassReport[];
  readonly bytesWritten: number;
  readonly timings: Record<string, number>;
  readonly warnings: readonly string[];
}

export async function convert(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const warnings = new Warnings();
  const steps = new Steps(options.onStep);
  const reads = [...filesRead(input, 'the input model'), ...(options.labelsFile ? filesRead(options.labelsFile, 'the labels file') : [])];
  checkModelOutput(output, options.format ?? 'onnx', reads);
  const prepared = await prepareModel(input, options, steps, warnings);
  // TF.js and TFLite keep a quantized input's precision in their weight storage unless --weights says otherwise
  const keep = { float32: 'float32', float16: 'float16', int8: 'int8' } as const;
  const tfjs = { ...options.tfjs, weights: options.tfjs?.weights ?? keep[prepared.sourcePrecision] };
  const tflite = { ...options.tflite, weights: options.tflite?.weights ?? keep[prepared.sourcePrecision] };
  const written = await writeModel(prepared.graph, output, { ...options, tfjs, tflite }, steps);
  const { graph } = prepared;
  return {
    output,
    ...written,
    checkpoint: prepared.checkpoint,
    onnxInput: prepared.onnxInput,
    graph: { nodes: graph.nodes.length, initializers: graph.initializers.size },
    passes: prepared.passes,
    timings: steps.timings,
    warnings: warnings.items,
  };
}

