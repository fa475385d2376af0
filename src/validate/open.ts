// What validate runs: an ONNX file, a TF.js model folder, or a checkpoint converted in memory.

import { prepareModel } from '../model/prepare.js';
import { Steps } from '../model/steps.js';
import { Warnings } from '../errors.js';
import { readOnnxSummary } from '../formats/onnx-summary.js';
import { identify } from '../formats/registry.js';
import { withLoadableModel } from '../runtime/onnxruntime.js';
import { onnxRunner, type ProviderChoice, type Runner } from '../runtime/runners.js';

export interface OpenOptions {
  readonly ep: ProviderChoice;
  /** For checkpoints: what convert would take. */
  readonly imageSize?: number;
  readonly stateDictKey?: string;
  /** For TF.js models: the backend. */
  readonly tfjsBackend?: 'cpu' | 'wasm';
}

/** ONNX file, TF.js model folder, or checkpoint (converted in memory). */
export async function openModel(path: string, options: OpenOptions): Promise<Runner> {
  const { format } = await identify(path);
  if (format?.name === 'tfjs') {
    const { tfjsRunner } = await import('../runtime/tfjs-runner.js');
    return tfjsRunner(path, options.tfjsBackend ?? 'wasm');
  }
  if (format?.name === 'onnx') {
    // metadata and input shape without decoding the weights; onnxruntime reads the file itself, by
    // path, so that it finds external data beside the model
    const { metadata, inputs } = readOnnxSummary(path);
    return onnxRunner(path, path, metadata, inputs[0]?.shape ?? [], options.ep);
  }
  const warnings = new Warnings();
  const { graph } = await prepareModel(path, { imageSize: options.imageSize, stateDictKey: options.stateDictKey }, new Steps(), warnings);
  const runner = await withLoadableModel(graph, 'validate', (model) => onnxRunner(path, model, graph.metadata, graph.inputs[0].shape, options.ep));
  return { ...runner, warnings: [...warnings.items, ...runner.warnings] };
}

