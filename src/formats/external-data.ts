// ONNX external data: tensors whose bytes live in side files next to the model. The one reader of
// those files, so that every verb applies the same rule as onnxruntime: a location must stay inside
// the model's folder, after symlinks are resolved.

import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { InputError } from '../errors.js';
import { readInputFileSync, statInput } from './sniff.js';

/** A reader of the side files `modelPath` names, each read once however many tensors it holds. */
export function externalDataReader(modelPath: string): (location: string) => Uint8Array {
  const files = new Map<string, Uint8Array>();
  return (location) => {
    let file = files.get(location);
    if (!file) files.set(location, (file = readExternal(modelPath, location)));
    return file;
  };
}

function readExternal(modelPath: string, location: string): Uint8Array {
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
  return readInputFileSync(file);
}
