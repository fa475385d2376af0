// ONNX external data: tensors whose bytes live in side files next to the model. The one reader of
// those files, so that every verb applies the same rule as onnxruntime: a location must stay inside
// the model's folder, after symlinks are resolved.

import { realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { InputError } from '../errors.js';
import type { ExternalFile } from './onnx.js';
import { readRangeSync, statInput } from './sniff.js';

/**
 * A reader of the side files `modelPath` names. Each tensor's range is read on its own (one copy,
 * aligned for typed-array views), so a side file of any size is never held whole.
 */
export function externalDataReader(modelPath: string): (location: string) => ExternalFile {
  const files = new Map<string, ExternalFile>();
  return (location) => {
    let file = files.get(location);
    if (!file) files.set(location, (file = openExternal(modelPath, location)));
    return file;
  };
}

function openExternal(modelPath: string, location: string): ExternalFile {
  const path = checkedLocation(modelPath, location);
  return { size: statSync(path).size, read: (offset, length) => readRangeSync(path, offset, length) };
}

function checkedLocation(modelPath: string, location: string): string {
  const folder = dirname(modelPath);
  if (location.split(/[\\/]/).includes('..') || isAbsolute(location)) {
    throw new InputError(`external data location ${location} leaves the model's folder`, modelPath);
  }
  const file = join(folder, location);
  if (!statInput(file)?.isFile()) throw new InputError(`external data file ${location} is missing`, modelPath);
  const inside = relative(realpathSync(folder), realpathSync(file));
  if (inside.startsWith('..') || isAbsolute(inside)) {
    throw new InputError(`external data location ${location} leaves the model's folder through a symbolic link`, modelPath);
  }
  return file;
}
