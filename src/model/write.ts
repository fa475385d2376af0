// Graph → files on disk, atomically: an ONNX file (with external data when asked or needed), a
// TF.js graph-model folder or a TFLite file. An input is never overwritten.

import { basename, dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import { checkOutputs, writeFilesAtomic, type PendingFile, type RolePath } from '../formats/files.js';
import { encodeOnnx, EXTERNAL_DATA_THRESHOLD, initializerBytes } from '../formats/onnx.js';
import type { WriteTfjsOptions } from '../formats/tfjs/index.js';
import type { TfliteOptions } from '../formats/tflite/index.js';
import type { Graph } from '../graph/graph.js';
import { compactNames } from '../passes/compact-names.js';
import { recordingContext } from '../passes/pass.js';
import { TOOL_VERSION } from '../version.js';
import type { Steps } from './steps.js';

export type OutputFormat = 'onnx' | 'tfjs' | 'tflite';

export interface WriteOptions {
  /** 'onnx' (a file), 'tfjs' (a graph-model folder) or 'tflite' (a LiteRT flatbuffer file). */
  readonly format?: OutputFormat;
  /** Keep weights in a side file `<output>.data` even when the model is small. */
  readonly externalData?: boolean;
  /** TF.js output: weight storage, GELU form, shard size, and whether a non-empty folder may be used. */
  readonly tfjs?: WriteTfjsOptions;
  /** TFLite output: weight storage, GELU form, batch size. */
  readonly tflite?: TfliteOptions;
  /** ONNX output: short internal value names, layer names kept (see passes/compact-names.ts). */
  readonly compactNames?: boolean;
}

/** Serialises and writes atomically, with external data when asked or when the weights need it. */
export async function writeOnnxModel(graph: Graph, output: string, externalData: boolean, steps: Steps) {
  const dataFile = `${output}.data`;
  const external = externalData || initializerBytes(graph) > EXTERNAL_DATA_THRESHOLD;
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
export async function writeModel(graph: Graph, output: string, options: WriteOptions, steps: Steps) {
  if ((options.format ?? 'onnx') === 'onnx') {
    const named = options.compactNames ? compactNames.run(graph, recordingContext()) : graph;
    return writeOnnxModel(named, output, options.externalData ?? false, steps);
  }
  // the other writers load when asked for: an ONNX convert does not pay for their start-up
  if (options.format === 'tflite') {
    const { writeTfliteModel } = await import('../formats/tflite/index.js');
    const written = await steps.run('write', () => writeTfliteModel(graph, output, options.tflite));
    return { bytesWritten: written.bytes, externalDataFile: undefined };
  }
  const { writeTfjsModel } = await import('../formats/tfjs/index.js');
  const written = await steps.run('write', () => writeTfjsModel(graph, output, options.tfjs));
  return { bytesWritten: written.bytes, externalDataFile: undefined };
}

/**
 * Refuses, before any work, a model output (and an ONNX model's side file `<output>.data`) that
 * would overwrite any of `inputs`, the files the command reads.
 */
export function checkModelOutput(output: string, format: OutputFormat | 'transformers.js', inputs: readonly RolePath[]): void {
  const outputs = format === 'onnx'
    ? [{ path: output, what: 'the output model' }, { path: `${output}.data`, what: "the output model's external data" }]
    : format === 'tflite' ? [{ path: output, what: 'the output model' }] : [{ path: output, what: 'the output folder', folder: true }];
  checkOutputs(outputs, inputs);
}
