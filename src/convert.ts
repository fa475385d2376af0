// The convert verb: checkpoint (or ONNX model) in, ONNX model out. Library code: no printing; the
// caller gets timings per step and the warnings, and reports them as it likes.

import { basename, dirname, join } from 'node:path';
import { buildConvNextGraph } from './convnext/build.js';
import { loadCheckpoint, type LoadedCheckpoint } from './convnext/load.js';
import { parameterCount } from './convnext/spec.js';
import { loadOnnxModel } from './convnext/import-onnx.js';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { InputError, Warnings } from './errors.js';
import { preprocessingOf, type PreprocessingOverrides } from './metadata.js';
import { writeTfjsModel, type WriteTfjsOptions } from './formats/tfjs/index.js';
import { toFloat32Graph, type SourcePrecision } from './passes/to-float32.js';
import { sniffFile } from './formats/sniff.js';
import type { Graph } from './graph/graph.js';
import { runPipeline, selectPasses, type PassReport, type PassSelection } from './passes/pipeline.js';
import { compactNames } from './passes/compact-names.js';
import { recordingContext } from './passes/pass.js';
import { checkOutputPath, writeFilesAtomic, type PendingFile } from './formats/files.js';
import { encodeOnnx, EXTERNAL_DATA_THRESHOLD, initializerBytes } from './formats/onnx.js';
import { TOOL_NAME, TOOL_VERSION } from './version.js';

export interface ConvertOptions extends PassSelection, PreprocessingOverrides {
  readonly imageSize?: number;
  /** Run the graph before and after each pass on a probe input and report the change. */
  readonly verify?: boolean;
  readonly stateDictKey?: string;
  /** Keep weights in a side file `<output>.data` even when the model is small. */
  readonly externalData?: boolean;
  /** Called as each step starts, for progress display. */
  readonly onStep?: (step: string) => void;
  /** Class names to record in the model (one per line), for checkpoints without id2label. */
  readonly labelsFile?: string;
  /** 'onnx' (a file) or 'tfjs' (a graph-model folder). */
  readonly format?: OutputFormat;
  /** TF.js output: weight storage, GELU form, shard size, and whether a non-empty folder may be used. */
  readonly tfjs?: WriteTfjsOptions;
  /** ONNX output: short internal value names, layer names kept (see passes/compact-names.ts). */
  readonly compactNames?: boolean;
}

export type OutputFormat = 'onnx' | 'tfjs';

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

/** Times named steps and tells the caller as each starts. */
export class Steps {
  readonly timings: Record<string, number> = {};
  constructor(private readonly onStep?: (step: string) => void) {}
  async run<T>(name: string, work: () => T | Promise<T>): Promise<T> {
    this.onStep?.(name);
    const start = performance.now();
    const result = await work();
    this.timings[name] = (this.timings[name] ?? 0) + performance.now() - start;
    return result;
  }
}

export interface PreparedModel {
  /** The float32 graph after the pass pipeline. */
  readonly graph: Graph;
  /** What a quantized ONNX input held before it was turned back into float32 (TF.js output). */
  readonly sourcePrecision: SourcePrecision;
  readonly checkpoint?: ConvertResult['checkpoint'];
  readonly onnxInput?: ConvertResult['onnxInput'];
  readonly passes: readonly PassReport[];
}

/** Checkpoint or ONNX file → optimised float32 graph: what convert writes and quantize starts from. */
export async function prepareModel(input: string, options: ConvertOptions, steps: Steps, warnings: Warnings): Promise<PreparedModel> {
  const passes = selectPasses(options);
  let loaded: LoadedCheckpoint | undefined;
  let built: Graph;
  let sourcePrecision: SourcePrecision = 'float32';
  if ((await sniffFile(input)) === 'onnx') {
    let imported = await steps.run('read', () => loadOnnxModel(input));
    if (options.format === 'tfjs') {
      // TF.js has float kernels only: a quantized model goes back to float32, its precision noted
      const float = toFloat32Graph(imported);
      imported = float.graph;
      sourcePrecision = float.precision;
    }
    if (options.imageSize !== undefined || options.stateDictKey !== undefined) {
      throw new InputError('--image-size and --state-dict-key apply to checkpoints; an ONNX model keeps its input shape', input);
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
    built = await steps.run('build', () => buildConvNextGraph(checkpoint.model, { imageSize: checkpoint.imageSize, metadata }));
    // the user's preprocessing flags are recorded, so calibration and validation use them later
    built = { ...built, metadata: { ...metadata, preprocessing: JSON.stringify(preprocessingOf(built, options)) } };
  }
  const onnxInput = loaded ? undefined : { nodes: built.nodes.length, opset: built.opsets[''] ?? 0 };
  // onnxruntime is loaded only when --verify needs it, so plain conversions start fast
  const probe = options.verify ? (await import('./runtime/probe.js')).makeProbe(built) : undefined;
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

/** Serialises and writes atomically, with external data when asked or when the weights need it. */
export async function writeOnnxModel(graph: Graph, output: string, inputs: readonly string[], externalData: boolean, steps: Steps) {
  const dataFile = `${output}.data`;
  const external = externalData || initializerBytes(graph) > EXTERNAL_DATA_THRESHOLD;
  checkOutputPath(dataFile, inputs);
  const encoded = await steps.run('encode', () =>
    encodeOnnx(graph, { producerVersion: TOOL_VERSION, external: external ? { location: basename(dataFile), minBytes: 1024 } : undefined }),
  );
  const files: PendingFile[] = [{ path: output, chunks: encoded.model }];
  if (encoded.externalData) files.push({ path: join(dirname(output), basename(dataFile)), chunks: encoded.externalData });
  await steps.run('write', () => writeFilesAtomic(files));
  return {
    externalDataFile: encoded.externalData ? dataFile : undefined,
    bytesWritten: files.reduce((n, f) => n + f.chunks.reduce((m, c) => m + c.byteLength, 0), 0),
  };
}

/** Writes the graph in the chosen format: an ONNX file, or a TF.js graph-model folder. */
export async function writeModel(graph: Graph, output: string, input: string, options: ConvertOptions, steps: Steps) {
  if ((options.format ?? 'onnx') === 'onnx') {
    const named = options.compactNames ? compactNames.run(graph, recordingContext()) : graph;
    return writeOnnxModel(named, output, [input], options.externalData ?? false, steps);
  }
  const written = await steps.run('write', () => writeTfjsModel(graph, output, options.tfjs));
  return { bytesWritten: written.bytes, externalDataFile: undefined };
}

function checkOutput(output: string, input: string, format: OutputFormat): void {
  if (format === 'onnx') return checkOutputPath(output, [input]);
  if (existsSync(input) && existsSync(output) && realpathSync(input) === realpathSync(output)) {
    throw new InputError('output folder is the input; choose another', output);
  }
}

export async function convert(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const warnings = new Warnings();
  const steps = new Steps(options.onStep);
  checkOutput(output, input, options.format ?? 'onnx');
  const prepared = await prepareModel(input, options, steps, warnings);
  // TF.js keeps a quantized input's precision in its weight storage unless --weights says otherwise
  const keep = { float32: 'float32', float16: 'float16', int8: 'int8' } as const;
  const tfjs = { ...options.tfjs, weights: options.tfjs?.weights ?? keep[prepared.sourcePrecision] };
  const written = await writeModel(prepared.graph, output, input, { ...options, tfjs }, steps);
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

function readClassNames(path: string, classes: number): string[] {
  if (!existsSync(path)) throw new InputError('no such labels file', path);
  const names = readFileSync(path, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (names.length !== classes) throw new InputError(`has ${names.length} class names, the model has ${classes} classes`, path);
  return names;
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
