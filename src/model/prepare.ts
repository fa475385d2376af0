// Checkpoint or ONNX file → the optimised float32 graph every verb starts from.

import { checkpointOutputs } from '../convnext/backbone.js';
import { buildConvNextGraph, type ModelOutputs } from '../convnext/build.js';
import { loadCheckpoint, type LoadedCheckpoint } from '../convnext/load.js';
import { parameterCount } from '../convnext/spec.js';
import { InputError, Warnings } from '../errors.js';
import { identify } from '../formats/registry.js';
import type { Graph } from '../graph/graph.js';
import { runPipeline, selectPasses, type PassReport, type PassSelection } from '../passes/pipeline.js';
import type { SourcePrecision } from '../passes/to-float32.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { modelMetadata, preprocessingOf, readClassNames, type PreprocessingOverrides } from './metadata.js';
import type { Steps } from './steps.js';
import type { OutputFormat } from './write.js';

export interface PrepareOptions extends PassSelection, PreprocessingOverrides {
  /** Pixels, or 'test': a timm Hub folder's pretrained_cfg.test_input_size. */
  readonly imageSize?: number | 'test';
  /** Symbolic input height and width (checkpoints; the image size stays the preprocessing's crop). */
  readonly dynamicSize?: boolean;
  /** What a checkpoint's graph returns: logits (default), the pooled features, or the four stages' maps. */
  readonly outputs?: ModelOutputs;
  /** Run the graph before and after each pass on a probe input and report the change. */
  readonly verify?: boolean;
  readonly stateDictKey?: string;
  /** Class names to record in the model (one per line), for checkpoints without id2label. */
  readonly labelsFile?: string;
  /** The output format: TF.js takes float weights only, so a quantized ONNX input goes back to float32. */
  readonly format?: OutputFormat;
}

/** What was read: a checkpoint (with what was learned about it). */
export type CheckpointSummary = Omit<LoadedCheckpoint, 'model'> & { readonly parameters: number };

export interface PreparedModel {
  /** The float32 graph after the pass pipeline. */
  readonly graph: Graph;
  /** What a quantized ONNX input held before it was turned back into float32 (TF.js output). */
  readonly sourcePrecision: SourcePrecision;
  readonly checkpoint?: CheckpointSummary;
  readonly onnxInput?: { readonly nodes: number; readonly opset: number };
  readonly passes: readonly PassReport[];
}

/** Checkpoint or ONNX file → optimised float32 graph: what convert writes and quantize starts from. */
export async function prepareModel(input: string, options: PrepareOptions, steps: Steps, warnings: Warnings): Promise<PreparedModel> {
  const passes = selectPasses(options);
  let loaded: LoadedCheckpoint | undefined;
  let built: Graph;
  let sourcePrecision: SourcePrecision = 'float32';
  if ((await identify(input)).format?.name === 'onnx') {
    // loaded on demand: a checkpoint's convert does not pay for the ONNX reader's start-up
    const { loadOnnxModel } = await import('../convnext/import-onnx.js');
    let imported = await steps.run('read', () => loadOnnxModel(input));
    if (options.format === 'tfjs' || options.format === 'tflite') {
      const { toFloat32Graph } = await import('../passes/to-float32.js');
      // the TF.js and TFLite writers take float graphs: a quantized model goes back to float32, its precision noted
      const float = toFloat32Graph(imported);
      imported = float.graph;
      sourcePrecision = float.precision;
    }
    if (options.imageSize !== undefined || options.stateDictKey !== undefined || options.dynamicSize || options.outputs !== undefined) {
      throw new InputError('--image-size, --dynamic-size, --outputs and --state-dict-key apply to checkpoints; an ONNX model keeps its inputs and outputs', input);
    }
    const metadata: Record<string, string> = { ...imported.metadata, converter: `${TOOL_NAME} ${TOOL_VERSION}` };
    const width = imported.outputs[0]?.shape[imported.outputs[0].shape.length - 1];
    if (options.labelsFile) {
      if (typeof width !== 'number') throw new InputError('the model has no fixed number of classes to label', input);
      metadata.labels = JSON.stringify(readClassNames(options.labelsFile, width));
    }
    built = { ...imported, metadata };
    if (options.cropPct !== undefined || options.mean || options.std || !metadata.preprocessing) {
      built = { ...built, metadata: { ...metadata, preprocessing: JSON.stringify(preprocessingOf(built, options)) } };
    }
  } else {
    const checkpoint = await steps.run('read', () => loadCheckpoint(input, { stateDictKey: options.stateDictKey, imageSize: options.imageSize, warnings }));
    loaded = checkpoint;
    const metadata = modelMetadata(checkpoint, input);
    if (options.labelsFile) metadata.labels = JSON.stringify(readClassNames(options.labelsFile, checkpoint.model.spec.numClasses));
    const outputs = checkpointOutputs(checkpoint.model.spec, checkpoint.features, options.outputs, input);
    const { features } = checkpoint;
    built = await steps.run('build', () => buildConvNextGraph(checkpoint.model, { imageSize: checkpoint.imageSize, dynamicSize: options.dynamicSize, outputs, features, metadata }));
    // the user's preprocessing flags are recorded, so calibration and validation use them later
    built = { ...built, metadata: { ...metadata, preprocessing: JSON.stringify(preprocessingOf(built, options)) } };
  }
  const onnxInput = loaded ? undefined : { nodes: built.nodes.length, opset: built.opsets[''] ?? 0 };
  // onnxruntime is loaded only when --verify needs it, so plain conversions start fast
  const probe = options.verify ? (await import('../runtime/probe.js')).makeProbe(built) : undefined;
  // this function built the graph and hands it over, so the passes may rewrite its buffers in place
  const { graph, reports } = await steps.run('passes', () => runPipeline(built, passes, { probe, inPlace: true }));
  return {
    graph,
    sourcePrecision,
    checkpoint: loaded && { ...withoutModel(loaded), parameters: parameterCount(loaded.model.params) },
    onnxInput,
    passes: reports,
  };
}

function withoutModel(loaded: LoadedCheckpoint): Omit<LoadedCheckpoint, 'model'> {
  const { model: _model, ...info } = loaded;
  return info;
}
