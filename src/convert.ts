// The convert verb: checkpoint (or ONNX model) in, ONNX model out. Library code: no printing; the
// caller gets timings per step and the warnings, and reports them as it likes.

import { basename, dirname, join } from 'node:path';
import { buildConvNextGraph } from './convnext/build.js';
import { loadCheckpoint, type LoadedCheckpoint } from './convnext/load.js';
import { parameterCount } from './convnext/spec.js';
import { Warnings } from './errors.js';
import { checkOutputPath, writeFilesAtomic, type PendingFile } from './formats/files.js';
import { encodeOnnx, EXTERNAL_DATA_THRESHOLD, initializerBytes } from './formats/onnx.js';
import { TOOL_NAME, TOOL_VERSION } from './version.js';

export interface ConvertOptions {
  readonly imageSize?: number;
  readonly stateDictKey?: string;
  /** Keep weights in a side file `<output>.data` even when the model is small. */
  readonly externalData?: boolean;
  /** Called as each step starts, for progress display. */
  readonly onStep?: (step: string) => void;
}

export interface ConvertResult {
  readonly output: string;
  readonly externalDataFile?: string;
  readonly checkpoint: Omit<LoadedCheckpoint, 'model'> & { readonly parameters: number };
  readonly graph: { readonly nodes: number; readonly initializers: number };
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
  const loaded = await step('read', () => loadCheckpoint(input, { stateDictKey: options.stateDictKey, imageSize: options.imageSize, warnings }));
  const graph = await step('build', () => buildConvNextGraph(loaded.model, { imageSize: loaded.imageSize, metadata: modelMetadata(loaded, input) }));
  const dataFile = `${output}.data`;
  const external = options.externalData || initializerBytes(graph) > EXTERNAL_DATA_THRESHOLD;
  checkOutputPath(dataFile, [input]);
  const encoded = await step('encode', () =>
    encodeOnnx(graph, { producerVersion: TOOL_VERSION, external: external ? { location: basename(dataFile), minBytes: 1024 } : undefined }),
  );
  const files: PendingFile[] = [{ path: output, chunks: encoded.model }];
  if (encoded.externalData) files.push({ path: join(dirname(output), basename(dataFile)), chunks: encoded.externalData });
  await step('write', () => writeFilesAtomic(files));
  const { model, ...info } = loaded;
  return {
    output,
    externalDataFile: encoded.externalData ? dataFile : undefined,
    checkpoint: { ...info, parameters: parameterCount(model.params) },
    graph: { nodes: graph.nodes.length, initializers: graph.initializers.size },
    bytesWritten: files.reduce((n, f) => n + f.chunks.reduce((m, c) => m + c.byteLength, 0), 0),
    timings,
    warnings: warnings.items,
  };
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
