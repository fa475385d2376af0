// The convert verb: checkpoint (or ONNX model) in, ONNX model out. Library code: no printing; the
// caller gets timings per step and the warnings, and reports them as it likes.

import { basename, dirname, join } from 'node:path';
import { buildConvNextGraph } from './convnext/build.js';
import { loadCheckpoint, type LoadedCheckpoint } from './convnext/load.js';
import { parameterCount } from './convnext/spec.js';
import { loadOnnxModel } from './convnext/import-onnx.js';
import { Warnings } from './errors.js';
import { sniffFile } from './formats/sniff.js';
import type { Graph } from './graph/graph.js';
import { runPipeline, selectPasses, type PassReport, type PassSelection } from './passes/pipeline.js';
import { checkOutputPath, writeFilesAtomic, type PendingFile } from './formats/files.js';
import { encodeOnnx, EXTERNAL_DATA_THRESHOLD, initializerBytes } from './formats/onnx.js';
import { TOOL_NAME, TOOL_VERSION } from './version.js';

export interface ConvertOptions extends PassSelection {
  readonly imageSize?: number;
  /** Run the graph before and after each pass on a probe input and report the change. */
  readonly verify?: boolean;
  readonly stateDictKey?: string;
  /** Keep weights in a side file `<output>.data` even when the model is small. */
  readonly externalData?: boolean;
  /** Called as each step starts, for progress display. */
  readonly onStep?: (step: string) => void;
}

export interface ConvertResult {
  readonly output: string;
  readonly externalDataFile?: string;
  /** What was read: a checkpoint (with what was learned about it) or an ONNX model. */
  readonly checkpoint?: Omit<LoadedCheckpoint, 'model'> & { readonly parameters: number };
  readonly onnxInput?: { readonly nodes: number; readonly opset: number };
  readonly graph: { readonly nodes: number; readonly initializers: number };
  readonly passes: readonly PassReport[];
  readonly bytesWritten: number;
  readonly timings: Record<string, number>;
  readonly warnings: readonly string[];
}

export async function convert(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const warnings = new Warnings();
  const timings: Record<string, number> = {};
  const step = async <T>(name: string, work: () => T | Promise<T>): Promise<T> => {
    options.onStep?.(name);
    const start = performance.now();
    const result = await work();
    timings[name] = performance.now() - start;
    return result;
  };
  checkOutputPath(output, [input]);
  const passes = selectPasses(options);
  let loaded: LoadedCheckpoint | undefined;
  let built: Graph;
  if ((await sniffFile(input)) === 'onnx') {
    const imported = await step('read', () => loadOnnxModel(input));
    built = { ...imported, metadata: { ...imported.metadata, converter: `${TOOL_NAME} ${TOOL_VERSION}` } };
  } else {
    const checkpoint = await step('read', () => loadCheckpoint(input, { stateDictKey: options.stateDictKey, imageSize: options.imageSize, warnings }));
    loaded = checkpoint;
    built = await step('build', () => buildConvNextGraph(checkpoint.model, { imageSize: checkpoint.imageSize, metadata: modelMetadata(checkpoint, input) }));
  }
  // onnxruntime is loaded only when --verify needs it, so plain conversions start fast
  const probe = options.verify ? (await import('./runtime/probe.js')).makeProbe(built) : undefined;
  const { graph, reports } = await step('passes', () => runPipeline(built, passes, { probe, inPlace: true }));
  const dataFile = `${output}.data`;
  const external = options.externalData || initializerBytes(graph) > EXTERNAL_DATA_THRESHOLD;
  checkOutputPath(dataFile, [input]);
  const encoded = await step('encode', () =>
    encodeOnnx(graph, { producerVersion: TOOL_VERSION, external: external ? { location: basename(dataFile), minBytes: 1024 } : undefined }),
  );
  const files: PendingFile[] = [{ path: output, chunks: encoded.model }];
  if (encoded.externalData) files.push({ path: join(dirname(output), basename(dataFile)), chunks: encoded.externalData });
  await step('write', () => writeFilesAtomic(files));
  return {
    output,
    externalDataFile: encoded.externalData ? dataFile : undefined,
    checkpoint: loaded && { ...withoutModel(loaded), parameters: parameterCount(loaded.model.params) },
    onnxInput: loaded ? undefined : { nodes: built.nodes.length, opset: built.opsets[''] ?? 0 },
    graph: { nodes: graph.nodes.length, initializers: graph.initializers.size },
    passes: reports,
    bytesWritten: files.reduce((n, f) => n + f.chunks.reduce((m, c) => m + c.byteLength, 0), 0),
    timings,
    warnings: warnings.items,
  };
}

function withoutModel(loaded: LoadedCheckpoint): Omit<LoadedCheckpoint, 'model'> {
  const { model: _model, ...info } = loaded;
  return info;
}

/** What travels inside the model (ONNX metadata_props): labels, preprocessing, provenance. */
export function modelMetadata(loaded: LoadedCheckpoint, input: string): Record<string, string> {
  const { spec } = loaded.model;
  const meta: Record<string, string> = {
    converter: `${TOOL_NAME} ${TOOL_VERSION}`,
    preprocessing: JSON.stringify(loaded.preprocessing),
    source: JSON.stringify({
      file: basename(input),
      format: loaded.format,
      layout: loaded.layout,
      state_dict_key: loaded.stateDictKey ?? null,
      variant: loaded.variant,
      version: spec.version,
      depths: spec.depths,
      widths: spec.widths,
    }),
  };
  if (loaded.labels) meta.labels = JSON.stringify(loaded.labels);
  return meta;
}
