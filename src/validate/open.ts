// What validate runs: an ONNX file, a TF.js model folder, or a checkpoint converted in memory.

import { prepareModel } from '../model/prepare.js';
import { Steps } from '../model/steps.js';
import { readOnnxSummary } from '../formats/onnx-summary.js';
import { identify } from '../formats/registry.js';
import { withLoadableModel } from '../runtime/onnxruntime.js';
import { onnxRunner, type ProviderChoice, type Runner } from '../runtime/runners.js';
import type { BrowserSession } from '../runtime/browser/chromium.js';
import type { WebProvider, WebTfjsBackend } from '../runtime/browser/runner.js';
import { InputError, Warnings } from '../errors.js';

export interface OpenOptions {
  readonly ep: ProviderChoice | WebProvider;
  /** For checkpoints: what convert would take. */
  /** Pixels, or 'test': a timm Hub folder's pretrained_cfg.test_input_size. */
  readonly imageSize?: number | 'test';
  readonly stateDictKey?: string;
  /** For TF.js models: the backend (webgl and webgpu in a browser only). */
  readonly tfjsBackend?: WebTfjsBackend;
  /** Run the model in this browser page instead of in Node. */
  readonly page?: BrowserSession;
}

/** ONNX file, TF.js model folder, LiteRT (.tflite) file, or checkpoint (converted in memory). */
export async function openModel(path: string, options: OpenOptions): Promise<Runner> {
  const { format } = await identify(path);
  if (options.page) return openInBrowser(path, format?.name, options.page, options);
  const ep = options.ep;
  if (ep === 'wasm' || ep === 'webgl') throw new InputError(`--ep ${ep} is onnxruntime-web's, in a browser: add --runtime browser`);
  if (format?.name === 'tfjs') {
    const backend = options.tfjsBackend ?? 'wasm';
    if (backend === 'webgl' || backend === 'webgpu') throw new InputError(`--tfjs-backend ${backend} runs in a browser: add --runtime browser`);
    const { tfjsRunner } = await import('../runtime/tfjs-runner.js');
    return tfjsRunner(path, backend);
  }
  if (format?.name === 'tflite') {
    const { tfliteRunner } = await import('../runtime/tflite-runner.js');
    return tfliteRunner(path);
  }
  if (format?.name === 'onnx') {
    // metadata and input shape without decoding the weights; onnxruntime reads the file itself, by
    // path, so that it finds external data beside the model
    const { metadata, inputs } = readOnnxSummary(path);
    return onnxRunner(path, path, metadata, inputs[0]?.shape ?? [], ep);
  }
  const warnings = new Warnings();
  const { graph } = await prepareModel(path, { imageSize: options.imageSize, stateDictKey: options.stateDictKey }, new Steps(), warnings);
  const runner = await withLoadableModel(graph, 'validate', (model) => onnxRunner(path, model, graph.metadata, graph.inputs[0].shape, ep));
  return { ...runner, warnings: [...warnings.items, ...runner.warnings] };
}


async function openInBrowser(path: string, format: string | undefined, page: BrowserSession, options: OpenOptions): Promise<Runner> {
  const { browserOnnxRunner, browserTfjsRunner } = await import('../runtime/browser/runner.js');
  if (format === 'tfjs') return browserTfjsRunner(page, path, options.tfjsBackend ?? 'wasm');
  if (format === 'tflite') throw new InputError('--runtime browser runs ONNX models and TF.js folders; a .tflite model is validated in Node (LiteRT.js)', path);
  if (format !== 'onnx') throw new InputError('--runtime browser runs ONNX models and TF.js folders: convert the checkpoint first (convnext convert)', path);
  const ep = options.ep;
  if (ep === 'cuda') throw new InputError("--ep cuda is onnxruntime-node's; in a browser: auto, wasm, webgpu or webgl");
  return browserOnnxRunner(page, path, ep === 'cpu' ? 'wasm' : ep);
}
