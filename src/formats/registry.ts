// Which reader opens a path: one table, asked by every verb. Each format's `match` looks at what a
// cheap probe saw (the first bytes of a file, the names in a folder) and never consumes input; the
// verb then opens the path with that format's reader.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { sniffFile, statInput, type FileFormat } from './sniff.js';

export type ModelFormatName = 'onnx' | 'pth' | 'safetensors' | 'hf' | 'tfjs' | 'tflite';

/** What a probe of a path saw: a folder, or a file with its size and byte-level format. */
export interface Probe {
  readonly path: string;
  readonly folder: boolean;
  readonly size: number;
  readonly bytes: FileFormat;
}

export interface ModelFormat {
  readonly name: ModelFormatName;
  /** What the user has, in the words an error message uses. */
  readonly description: string;
  /** A checkpoint holds tensors to import; the others are models to run or to pass through. */
  readonly checkpoint: boolean;
  match(probe: Probe): boolean;
}

export const MODEL_FORMATS: readonly ModelFormat[] = [
  { name: 'onnx', description: 'an ONNX model', checkpoint: false, match: (p) => !p.folder && p.bytes === 'onnx' },
  { name: 'safetensors', description: 'a .safetensors file', checkpoint: true, match: (p) => !p.folder && p.bytes === 'safetensors' },
  // torch ≥ 1.6 writes a zip holding a pickle; older files are raw pickles, which the reader refuses with how to re-save
  { name: 'pth', description: 'a PyTorch .pth/.bin', checkpoint: true, match: (p) => !p.folder && (p.bytes === 'zip' || p.bytes === 'legacy-pickle') },
  { name: 'tflite', description: 'a LiteRT (.tflite) model', checkpoint: false, match: (p) => !p.folder && p.bytes === 'tflite' },
  { name: 'tfjs', description: 'a TF.js graph-model folder (model.json)', checkpoint: false, match: (p) => p.folder && existsSync(join(p.path, 'model.json')) },
  { name: 'hf', description: 'a Hugging Face model folder (config.json)', checkpoint: true, match: (p) => p.folder && existsSync(join(p.path, 'config.json')) },
];

/** Looks at a path without reading more than its first bytes; a missing path is an InputError. */
export async function probe(path: string): Promise<Probe> {
  const stat = statInput(path);
  if (!stat) throw new InputError('no such file or folder', path);
  const folder = stat.isDirectory();
  return { path, folder, size: stat.size, bytes: folder ? 'unknown' : await sniffFile(path) };
}

/** The format of the model or checkpoint at `path`, or undefined when no reader takes it. */
export async function identify(path: string): Promise<{ probe: Probe; format?: ModelFormat }> {
  const p = await probe(path);
  return { probe: p, format: MODEL_FORMATS.find((f) => f.match(p)) };
}
